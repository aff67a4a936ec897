package main

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/config"
)

// Fakes of check's narrow interfaces that fail as told.
type (
	fakeSTS    struct{ err error }
	fakeSQS    struct{ err error }
	fakeEvents struct {
		err   error
		names []string
	}
	fakeSecrets struct{ err error }
	fakeTrails  struct {
		describeErr, statusErr, selectorsErr error
		trails                               []cttypes.Trail
		logging                              bool
		selectors                            []cttypes.EventSelector
	}
)

func (f fakeSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return nil, f.err
}

func (f fakeSQS) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return nil, f.err
}

func (f fakeEvents) ListRuleNamesByTarget(context.Context, *eventbridge.ListRuleNamesByTargetInput, ...func(*eventbridge.Options)) (*eventbridge.ListRuleNamesByTargetOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &eventbridge.ListRuleNamesByTargetOutput{RuleNames: f.names}, nil
}

func (f fakeSecrets) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &secretsmanager.DescribeSecretOutput{}, nil
}

func (f fakeTrails) DescribeTrails(context.Context, *cloudtrail.DescribeTrailsInput, ...func(*cloudtrail.Options)) (*cloudtrail.DescribeTrailsOutput, error) {
	if f.describeErr != nil {
		return nil, f.describeErr
	}
	return &cloudtrail.DescribeTrailsOutput{TrailList: f.trails}, nil
}

func (f fakeTrails) GetTrailStatus(context.Context, *cloudtrail.GetTrailStatusInput, ...func(*cloudtrail.Options)) (*cloudtrail.GetTrailStatusOutput, error) {
	if f.statusErr != nil {
		return nil, f.statusErr
	}
	return &cloudtrail.GetTrailStatusOutput{IsLogging: aws.Bool(f.logging)}, nil
}

func (f fakeTrails) GetEventSelectors(context.Context, *cloudtrail.GetEventSelectorsInput, ...func(*cloudtrail.Options)) (*cloudtrail.GetEventSelectorsOutput, error) {
	if f.selectorsErr != nil {
		return nil, f.selectorsErr
	}
	return &cloudtrail.GetEventSelectorsOutput{EventSelectors: f.selectors}, nil
}

// apiErr is an error as the SDK returns AWS's: an operation error around
// the service's code.
func apiErr(service, op, code string) error {
	return &smithy.OperationError{ServiceID: service, OperationName: op,
		Err: &smithy.GenericAPIError{Code: code, Message: code + " (test)"}}
}

// unreachable is the SDK's error for an endpoint that does not answer: a
// real call to a closed port on 127.0.0.1, one attempt.
func unreachable(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err == nil {
		t.Fatal("a closed port answered")
	}
	return err
}

// noCredentials is the SDK's error when the credential chain finds nothing:
// a real call whose provider fails (nothing is sent).
func noCredentials(t *testing.T) error {
	t.Helper()
	provider := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no EC2 IMDS role found")
	})
	_, err := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:9"), RetryMaxAttempts: 1,
		Credentials: provider}).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err == nil {
		t.Fatal("a call without credentials succeeded")
	}
	return err
}

