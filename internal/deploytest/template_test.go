package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// starActions are the only actions the template may grant on Resource "*",
// each with the reason a reviewer reads in docs/operations.md.
var starActions = map[string]string{
	"ecs:RegisterTaskDefinition":     "no resource type in the service authorization reference",
	"ecs:DescribeTaskDefinition":     "no resource type",
	"ecs:DeregisterTaskDefinition":   "no resource type",
	"ecs:ListTaskDefinitions":        "list action, no resource type",
	"ecs:ListTaskDefinitionFamilies": "list action, no resource type",
	"ecs:ListClusters":               "list action, no resource type",
	"ecs:ListServices":               "list action over every cluster of the Region; a cluster scope is not relied on",
	"ecr:GetAuthorizationToken":      "no resource type (a registry login)",
	"cloudtrail:DescribeTrails":      "list action, no resource type",
	"events:ListRuleNamesByTarget":   "list action; a rule scope is not relied on",
}

// testStack is a deployment with every optional feature on.
func testStack() Stack {
	return Stack{
		Region: "eu-west-1", Account: "123456789012", Partition: "aws", StackName: "reconciler",
		Params: map[string]any{
			"ClusterName":                  "tools",
			"SubnetIds":                    []string{"subnet-0a", "subnet-0b"},
			"SecurityGroupId":              "sg-0123",
			"ImageUri":                     "123456789012.dkr.ecr.eu-west-1.amazonaws.com/reconciler@sha256:" + strings.Repeat("a", 64),
			"TokenSecretArn":               "arn:aws:secretsmanager:eu-west-1:123456789012:secret:lacework/token-AbCdEf",
			"PassableRoleArns":             []string{"arn:aws:iam::123456789012:role/ecs-tasks/*", "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"},
			"RegistryCredentialSecretArns": []string{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry/dockerhub-AbCdEf"},
			"AuditEventBusName":            "audit",
			"AlarmTopicArn":                "arn:aws:sns:eu-west-1:123456789012:ops",
			"CreateTrail":                  "true",
		},
	}
}

// minimalStack leaves every optional parameter at its default.
func minimalStack() Stack {
	s := testStack()
	for _, k := range []string{"RegistryCredentialSecretArns", "AuditEventBusName", "AlarmTopicArn", "CreateTrail"} {
		delete(s.Params, k)
	}
	return s
}

func load(t *testing.T) *Template {
	t.Helper()
	tpl, err := Load(Path())
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func policyOf(t *testing.T, tpl *Template, s Stack, resource string, path ...string) []awssim.Statement {
	t.Helper()
	doc, err := tpl.PolicyJSON(s, resource, path...)
	if err != nil {
		t.Fatal(err)
	}
	st, err := awssim.ParsePolicy(doc)
	if err != nil {
		t.Fatalf("%s: %v\n%s", resource, err, doc)
	}
	return st
}

func TestCfnLint(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatalf("cfn-lint is not installed (pip package cfn-lint): %v", err)
	}
	out, err := exec.Command(bin, Path()).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("cfn-lint %s: %v\n%s", Path(), err, out)
	}
}

