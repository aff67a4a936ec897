package awssim_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/deploytest"
)

// seededDemo is a demo account served on loopback, and its token secret's ARN.
func seededDemo(t *testing.T) (*awssim.Sim, aws.Config, string) {
	t.Helper()
	sim := awssim.New(awssim.Options{})
	ctx := context.Background()
	if err := sim.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler()) // 127.0.0.1
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: awssim.DefaultRegion, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	sec, err := secretsmanager.NewFromConfig(cfg).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(awssim.DemoTokenSecret)})
	if err != nil {
		t.Fatal(err)
	}
	return sim, cfg, aws.ToString(sec.ARN)
}

// The demo reconciler role holds exactly what the CloudFormation template's
// TaskRolePolicy grants in a stack of the demo account, so that the demo
// cannot drift from the deployment it stands for.
func TestDemoReconcilerRoleHoldsTheTemplatesPolicy(t *testing.T) {
	sim, _, secretArn := seededDemo(t)
	queueArn := sim.QueueARN(awssim.DemoQueue)
	tpl, err := deploytest.Load(deploytest.Path())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := tpl.PolicyJSON(deploytest.Stack{
		Region: awssim.DefaultRegion, Account: awssim.DefaultAccount, Partition: "aws", StackName: "reconciler",
		// The demo is one process (make run): a stack of one replica,
		// which has no lease table and no grant on one.
		Params: map[string]any{"TokenSecretArn": secretArn, "PassableRoleArns": []string{awssim.DemoExecutionRole}, "Replicas": 1},
		Attrs:  map[string]string{"Queue.Arn": queueArn, "TaskRole.Arn": awssim.DemoReconcilerRole},
	}, "TaskRolePolicy", "PolicyDocument")
	if err != nil {
		t.Fatal(err)
	}
	want, err := awssim.ParsePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(awssim.DemoReconcilerPolicy(secretArn, queueArn), want); d != "" {
		t.Errorf("DemoReconcilerPolicy (-demo +template):\n%s", d)
	}
	got, ok := sim.PrincipalPolicy(awssim.DemoReconcilerRole)
	if !ok {
		t.Fatalf("SeedDemo did not create %s", awssim.DemoReconcilerRole)
	}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("seeded policy of %s (-got +template):\n%s", awssim.DemoReconcilerRole, d)
	}
}

// What `reconciler check` asks of the demo account, over the SDK: who the
// caller is, what the execution role may read, and the trail.
func TestSeedDemoHasTheRolesAndTrailOfAnAccount(t *testing.T) {
	_, cfg, secretArn := seededDemo(t)
	ctx := context.Background()

	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(id.Arn), "arn:aws:sts::123456789012:assumed-role/ecs-sidecar-reconciler/awssim"; got != want {
		t.Errorf("caller = %s, want %s (a session of %s)", got, want, awssim.DemoReconcilerRole)
	}

	ic := iam.NewFromConfig(cfg)
	decide := func(role, action, resource string) string {
		t.Helper()
		out, err := ic.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
			PolicySourceArn: aws.String(role), ActionNames: []string{action}, ResourceArns: []string{resource}})
		if err != nil {
			t.Fatalf("simulate %s %s on %s: %v", role, action, resource, err)
		}
		return string(out.EvaluationResults[0].EvalDecision)
	}
	otherSecret := "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf"
	for _, c := range []struct{ role, action, resource, want string }{
		{awssim.DemoExecutionRole, "secretsmanager:GetSecretValue", secretArn, string(iamtypes.PolicyEvaluationDecisionTypeAllowed)},
		{awssim.DemoExecutionRole, "secretsmanager:GetSecretValue", otherSecret, string(iamtypes.PolicyEvaluationDecisionTypeImplicitDeny)},
		{awssim.DemoExecutionRole, "logs:PutLogEvents", "*", string(iamtypes.PolicyEvaluationDecisionTypeAllowed)},
		{awssim.DemoExecutionRole, "ecs:UpdateService", "*", string(iamtypes.PolicyEvaluationDecisionTypeImplicitDeny)},
		// The reconciler describes the token, never reads it.
		{awssim.DemoReconcilerRole, "secretsmanager:DescribeSecret", secretArn, string(iamtypes.PolicyEvaluationDecisionTypeAllowed)},
		{awssim.DemoReconcilerRole, "secretsmanager:GetSecretValue", secretArn, string(iamtypes.PolicyEvaluationDecisionTypeImplicitDeny)},
	} {
		if got := decide(c.role, c.action, c.resource); got != c.want {
			t.Errorf("%s %s on %s: %s, want %s", c.role, c.action, c.resource, got, c.want)
		}
	}

	ct := cloudtrail.NewFromConfig(cfg)
	trails, err := ct.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(trails.TrailList) != 1 || aws.ToString(trails.TrailList[0].Name) != awssim.DemoTrail || !aws.ToBool(trails.TrailList[0].IsMultiRegionTrail) {
		t.Fatalf("trails = %+v, want the multi-Region trail %s alone", trails.TrailList, awssim.DemoTrail)
	}
	st, err := ct.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: trails.TrailList[0].TrailARN})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(st.IsLogging) {
		t.Errorf("%s is not logging", awssim.DemoTrail)
	}
	sel, err := ct.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String(awssim.DemoTrail)})
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.EventSelectors) != 1 || !aws.ToBool(sel.EventSelectors[0].IncludeManagementEvents) || sel.EventSelectors[0].ReadWriteType != "All" {
		t.Errorf("selectors of %s = %+v, want management events, read and write", awssim.DemoTrail, sel.EventSelectors)
	}
}