// hintIAM is an awssim IAM on 127.0.0.1 where only the roles given exist,
// with the policies given.
func hintIAM(t *testing.T, roles map[string][]awssim.Statement) *iam.Client {
	t.Helper()
	sim := awssim.New(awssim.Options{})
	for arn, p := range roles {
		sim.PutPrincipalPolicy(arn, p)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return iam.NewFromConfig(sdkConfig(srv.URL))
}

// deniedIAM refuses SimulatePrincipalPolicy, as IAM does when the caller may not simulate.
type deniedIAM struct{}

func (deniedIAM) SimulatePrincipalPolicy(context.Context, *iam.SimulatePrincipalPolicyInput, ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error) {
	return nil, apiErr("IAM", "SimulatePrincipalPolicy", "AccessDenied")
}

// Every failing path of every check has a fix that matches its cause: a
// role that does not exist is not told to allow GetSecretValue, a refused
// DescribeTrails is not told to create a trail, and so on.
func TestCheckHintsMatchTheCause(t *testing.T) {
	noAWSEnv(t)
	ctx := context.Background()
	const (
		region  = "us-east-1"
		secret  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lacework/token-AbCdEf"
		role    = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
		me      = "arn:aws:iam::123456789012:role/reconciler-TaskRole"
		queue   = "arn:aws:sqs:us-east-1:123456789012:events"
		qURL    = "https://sqs.us-east-1.amazonaws.com/123456789012/events"
		callerS = "arn:aws:sts::123456789012:assumed-role/reconciler-TaskRole/task"
	)
	cfg, err := config.Parse([]byte("profiles:\n  lacework:\n    tokenSecretArn: " + secret + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	web := []checkFamily{{name: "web", executionRole: role, profile: "lacework"}}
	caller := identity{account: "123456789012", arn: callerS, partition: "aws"}
	logsOnly := []awssim.Statement{{Effect: "Allow", Actions: []string{"logs:PutLogEvents"}, Resources: []string{"*"}}}
	here := cttypes.Trail{Name: aws.String("main"), TrailARN: aws.String("arn:aws:cloudtrail:us-east-1:123456789012:trail/main"), HomeRegion: aws.String(region)}
	elsewhere := cttypes.Trail{Name: aws.String("eu"), TrailARN: aws.String("arn:aws:cloudtrail:eu-west-1:123456789012:trail/eu"), HomeRegion: aws.String("eu-west-1")}
	allEvents := []cttypes.EventSelector{{IncludeManagementEvents: aws.Bool(true), ReadWriteType: cttypes.ReadWriteTypeAll}}
	readOnly := []cttypes.EventSelector{{IncludeManagementEvents: aws.Bool(true), ReadWriteType: cttypes.ReadWriteTypeReadOnly}}
	credentialsOf := func(err error) checkResult {
		_, r := checkCredentials(ctx, fakeSTS{err}, region)
		return r
	}
	queueOf := func(err error) checkResult {
		_, r := checkQueue(ctx, fakeSQS{err}, qURL)
		return r
	}
	setupOf := func(o cloud.Options) checkResult {
		_, _, err := cloud.New(ctx, o)
		if err == nil {
			t.Fatalf("cloud.New(%+v) accepted", o)
		}
		return checkResult{name: "credentials", detail: err.Error(), fix: setupFix(err)}
	}
	permissionsOf := func(c iamSimulateAPI, taskRole string) checkResult {
		return checkPermissions(ctx, c, cfg, caller, checkOptions{region: region, taskRole: taskRole}, queue, web)
	}

	cases := []struct {
		cause    string
		result   func() checkResult
		want     string // in the fix
		wantNot  string // not in the fix ("" for no such test)
		inDetail string // in the detail
	}{
		// credentials, before any call
		{"no region", func() checkResult { return setupOf(cloud.Options{}) }, "set aws.region", "", "no region"},
		{"endpoint not a URL", func() checkResult { return setupOf(cloud.Options{Region: region, Endpoint: "localhost:4566"}) }, "correct aws.endpoint", "aws.region", ""},
		// credentials: STS GetCallerIdentity
		{"no credentials", func() checkResult { return credentialsOf(noCredentials(t)) }, "found no credentials", "no answer", ""},
		{"expired credentials", func() checkResult { return credentialsOf(apiErr("STS", "GetCallerIdentity", "ExpiredToken")) }, "expired", "", "ExpiredToken"},
		{"unknown credentials", func() checkResult { return credentialsOf(apiErr("STS", "GetCallerIdentity", "InvalidClientTokenId")) }, "does not know these credentials", "", ""},
		{"STS unreachable", func() checkResult { return credentialsOf(unreachable(t)) }, "no answer from STS in us-east-1", "set credentials", ""},
		{"STS throttled", func() checkResult { return credentialsOf(apiErr("STS", "GetCallerIdentity", "Throttling")) }, "run again later", "set credentials", ""},
		// queue
		{"queue.url unset", func() checkResult { _, r := checkQueue(ctx, fakeSQS{}, ""); return r }, "set queue.url", "", "not set"},
		{"queue does not exist", func() checkResult {
			return queueOf(apiErr("SQS", "GetQueueAttributes", "AWS.SimpleQueueService.NonExistentQueue"))
		}, "create the queue", "allow", ""},
		{"queue not readable", func() checkResult { return queueOf(apiErr("SQS", "GetQueueAttributes", "AccessDenied")) }, "allow sqs:GetQueueAttributes", "create the queue", ""},
		{"SQS unreachable", func() checkResult { return queueOf(unreachable(t)) }, "no answer from SQS", "create the queue", ""},
		// rule
		{"rule, queue unknown", func() checkResult { return checkRule(ctx, fakeEvents{}, "") }, "fix the queue first", "create EventBridge rules", ""},
		{"rules not listable", func() checkResult {
			return checkRule(ctx, fakeEvents{err: apiErr("EventBridge", "ListRuleNamesByTarget", "AccessDeniedException")}, queue)
		}, "allow events:ListRuleNamesByTarget", "create EventBridge rules", ""},
		{"no rule targets the queue", func() checkResult { return checkRule(ctx, fakeEvents{}, queue) }, "create EventBridge rules", "", "no EventBridge rule"},
		// token-secret
		{"token secret does not exist", func() checkResult {
			return checkTokenSecrets(ctx, fakeSecrets{apiErr("Secrets Manager", "DescribeSecret", "ResourceNotFoundException")}, cfg)
		}, "create the secret", "allow", "ResourceNotFoundException"},
		{"token secret not describable", func() checkResult {
			return checkTokenSecrets(ctx, fakeSecrets{apiErr("Secrets Manager", "DescribeSecret", "AccessDeniedException")}, cfg)
		}, "allow secretsmanager:DescribeSecret", "create the secret", "AccessDeniedException"},
		// execution-roles (IAM through awssim)
		{"execution role does not exist", func() checkResult {
			return checkExecutionRoles(ctx, hintIAM(t, nil), cfg, web, nil)
		}, "create that role, or correct the executionRoleArn", "GetSecretValue", role + " does not exist (family web)"},
		{"execution role may not read the token", func() checkResult {
			return checkExecutionRoles(ctx, hintIAM(t, map[string][]awssim.Statement{role: logsOnly}), cfg, web, nil)
		}, "allow secretsmanager:GetSecretValue", "create that role", "may not secretsmanager:GetSecretValue"},
		{"execution role not simulable", func() checkResult { return checkExecutionRoles(ctx, deniedIAM{}, cfg, web, nil) },
			"allow iam:SimulatePrincipalPolicy on those roles", "GetSecretValue", "not simulated"},
		{"one role missing, another may not read", func() checkResult {
			fams := append([]checkFamily{{name: "api", executionRole: me, profile: "lacework"}}, web...)
			return checkExecutionRoles(ctx, hintIAM(t, map[string][]awssim.Statement{me: logsOnly}), cfg, fams, nil)
		}, "create that role, or correct the executionRoleArn of those families (profiles.<name>.defaultExecutionRoleArn for a profile's); allow secretsmanager:GetSecretValue", "", ""},
		{"families not listable", func() checkResult {
			return checkExecutionRoles(ctx, hintIAM(t, nil), cfg, nil, apiErr("ECS", "ListTaskDefinitionFamilies", "AccessDeniedException"))
		}, "allow ecs:ListTaskDefinitionFamilies", "", "not checked"},
		{"family without an execution role", func() checkResult {
			return checkExecutionRoles(ctx, hintIAM(t, nil), cfg, []checkFamily{{name: "web", profile: "lacework"}}, nil)
		}, "give them an executionRoleArn", "", "without an execution role"},
		// permissions
		{"--task-role does not exist", func() checkResult { return permissionsOf(hintIAM(t, nil), me) },
			"pass the stack's TaskRoleArn output as --task-role", "allow iam:SimulatePrincipalPolicy", "NoSuchEntity"},
		{"caller's role not found", func() checkResult { return permissionsOf(hintIAM(t, nil), "") },
			"its path taken as /", "allow iam:SimulatePrincipalPolicy", "NoSuchEntity"},
		{"task role not simulable", func() checkResult { return permissionsOf(deniedIAM{}, me) },
			"allow iam:SimulatePrincipalPolicy on " + me, "does not exist", "AccessDenied"},
		{"task role lacks grants", func() checkResult { return permissionsOf(hintIAM(t, map[string][]awssim.Statement{me: logsOnly}), "") },
			"TaskRolePolicy", "SimulatePrincipalPolicy", "may not: "},
		{"caller not a role or user", func() checkResult {
			return checkPermissions(ctx, deniedIAM{}, cfg, identity{arn: "arn:aws:iam::123456789012:root"}, checkOptions{region: region}, queue, web)
		}, "pass --task-role", "", "cannot tell"},
		// cloudtrail
		{"trails not listable", func() checkResult {
			return checkCloudTrail(ctx, fakeTrails{describeErr: apiErr("CloudTrail", "DescribeTrails", "AccessDeniedException")}, region)
		}, "allow cloudtrail:DescribeTrails", "create a trail", ""},
		{"no trail", func() checkResult { return checkCloudTrail(ctx, fakeTrails{}, region) }, "create a trail that logs write management events in us-east-1", "", "no trail in us-east-1"},
		{"trail not logging", func() checkResult { return checkCloudTrail(ctx, fakeTrails{trails: []cttypes.Trail{here}}, region) },
			"aws cloudtrail start-logging --name arn:aws:cloudtrail:us-east-1:123456789012:trail/main", "create a trail", "not logging"},
		{"trail logs reads only", func() checkResult {
			return checkCloudTrail(ctx, fakeTrails{trails: []cttypes.Trail{here}, logging: true, selectors: readOnly}, region)
		}, "ReadWriteType All or WriteOnly", "start-logging", "no write management events"},
		{"trail status not readable", func() checkResult {
			return checkCloudTrail(ctx, fakeTrails{trails: []cttypes.Trail{here}, statusErr: apiErr("CloudTrail", "GetTrailStatus", "AccessDeniedException")}, region)
		}, "allow cloudtrail:GetTrailStatus and cloudtrail:GetEventSelectors", "create a trail", "GetTrailStatus: AccessDeniedException"},
		{"selectors not readable", func() checkResult {
			return checkCloudTrail(ctx, fakeTrails{trails: []cttypes.Trail{here}, logging: true, selectorsErr: apiErr("CloudTrail", "GetEventSelectors", "AccessDeniedException")}, region)
		}, "allow cloudtrail:GetTrailStatus and cloudtrail:GetEventSelectors", "start-logging", "GetEventSelectors: AccessDeniedException"},
		{"trail of another Region", func() checkResult {
			return checkCloudTrail(ctx, fakeTrails{trails: []cttypes.Trail{elsewhere}, logging: true, selectors: allEvents}, region)
		}, "make arn:aws:cloudtrail:eu-west-1:123456789012:trail/eu a multi-Region trail", "start-logging", "another Region"},
	}
	for _, c := range cases {
		t.Run(c.cause, func(t *testing.T) {
			r := c.result()
			if r.ok {
				t.Fatalf("passed: %s", r)
			}
			if !strings.Contains(r.fix, c.want) {
				t.Errorf("fix %q does not say %q\n%s", r.fix, c.want, r)
			}
			if c.wantNot != "" && strings.Contains(r.fix, c.wantNot) {
				t.Errorf("fix %q says %q, which is not this cause's\n%s", r.fix, c.wantNot, r)
			}
			if !strings.Contains(r.detail, c.inDetail) {
				t.Errorf("detail %q does not say %q", r.detail, c.inDetail)
			}
		})
	}
}

// The good paths of the same checks pass, so that the table above fails
// for its causes and not for its set-up.
func TestCheckHintsSetupPasses(t *testing.T) {
	ctx := context.Background()
	const secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lacework/token-AbCdEf"
	const role = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
	cfg, err := config.Parse([]byte("profiles:\n  lacework:\n    tokenSecretArn: " + secret + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	web := []checkFamily{{name: "web", executionRole: role, profile: "lacework"}}
	here := cttypes.Trail{Name: aws.String("main"), HomeRegion: aws.String("us-east-1")}
	for _, r := range []checkResult{
		checkRule(ctx, fakeEvents{names: []string{"ecs"}}, "arn:aws:sqs:us-east-1:123456789012:events"),
		checkTokenSecrets(ctx, fakeSecrets{}, cfg),
		checkExecutionRoles(ctx, hintIAM(t, map[string][]awssim.Statement{role: {{Effect: "Allow", Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{secret}}}}), cfg, web, nil),
		checkCloudTrail(ctx, fakeTrails{trails: []cttypes.Trail{here}, logging: true, selectors: []cttypes.EventSelector{{IncludeManagementEvents: aws.Bool(true), ReadWriteType: cttypes.ReadWriteTypeWriteOnly}}}, "us-east-1"),
	} {
		if !r.ok {
			t.Errorf("failed: %s", r)
		}
	}
}
