package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/deploytest"
	"github.com/ecs-sidecar/reconciler/internal/moto"
)

// checkWorld is an account for `check`: awssim serves STS, IAM, CloudTrail,
// Secrets Manager and ECS; moto_server serves SQS and EventBridge (not in
// awssim yet). One loopback endpoint routes each request by its target, so
// that the SDK clients, and `check` itself, see a single endpoint.
type checkWorld struct {
	sim      *awssim.Sim
	endpoint string
	sqs      *sqs.Client
	events   *eventbridge.Client
	cfg      *config.Config
	queueArn string
	secret   string
}

const (
	checkTaskRole = "arn:aws:iam::123456789012:role/reconciler-TaskRole"
	checkExecRole = "arn:aws:iam::123456789012:role/ecs-tasks/web-execution"
)

// checkBackends is one moto_server and the awssim of the current case
// behind one endpoint.
type checkBackends struct {
	endpoint string
	sim      atomic.Pointer[http.Handler]
}

func startCheckBackends(t *testing.T) *checkBackends {
	t.Helper()
	motoURL, err := url.Parse(moto.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	b := &checkBackends{}
	proxy := httputil.NewSingleHostReverseProxy(motoURL)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		if strings.HasPrefix(target, "AmazonSQS.") || strings.HasPrefix(target, "AWSEvents.") {
			proxy.ServeHTTP(w, r)
			return
		}
		(*b.sim.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	b.endpoint = srv.URL
	return b
}

// freshSim makes a new awssim account the endpoint serves.
func (b *checkBackends) freshSim() *awssim.Sim {
	s := awssim.New(awssim.Options{})
	h := s.Handler()
	b.sim.Store(&h)
	return s
}

func sdkConfig(endpoint string) aws.Config {
	return aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
}

// newCheckWorld sets up a good account: queue with a DLQ and a rule on it,
// the token secret, an opted-in family whose execution role may read it, the
// reconciler's task role with the template's own policy, a logging trail.
// name keeps the SQS names of subtests apart on one moto_server.
func newCheckWorld(t *testing.T, sim *awssim.Sim, endpoint, name string) *checkWorld {
	t.Helper()
	ctx := context.Background()
	ac := sdkConfig(endpoint)
	w := &checkWorld{sim: sim, endpoint: endpoint, sqs: sqs.NewFromConfig(ac), events: eventbridge.NewFromConfig(ac)}

	dlq, err := w.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	dlqAttrs, err := w.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	redrive, _ := json.Marshal(map[string]any{"deadLetterTargetArn": dlqAttrs.Attributes["QueueArn"], "maxReceiveCount": 10})
	q, err := w.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{"RedrivePolicy": string(redrive)}})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := w.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	w.queueArn = attrs.Attributes["QueueArn"]
	if _, err := w.events.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name + "-ecs"), EventPattern: aws.String(`{"source":["aws.ecs"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.events.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(name + "-ecs"), Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(w.queueArn)}}}); err != nil {
		t.Fatal(err)
	}

	sec, err := secretsmanager.NewFromConfig(ac).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name + "/token"), SecretString: aws.String("not read")})
	if err != nil {
		t.Fatal(err)
	}
	w.secret = aws.ToString(sec.ARN)

	ecsc := ecs.NewFromConfig(ac)
	if _, err := ecsc.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(name + "-web"), RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate},
		NetworkMode: ecstypes.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		ExecutionRoleArn: aws.String(checkExecRole),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("nginx"), Essential: aws.Bool(true),
			EntryPoint: []string{"/docker-entrypoint.sh"}, Command: []string{"nginx"}}},
		Tags: []ecstypes.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}},
	}); err != nil {
		t.Fatal(err)
	}

	sim.PutPrincipalPolicy(checkExecRole, []awssim.Statement{{Effect: "Allow", Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{w.secret}}})
	w.putTaskRolePolicy(t, nil)
	sim.SetCallerIdentity("arn:aws:sts::123456789012:assumed-role/reconciler-TaskRole/ecs-task-1")
	sim.PutTrail(awssim.Trail{Name: "management", Logging: true})

	doc := "queue:\n  url: " + aws.ToString(q.QueueUrl) + "\nprofiles:\n  lacework:\n    tokenSecretArn: " + w.secret + "\n"
	if w.cfg, err = config.Parse([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	return w
}

// putTaskRolePolicy gives the task role the template's TaskRolePolicy,
// resolved for this account, less the statements drop names.
func (w *checkWorld) putTaskRolePolicy(t *testing.T, drop func(awssim.Statement) bool) {
	t.Helper()
	tpl, err := deploytest.Load(deploytest.Path())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := tpl.PolicyJSON(deploytest.Stack{
		Region: "us-east-1", Account: "123456789012", Partition: "aws", StackName: "reconciler",
		Params: map[string]any{"TokenSecretArn": w.secret, "PassableRoleArns": []string{checkExecRole}},
		Attrs:  map[string]string{"Queue.Arn": w.queueArn},
	}, "TaskRolePolicy", "PolicyDocument")
	if err != nil {
		t.Fatal(err)
	}
	policy, err := awssim.ParsePolicy(doc)
	if err != nil {
		t.Fatal(err)
	}
	var kept []awssim.Statement
	for _, st := range policy {
		if drop == nil || !drop(st) {
			kept = append(kept, st)
		}
	}
	w.sim.PutPrincipalPolicy(checkTaskRole, kept)
}

func (w *checkWorld) run(t *testing.T) []checkResult {
	t.Helper()
	ac := sdkConfig(w.endpoint)
	c := checkClients{
		sts: sts.NewFromConfig(ac), iam: iam.NewFromConfig(ac), sm: secretsmanager.NewFromConfig(ac),
		sqs: w.sqs, events: w.events, trail: cloudtrail.NewFromConfig(ac), ecs: ecs.NewFromConfig(ac),
	}
	return runChecks(context.Background(), w.cfg, c, checkOptions{region: "us-east-1", maxFamilies: 100})
}

func verdicts(rs []checkResult) map[string]bool {
	m := map[string]bool{}
	for _, r := range rs {
		m[r.name] = r.ok
	}
	return m
}

func allPass() map[string]bool {
	return map[string]bool{"credentials": true, "queue": true, "rule": true, "token-secret": true,
		"execution-roles": true, "permissions": true, "cloudtrail": true}
}

func TestCheck(t *testing.T) {
	b := startCheckBackends(t)
	cases := []struct {
		name   string
		break_ func(t *testing.T, w *checkWorld)
		fails  []string
		says   string // in the failing line
	}{
		{name: "good"},
		{"no credentials", func(t *testing.T, w *checkWorld) {
			w.sim.AddGate(func(_ context.Context, r awssim.Request) error {
				if r.Service == "sts" {
					return &awssim.Error{Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid.", Status: 403}
				}
				return nil
			})
		}, []string{"credentials", "queue", "rule", "token-secret", "execution-roles", "permissions", "cloudtrail"}, "InvalidClientTokenId"},
		{"queue missing", func(t *testing.T, w *checkWorld) {
			w.cfg.Queue.URL = strings.Replace(w.cfg.Queue.URL, "queue-missing", "no-such-queue", 1)
		}, []string{"queue", "rule"}, "GetQueueAttributes"},
		{"no rule targets the queue", func(t *testing.T, w *checkWorld) {
			if _, err := w.events.RemoveTargets(context.Background(), &eventbridge.RemoveTargetsInput{Rule: aws.String("no-rule-targets-the-queue-ecs"), Ids: []string{"q"}}); err != nil {
				t.Fatal(err)
			}
		}, []string{"rule"}, "no EventBridge rule"},
		{"token secret missing", func(t *testing.T, w *checkWorld) {
			p := w.cfg.Profiles["lacework"]
			p.TokenSecretArn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf"
			w.cfg.Profiles["lacework"] = p
			w.sim.PutPrincipalPolicy(checkExecRole, []awssim.Statement{{Effect: "Allow", Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{p.TokenSecretArn}}})
		}, []string{"token-secret", "permissions"}, "gone-AbCdEf"},
		{"execution role may not read the token", func(t *testing.T, w *checkWorld) {
			w.sim.PutPrincipalPolicy(checkExecRole, []awssim.Statement{{Effect: "Allow", Actions: []string{"logs:PutLogEvents"}, Resources: []string{"*"}}})
		}, []string{"execution-roles"}, "secretsmanager:GetSecretValue"},
		{"task role lacks the queue statement", func(t *testing.T, w *checkWorld) {
			w.putTaskRolePolicy(t, func(st awssim.Statement) bool { return st.Sid == "ConsumeEventQueue" })
		}, []string{"permissions"}, "sqs:ReceiveMessage"},
		{"task role may not pass the family roles", func(t *testing.T, w *checkWorld) {
			w.putTaskRolePolicy(t, func(st awssim.Statement) bool { return st.Sid == "PassFamiliesRolesToEcsTasks" })
		}, []string{"permissions"}, "iam:PassRole on " + checkExecRole},
		// The template's two replicas use its lease table: the task role
		// may; another table, it may not.
		{"leases on the stack table", func(t *testing.T, w *checkWorld) {
			w.cfg.Leases.Table = "reconciler-LeaseTable"
		}, nil, ""},
		{"leases on another table", func(t *testing.T, w *checkWorld) {
			w.cfg.Leases.Table = "someone-elses"
		}, []string{"permissions"}, "dynamodb:GetItem"},
		{"trail not logging", func(t *testing.T, w *checkWorld) {
			w.sim.PutTrail(awssim.Trail{Name: "management", Logging: false})
		}, []string{"cloudtrail"}, "not logging"},
		{"trail logs read events only", func(t *testing.T, w *checkWorld) {
			w.sim.PutTrail(awssim.Trail{Name: "management", Logging: true, EventSelectors: []awssim.EventSelector{{ReadWriteType: "ReadOnly", IncludeManagementEvents: true}}})
		}, []string{"cloudtrail"}, "no write management events"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A fresh awssim account per case; queues and rules are named
			// after the case on the shared moto_server.
			w := newCheckWorld(t, b.freshSim(), b.endpoint, strings.ReplaceAll(c.name, " ", "-"))
			if c.break_ != nil {
				c.break_(t, w)
			}
			rs := w.run(t)
			want := allPass()
			for _, f := range c.fails {
				want[f] = false
			}
			if d := cmp.Diff(verdicts(rs), want); d != "" {
				t.Errorf("verdicts (-got +want):\n%s\nreport:\n%s", d, report(rs))
			}
			if c.says != "" && !strings.Contains(report(rs), c.says) {
				t.Errorf("report does not say %q:\n%s", c.says, report(rs))
			}
			for _, r := range rs {
				if !r.ok && r.fix == "" {
					t.Errorf("%s fails without a fix", r.name)
				}
			}
		})
	}
}

func report(rs []checkResult) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.String() + "\n")
	}
	return b.String()
}

func TestCheckCommandPrintsOneLinePerCheckAndExits1OnFailure(t *testing.T) {
	b := startCheckBackends(t)
	w := newCheckWorld(t, b.freshSim(), b.endpoint, "command")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	path := filepath.Join(t.TempDir(), "config.yaml")
	doc := "aws:\n  region: us-east-1\n  endpoint: " + b.endpoint + "\n  maxAttempts: 1\nqueue:\n  url: " + w.cfg.Queue.URL +
		"\nprofiles:\n  lacework:\n    tokenSecretArn: " + w.secret + "\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	runCheck := func() (int, []string) {
		var stdout, stderr bytes.Buffer
		code := realMain(env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}, []string{"check", "--config", path})
		if stderr.Len() > 0 {
			t.Errorf("stderr: %s", stderr.String())
		}
		return code, strings.Split(strings.TrimSpace(stdout.String()), "\n")
	}
	code, lines := runCheck()
	var verbs []string
	for _, l := range lines {
		verb, rest, _ := strings.Cut(l, " ")
		name, _, _ := strings.Cut(rest, ":")
		verbs = append(verbs, verb+" "+name)
	}
	want := []string{"PASS credentials", "PASS queue", "PASS rule", "PASS token-secret", "PASS execution-roles", "PASS permissions", "PASS cloudtrail"}
	if d := cmp.Diff(verbs, want); d != "" || code != exitOK {
		t.Errorf("good account: exit %d, lines (-got +want):\n%s\n%s", code, d, strings.Join(lines, "\n"))
	}

	w.sim.PutTrail(awssim.Trail{Name: "management", Logging: false})
	code, lines = runCheck()
	last := lines[len(lines)-1]
	if code != exitFail || !strings.HasPrefix(last, "FAIL cloudtrail: ") || !strings.Contains(last, "; fix: start logging on ") {
		t.Errorf("trail stopped: exit %d, last line %q; want exit 1 and a FAIL cloudtrail line with its fix (start logging)", code, last)
	}
}