func TestTaskRolePolicyIsLeastPrivilege(t *testing.T) {
	tpl := load(t)
	for name, s := range map[string]Stack{"every option": testStack(), "defaults": minimalStack()} {
		t.Run(name, func(t *testing.T) {
			statements := policyOf(t, tpl, s, "TaskRolePolicy", "PolicyDocument")
			if len(statements) < 10 {
				t.Fatalf("only %d statements: the template did not resolve as expected", len(statements))
			}
			for _, st := range statements {
				if st.Effect != "Allow" {
					t.Errorf("%s: Effect %s; the task role only allows", st.Sid, st.Effect)
				}
				for _, a := range st.Actions {
					if strings.ContainsAny(a, "*?") {
						t.Errorf("%s: wildcard action %q", st.Sid, a)
					}
				}
				for _, r := range st.Resources {
					if r == "" || r == "*" && len(st.Resources) > 1 {
						t.Errorf("%s: resource list %q mixes * with ARNs or is empty", st.Sid, st.Resources)
					}
					if r != "*" {
						continue
					}
					for _, a := range st.Actions {
						if _, ok := starActions[a]; !ok {
							t.Errorf("%s: %s on Resource \"*\": AWS allows a narrower resource, or add it to starActions with the reason", st.Sid, a)
						}
					}
				}
				if slices.Contains(st.Actions, "iam:PassRole") {
					want := []awssim.Condition{{Operator: "StringEquals", Key: "iam:PassedToService", Values: []string{"ecs-tasks.amazonaws.com"}}}
					if d := cmp.Diff(st.Conditions, want); d != "" {
						t.Errorf("%s: PassRole condition (-got +want):\n%s", st.Sid, d)
					}
					if slices.Contains(st.Resources, "*") || slices.ContainsFunc(st.Resources, func(r string) bool { return r == "arn:aws:iam::123456789012:role/*" }) {
						t.Errorf("%s: PassRole on every role: %v", st.Sid, st.Resources)
					}
				}
				if slices.Contains(st.Actions, "ecs:TagResource") {
					if len(st.Conditions) != 1 || (st.Conditions[0].Key != "ecs:CreateAction" && st.Conditions[0].Key != "aws:TagKeys") {
						t.Errorf("%s: TagResource without an ecs:CreateAction or aws:TagKeys condition: %+v", st.Sid, st.Conditions)
					}
				}
				if slices.Contains(st.Actions, "secretsmanager:GetSecretValue") && slices.Contains(st.Resources, s.Params["TokenSecretArn"].(string)) {
					t.Errorf("%s: the reconciler may read the token's value", st.Sid)
				}
			}
			// Tag on create must be conditioned on RegisterTaskDefinition.
			td := "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7"
			cases := []struct {
				action, resource string
				ctx              map[string][]string
				want             string
			}{
				{"ecs:TagResource", td, map[string][]string{"ecs:CreateAction": {"RegisterTaskDefinition"}, "aws:TagKeys": {"team", "ecs-sidecar/source"}}, awssim.DecisionAllowed},
				{"ecs:TagResource", td, map[string][]string{"aws:TagKeys": {"ecs-sidecar/failed"}}, awssim.DecisionAllowed},
				{"ecs:TagResource", td, map[string][]string{"aws:TagKeys": {"team"}}, awssim.DecisionImplicitDeny},
				{"ecs:UpdateService", "arn:aws:ecs:eu-west-1:123456789012:service/prod/web", nil, awssim.DecisionAllowed},
				{"ecs:UpdateService", "arn:aws:ecs:us-east-1:123456789012:service/prod/web", nil, awssim.DecisionImplicitDeny},
				{"iam:PassRole", "arn:aws:iam::123456789012:role/ecs-tasks/web", map[string][]string{"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}, awssim.DecisionAllowed},
				{"iam:PassRole", "arn:aws:iam::123456789012:role/Admin", map[string][]string{"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}, awssim.DecisionImplicitDeny},
				{"iam:PassRole", "arn:aws:iam::123456789012:role/ecs-tasks/web", map[string][]string{"iam:PassedToService": {"ec2.amazonaws.com"}}, awssim.DecisionImplicitDeny},
				{"sqs:DeleteMessage", "arn:aws:sqs:eu-west-1:123456789012:reconciler-Queue", nil, awssim.DecisionAllowed},
				{"sqs:DeleteMessage", "arn:aws:sqs:eu-west-1:123456789012:other", nil, awssim.DecisionImplicitDeny},
				{"secretsmanager:GetSecretValue", s.Params["TokenSecretArn"].(string), nil, awssim.DecisionImplicitDeny},
				{"iam:SimulatePrincipalPolicy", "arn:aws:iam::123456789012:role/reconciler-TaskRole", nil, awssim.DecisionAllowed},
			}
			for _, c := range cases {
				if got := awssim.Evaluate(statements, c.action, c.resource, c.ctx); got != c.want {
					t.Errorf("%s on %s %v: %s, want %s", c.action, c.resource, c.ctx, got, c.want)
				}
			}
		})
	}
}

func TestExecutionRolePolicy(t *testing.T) {
	tpl := load(t)
	res := tpl.Resources["ExecutionRole"].Properties["Policies"].([]any)
	for i := range res {
		doc, err := tpl.Resolve(res[i].(map[string]any)["PolicyDocument"], testStack())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(doc)
		st, err := awssim.ParsePolicy(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			for _, a := range s.Actions {
				if strings.Contains(a, "*") {
					t.Errorf("execution role %s: wildcard action %s", s.Sid, a)
				}
				if slices.Contains(s.Resources, "*") && a != "ecr:GetAuthorizationToken" {
					t.Errorf("execution role %s: %s on *", s.Sid, a)
				}
			}
		}
	}
}

func TestQueuePolicyIsBoundToTheRules(t *testing.T) {
	tpl := load(t)
	s := testStack()
	var rules []string
	for id, r := range tpl.Resources {
		if r.Type != "AWS::Events::Rule" {
			continue
		}
		arn, err := tpl.Resolve(map[string]any{"Fn::GetAtt": []any{id, "Arn"}}, s)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, arn.(string))
		targets, err := tpl.Property(s, id, "Targets")
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range targets.([]any) {
			tg := tg.(map[string]any)
			if tg["Arn"] != "arn:aws:sqs:eu-west-1:123456789012:reconciler-Queue" {
				t.Errorf("rule %s targets %v, want the queue", id, tg["Arn"])
			}
			if tg["RetryPolicy"] == nil || tg["DeadLetterConfig"] == nil {
				t.Errorf("rule %s target has no RetryPolicy or DeadLetterConfig", id)
			}
		}
	}
	sort.Strings(rules)
	if len(rules) != 2 {
		t.Fatalf("rules = %v, want the CloudTrail rule and the service events rule", rules)
	}
	// The Principal is not part of the policy model: checked below, then
	// left out of what ParsePolicy reads.
	resolved, err := tpl.Property(s, "QueuePolicy", "PolicyDocument")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range resolved.(map[string]any)["Statement"].([]any) {
		delete(st.(map[string]any), "Principal")
	}
	b, _ := json.Marshal(resolved)
	statements, err := awssim.ParsePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	var sends int
	for _, st := range statements {
		if st.Effect != "Allow" {
			continue
		}
		if !slices.Equal(st.Actions, []string{"sqs:SendMessage"}) {
			t.Errorf("%s: the queue policy allows %v; only sqs:SendMessage", st.Sid, st.Actions)
		}
		sends++
		want := []awssim.Condition{{Operator: "ArnEquals", Key: "aws:SourceArn", Values: rules}}
		got := slices.Clone(st.Conditions)
		for i := range got {
			got[i].Values = slices.Sorted(slices.Values(got[i].Values))
		}
		if d := cmp.Diff(got, want); d != "" {
			t.Errorf("%s: condition (-got +want):\n%s", st.Sid, d)
		}
	}
	if sends != 1 {
		t.Errorf("%d Allow statements in the queue policy, want 1", sends)
	}
	raw := tpl.Resources["QueuePolicy"].Properties["PolicyDocument"].(map[string]any)["Statement"].([]any)
	for _, st := range raw {
		st := st.(map[string]any)
		if st["Effect"] == "Allow" {
			if d := cmp.Diff(st["Principal"], map[string]any{"Service": "events.amazonaws.com"}); d != "" {
				t.Errorf("send principal (-got +want):\n%s", d)
			}
		}
	}
}

// taskDefinitionInput is the reconciler's own task definition as ECS's
// RegisterTaskDefinition input: CloudFormation's property names are the API's
// member names capitalised, which encoding/json matches case-insensitively;
// a property the SDK does not know fails the decode.
func taskDefinitionInput(t *testing.T, tpl *Template, s Stack) *ecs.RegisterTaskDefinitionInput {
	t.Helper()
	props, err := tpl.Property(s, "TaskDefinition")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(props)
	if err != nil {
		t.Fatal(err)
	}
	var in ecs.RegisterTaskDefinitionInput
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&in); err != nil {
		t.Fatalf("task definition: %v\n%s", err, b)
	}
	return &in
}

func TestOwnTaskDefinition(t *testing.T) {
	tpl := load(t)
	s := testStack()
	in := taskDefinitionInput(t, tpl, s)
	if rs := patch.Validate(in, nil); len(rs) > 0 {
		t.Errorf("patch.Validate: %v", rs)
	}
	if len(in.ContainerDefinitions) != 1 {
		t.Fatalf("%d containers, want 1", len(in.ContainerDefinitions))
	}
	c := in.ContainerDefinitions[0]
	got := map[string]any{
		"user":           aws.ToString(c.User),
		"readOnlyRootFS": aws.ToBool(c.ReadonlyRootFilesystem),
		"privileged":     aws.ToBool(c.Privileged),
		"capsAdded":      len(c.LinuxParameters.Capabilities.Add),
		"capsDropped":    c.LinuxParameters.Capabilities.Drop,
		"healthCheck":    c.HealthCheck.Command,
		"command":        c.Command,
		"tags":           fmt.Sprintf("%s=%s", aws.ToString(in.Tags[0].Key), aws.ToString(in.Tags[0].Value)),
	}
	want := map[string]any{
		"user": "65532:65532", "readOnlyRootFS": true, "privileged": false, "capsAdded": 0,
		"capsDropped": []string{"ALL"}, "healthCheck": []string{"CMD", "/reconciler", "healthcheck"},
		"command": []string{"run"}, "tags": "ecs-sidecar/inject=false",
	}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("container (-got +want):\n%s", d)
	}

	svc, err := tpl.Property(s, "Service")
	if err != nil {
		t.Fatal(err)
	}
	m := svc.(map[string]any)
	dc := m["DeploymentConfiguration"].(map[string]any)
	gotSvc := []any{m["DesiredCount"], dc["MinimumHealthyPercent"], dc["MaximumPercent"], m["Cluster"]}
	if d := cmp.Diff(gotSvc, []any{float64(1), float64(0), float64(100), "tools"}); d != "" {
		t.Errorf("service desired/min/max/cluster (-got +want):\n%s", d)
	}
}

// renderedConfig is the RECONCILER_CONFIG_YAML of the task definition.
func renderedConfig(t *testing.T, tpl *Template, s Stack) string {
	t.Helper()
	in := taskDefinitionInput(t, tpl, s)
	for _, kv := range in.ContainerDefinitions[0].Environment {
		if aws.ToString(kv.Name) == "RECONCILER_CONFIG_YAML" {
			return aws.ToString(kv.Value)
		}
	}
	t.Fatal("no RECONCILER_CONFIG_YAML in the task definition")
	return ""
}

func TestRenderedConfigIsValid(t *testing.T) {
	tpl := load(t)
	for name, s := range map[string]Stack{"every option": testStack(), "defaults": minimalStack()} {
		t.Run(name, func(t *testing.T) {
			doc := renderedConfig(t, tpl, s)
			cfg, err := config.Parse([]byte(doc))
			if err != nil {
				t.Fatalf("config.Parse: %v\n%s", err, doc)
			}
			p, _ := cfg.Profile("")
			got := []string{cfg.AWS.Region, cfg.Queue.URL, cfg.Mode, cfg.TagPrefix, p.TokenSecretArn, cfg.Audit.EventBus}
			want := []string{"eu-west-1", "https://sqs.eu-west-1.amazonaws.com/123456789012/reconciler-Queue", "enforce", "ecs-sidecar/",
				s.Params["TokenSecretArn"].(string), map[bool]string{true: "audit", false: ""}[s.Params["AuditEventBusName"] != nil]}
			if d := cmp.Diff(got, want); d != "" {
				t.Errorf("config (-got +want):\n%s", d)
			}
		})
	}
}
