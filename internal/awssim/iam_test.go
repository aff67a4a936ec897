package awssim

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

// newQueryEnv serves a Sim on loopback and returns SDK clients of the
// services added for `reconciler check`.
func newQueryEnv(t *testing.T) (*Sim, *sts.Client, *iam.Client, *cloudtrail.Client) {
	t.Helper()
	s := New(Options{})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	cfg := awsConfig()
	return s,
		sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(srv.URL) }),
		iam.NewFromConfig(cfg, func(o *iam.Options) { o.BaseEndpoint = aws.String(srv.URL) }),
		cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) { o.BaseEndpoint = aws.String(srv.URL) })
}

func TestGetCallerIdentityOverSDK(t *testing.T) {
	s, stsc, _, _ := newQueryEnv(t)
	ctx := context.Background()
	out, err := stsc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{aws.ToString(out.Account), aws.ToString(out.Arn)}
	want := []string{DefaultAccount, "arn:aws:sts::123456789012:assumed-role/ecs-sidecar-reconciler/awssim"}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("identity (-got +want):\n%s", d)
	}
	s.SetCallerIdentity("arn:aws:iam::123456789012:user/alice")
	out, err = stsc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(out.Arn), "arn:aws:iam::123456789012:user/alice"; got != want {
		t.Errorf("arn after SetCallerIdentity = %q, want %q", got, want)
	}
}

const testPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["ecs:ListClusters", "ECS:DescribeTaskDefinition"], "Resource": "*"},
    {"Effect": "Allow", "Action": "ecs:UpdateService", "Resource": "arn:aws:ecs:us-east-1:123456789012:service/*"},
    {"Effect": "Allow", "Action": "ecs:TagResource", "Resource": "arn:aws:ecs:us-east-1:123456789012:task-definition/*",
     "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}}},
    {"Effect": "Allow", "Action": "ecs:TagResource", "Resource": "arn:aws:ecs:us-east-1:123456789012:task-definition/*",
     "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["ecs-sidecar/failed"]}}},
    {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/ecs-tasks/*",
     "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
    {"Effect": "Deny", "Action": "ecs:UpdateService", "Resource": "arn:aws:ecs:us-east-1:123456789012:service/prod/*"}
  ]
}`

func TestEvaluate(t *testing.T) {
	policy, err := ParsePolicy([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	td := "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"
	cases := []struct {
		name, action, resource string
		ctx                    map[string][]string
		want                   string
	}{
		{"star resource", "ecs:ListClusters", "*", nil, DecisionAllowed},
		{"action case-insensitive", "ecs:describetaskdefinition", "*", nil, DecisionAllowed},
		{"action not granted", "ecs:DeleteService", "*", nil, DecisionImplicitDeny},
		{"scoped resource", "ecs:UpdateService", "arn:aws:ecs:us-east-1:123456789012:service/dev/web", nil, DecisionAllowed},
		{"other region", "ecs:UpdateService", "arn:aws:ecs:eu-west-1:123456789012:service/dev/web", nil, DecisionImplicitDeny},
		{"explicit deny wins", "ecs:UpdateService", "arn:aws:ecs:us-east-1:123456789012:service/prod/web", nil, DecisionExplicitDeny},
		{"tag on create", "ecs:TagResource", td, map[string][]string{"ecs:CreateAction": {"RegisterTaskDefinition"}}, DecisionAllowed},
		{"failure marker tag", "ecs:TagResource", td, map[string][]string{"aws:TagKeys": {"ecs-sidecar/failed"}}, DecisionAllowed},
		{"other tag later", "ecs:TagResource", td, map[string][]string{"aws:TagKeys": {"ecs-sidecar/failed", "owner"}}, DecisionImplicitDeny},
		{"pass role to ecs tasks", "iam:PassRole", "arn:aws:iam::123456789012:role/ecs-tasks/web", map[string][]string{"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}, DecisionAllowed},
		{"pass role to another service", "iam:PassRole", "arn:aws:iam::123456789012:role/ecs-tasks/web", map[string][]string{"iam:PassedToService": {"lambda.amazonaws.com"}}, DecisionImplicitDeny},
		{"pass role without context", "iam:PassRole", "arn:aws:iam::123456789012:role/ecs-tasks/web", nil, DecisionImplicitDeny},
		{"pass role outside the path", "iam:PassRole", "arn:aws:iam::123456789012:role/admin", map[string][]string{"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}, DecisionImplicitDeny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Evaluate(policy, c.action, c.resource, c.ctx); got != c.want {
				t.Errorf("Evaluate(%s, %s) = %s, want %s", c.action, c.resource, got, c.want)
			}
		})
	}
}

func TestParsePolicyRefusesWhatItCannotEvaluate(t *testing.T) {
	for name, doc := range map[string]string{
		"NotAction":        `{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}`,
		"unknown operator": `{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`,
		"no effect":        `{"Statement":[{"Action":"s3:GetObject","Resource":"*"}]}`,
		"no resource":      `{"Statement":[{"Effect":"Allow","Action":"s3:GetObject"}]}`,
	} {
		if _, err := ParsePolicy([]byte(doc)); err == nil {
			t.Errorf("%s: ParsePolicy accepted %s", name, doc)
		}
	}
}

func TestSimulatePrincipalPolicyOverSDK(t *testing.T) {
	s, _, iamc, _ := newQueryEnv(t)
	ctx := context.Background()
	policy, err := ParsePolicy([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	role := "arn:aws:iam::123456789012:role/reconciler"
	s.PutPrincipalPolicy(role, policy)

	out, err := iamc.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(role),
		ActionNames:     []string{"iam:PassRole", "ecs:DeleteService"},
		ResourceArns:    []string{"arn:aws:iam::123456789012:role/ecs-tasks/web", "arn:aws:iam::123456789012:role/admin"},
		ContextEntries: []iamtypes.ContextEntry{{
			ContextKeyName: aws.String("iam:PassedToService"), ContextKeyType: iamtypes.ContextKeyTypeEnumString,
			ContextKeyValues: []string{"ecs-tasks.amazonaws.com"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got [][3]string
	for _, r := range out.EvaluationResults {
		got = append(got, [3]string{aws.ToString(r.EvalActionName), aws.ToString(r.EvalResourceName), string(r.EvalDecision)})
	}
	want := [][3]string{
		{"iam:PassRole", "arn:aws:iam::123456789012:role/ecs-tasks/web", "allowed"},
		{"iam:PassRole", "arn:aws:iam::123456789012:role/admin", "implicitDeny"},
		{"ecs:DeleteService", "arn:aws:iam::123456789012:role/ecs-tasks/web", "implicitDeny"},
		{"ecs:DeleteService", "arn:aws:iam::123456789012:role/admin", "implicitDeny"},
	}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("results (-got +want):\n%s", d)
	}

	_, err = iamc.SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String("arn:aws:iam::123456789012:role/nobody"), ActionNames: []string{"ecs:ListClusters"},
	})
	var nse *iamtypes.NoSuchEntityException
	if !errors.As(err, &nse) {
		t.Errorf("unknown role: err = %v, want NoSuchEntityException", err)
	}
}

func TestCloudTrailOverSDK(t *testing.T) {
	s, _, _, ct := newQueryEnv(t)
	ctx := context.Background()
	s.PutTrail(Trail{Name: "org", MultiRegion: true, HomeRegion: "eu-west-1", Logging: true})
	s.PutTrail(Trail{Name: "local", Logging: false, EventSelectors: []EventSelector{{ReadWriteType: "ReadOnly", IncludeManagementEvents: true}}})
	s.PutTrail(Trail{Name: "elsewhere", HomeRegion: "ap-south-1", Logging: true})

	trails, err := ct.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tr := range trails.TrailList {
		names = append(names, aws.ToString(tr.Name)+"@"+aws.ToString(tr.HomeRegion))
	}
	if d := cmp.Diff(names, []string{"org@eu-west-1", "local@us-east-1"}); d != "" {
		t.Errorf("trails (-got +want):\n%s", d)
	}

	st, err := ct.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: trails.TrailList[0].TrailARN})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(st.IsLogging) {
		t.Errorf("org trail: IsLogging false, want true")
	}
	sel, err := ct.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("local")})
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.EventSelectors) != 1 || sel.EventSelectors[0].ReadWriteType != "ReadOnly" || !aws.ToBool(sel.EventSelectors[0].IncludeManagementEvents) {
		t.Errorf("local selectors = %+v, want one ReadOnly management selector", sel.EventSelectors)
	}

	_, err = ct.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String("missing")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "TrailNotFoundException" {
		t.Errorf("missing trail: err = %v, want TrailNotFoundException", err)
	}
}

func TestCloudTrailBotocoreTargetPrefix(t *testing.T) {
	for target, want := range map[string]bool{
		"com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.DescribeTrails": true,
		"CloudTrail_20131101.GetTrailStatus":                                    true,
		"AmazonEC2ContainerServiceV20141113.ListClusters":                       false,
	} {
		if got := isCloudTrailTarget(target); got != want {
			t.Errorf("isCloudTrailTarget(%q) = %v, want %v", target, got, want)
		}
	}
}
