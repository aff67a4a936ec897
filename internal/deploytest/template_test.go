package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/lease"
	"github.com/ecs-sidecar/reconciler/internal/patch"
	"github.com/ecs-sidecar/reconciler/internal/policy"
)

// starActions are the only actions the template may grant on Resource "*",
// each with the reason a reviewer reads in docs/operations.md.
var starActions = map[string]string{
	"ecs:RegisterTaskDefinition":     "task-definition* in the current reference; * with aws:RequestedRegion is the same set (this account, this Region) and holds whichever ECS authorizes against",
	"ecs:DescribeTaskDefinition":     "no resource type",
	"ecs:DeregisterTaskDefinition":   "no resource type, no condition key of its own",
	"ecs:ListTaskDefinitions":        "list action, no resource type",
	"ecs:ListTaskDefinitionFamilies": "list action, no resource type",
	"ecs:ListClusters":               "list action, no resource type",
	"ecs:ListServices":               "list action over every cluster of the Region (the sweep); ecs:cluster is not relied on",
	"ecr:GetAuthorizationToken":      "no resource type (a registry login)",
	"cloudtrail:DescribeTrails":      "list action, no resource type",
	"events:ListRuleNamesByTarget":   "list action; a rule scope is not relied on",
	"tag:GetResources":               "no resource type (Service Authorization Reference, Resource Groups Tagging API)",
}

// starWrites are the writes among starActions: held to the stack's Region
// by aws:RequestedRegion.
var starWrites = []string{"ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition"}

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
			"PassableRoleArns":             []string{"arn:aws:iam::123456789012:role/ecs-tasks/web", "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"},
			"AllowPassRoleWildcards":       "true",
			"PassableRolePatterns":         []string{"arn:aws:iam::123456789012:role/ecs-tasks/*"},
			"Clusters":                     []string{"prod", "batch"},
			"DeregisterUnusedTwins":        "true",
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
	for _, k := range []string{"RegistryCredentialSecretArns", "AuditEventBusName", "AlarmTopicArn", "CreateTrail",
		"AllowPassRoleWildcards", "PassableRolePatterns", "Clusters", "DeregisterUnusedTwins"} {
		delete(s.Params, k)
	}
	return s
}

// withParams is s with some parameters changed (nil deletes).
func withParams(s Stack, kv map[string]any) Stack {
	p := map[string]any{}
	for k, v := range s.Params {
		p[k] = v
	}
	for k, v := range kv {
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	s.Params = p
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
	// The stack, and hub mode's member and hub templates (hub_test.go).
	for _, path := range []string{Path(), hubTemplatePath("member.yaml"), hubTemplatePath("hub.yaml")} {
		out, err := exec.Command(bin, path).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("cfn-lint %s: %v\n%s", path, err, out)
		}
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
						checkStarWrite(t, st.Sid, a, st.Conditions, s.Region)
					}
				}
				if slices.Contains(st.Actions, "iam:PassRole") {
					checkPassRoleCondition(t, st.Sid, st.Conditions)
					if slices.Contains(st.Resources, "*") || slices.ContainsFunc(st.Resources, func(r string) bool { return r == "arn:aws:iam::123456789012:role/*" }) {
						t.Errorf("%s: PassRole on every role: %v", st.Sid, st.Resources)
					}
				}
				if slices.Contains(st.Actions, "ecs:TagResource") {
					// Tag on create, or the failure mark alone (and present).
					onCreate := []awssim.Condition{{Operator: "StringEquals", Key: "ecs:CreateAction", Values: []string{"RegisterTaskDefinition"}}}
					mark := []awssim.Condition{
						{Operator: "ForAllValues:StringEquals", Key: "aws:TagKeys", Values: []string{"ecs-sidecar/failed"}},
						{Operator: "ForAnyValue:StringEquals", Key: "aws:TagKeys", Values: []string{"ecs-sidecar/failed"}},
					}
					if !cmp.Equal(st.Conditions, onCreate) && !cmp.Equal(st.Conditions, mark) {
						t.Errorf("%s: TagResource conditions %+v, want %+v or %+v", st.Sid, st.Conditions, onCreate, mark)
					}
				}
				if slices.Contains(st.Actions, "secretsmanager:GetSecretValue") && slices.Contains(st.Resources, s.Params["TokenSecretArn"].(string)) {
					t.Errorf("%s: the reconciler may read the token's value", st.Sid)
				}
			}
			// Tag on create must be conditioned on RegisterTaskDefinition.
			every := name == "every option"
			allowedIf := func(b bool) string {
				if b {
					return awssim.DecisionAllowed
				}
				return awssim.DecisionImplicitDeny
			}
			td := "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7"
			here := map[string][]string{"aws:RequestedRegion": {"eu-west-1"}}
			cluster := func(c string) map[string][]string {
				return map[string][]string{"aws:RequestedRegion": {"eu-west-1"}, "ecs:cluster": {"arn:aws:ecs:eu-west-1:123456789012:cluster/" + c}}
			}
			passTo := map[string][]string{"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}
			cases := []struct {
				action, resource string
				ctx              map[string][]string
				want             string
			}{
				{"ecs:TagResource", td, map[string][]string{"ecs:CreateAction": {"RegisterTaskDefinition"}, "aws:TagKeys": {"team", "ecs-sidecar/source"}}, awssim.DecisionAllowed},
				{"ecs:TagResource", td, map[string][]string{"aws:TagKeys": {"ecs-sidecar/failed"}}, awssim.DecisionAllowed},
				{"ecs:TagResource", td, map[string][]string{"aws:TagKeys": {"team"}}, awssim.DecisionImplicitDeny},
				{"ecs:TagResource", td, map[string][]string{"aws:TagKeys": {"ecs-sidecar/failed", "ecs-sidecar/source"}}, awssim.DecisionImplicitDeny},
				{"ecs:TagResource", td, map[string][]string{"aws:TagKeys": {}}, awssim.DecisionImplicitDeny},
				{"ecs:RegisterTaskDefinition", "*", here, awssim.DecisionAllowed},
				{"ecs:RegisterTaskDefinition", td, here, awssim.DecisionAllowed},
				{"ecs:RegisterTaskDefinition", "*", map[string][]string{"aws:RequestedRegion": {"us-east-1"}}, awssim.DecisionImplicitDeny},
				{"ecs:RegisterTaskDefinition", "*", nil, awssim.DecisionImplicitDeny},
				// Needed for duplicates whatever DeregisterUnusedTwins says.
				{"ecs:DeregisterTaskDefinition", "*", here, awssim.DecisionAllowed},
				{"ecs:DeregisterTaskDefinition", "*", map[string][]string{"aws:RequestedRegion": {"us-east-1"}}, awssim.DecisionImplicitDeny},
				{"ecs:UpdateService", "arn:aws:ecs:eu-west-1:123456789012:service/prod/web", cluster("prod"), awssim.DecisionAllowed},
				{"ecs:UpdateService", "arn:aws:ecs:eu-west-1:123456789012:service/staging/web", cluster("staging"), allowedIf(!every)},
				{"ecs:ListServiceDeployments", "arn:aws:ecs:eu-west-1:123456789012:service/staging/web", cluster("staging"), allowedIf(!every)},
				{"ecs:UpdateService", "arn:aws:ecs:us-east-1:123456789012:service/prod/web", cluster("prod"), awssim.DecisionImplicitDeny},
				// The sweep reads every cluster's services.
				{"ecs:DescribeServices", "arn:aws:ecs:eu-west-1:123456789012:service/staging/web", cluster("staging"), awssim.DecisionAllowed},
				{"iam:PassRole", "arn:aws:iam::123456789012:role/ecs-tasks/web", passTo, awssim.DecisionAllowed},
				{"iam:PassRole", "arn:aws:iam::123456789012:role/ecs-tasks/api", passTo, allowedIf(every)}, // by the pattern only
				{"iam:PassRole", "arn:aws:iam::123456789012:role/Admin", passTo, awssim.DecisionImplicitDeny},
				{"iam:PassRole", "arn:aws:iam::123456789012:role/ecs-tasks/web", map[string][]string{"iam:PassedToService": {"ec2.amazonaws.com"}}, awssim.DecisionImplicitDeny},
				{"sqs:DeleteMessage", "arn:aws:sqs:eu-west-1:123456789012:reconciler-Queue", nil, awssim.DecisionAllowed},
				{"sqs:DeleteMessage", "arn:aws:sqs:eu-west-1:123456789012:other", nil, awssim.DecisionImplicitDeny},
				{"secretsmanager:GetSecretValue", s.Params["TokenSecretArn"].(string), nil, awssim.DecisionImplicitDeny},
				{"iam:SimulatePrincipalPolicy", "arn:aws:iam::123456789012:role/reconciler-TaskRole", nil, awssim.DecisionAllowed},
				// The stack's lease table, no other (two replicas by default).
				{"dynamodb:GetItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/reconciler-LeaseTable", here, awssim.DecisionAllowed},
				{"dynamodb:UpdateItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/reconciler-LeaseTable", here, awssim.DecisionAllowed},
				{"dynamodb:UpdateItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/orders", here, awssim.DecisionImplicitDeny},
				{"dynamodb:Query", "arn:aws:dynamodb:eu-west-1:123456789012:table/reconciler-LeaseTable", here, awssim.DecisionImplicitDeny},
				{"dynamodb:DeleteTable", "arn:aws:dynamodb:eu-west-1:123456789012:table/reconciler-LeaseTable", here, awssim.DecisionImplicitDeny},
			}
			for _, c := range cases {
				if got := awssim.Evaluate(statements, c.action, c.resource, c.ctx); got != c.want {
					t.Errorf("%s on %s %v: %s, want %s", c.action, c.resource, c.ctx, got, c.want)
				}
			}
		})
	}
}

// requireDeployable fails unless CloudFormation would take s's parameters.
func requireDeployable(t *testing.T, tpl *Template, s Stack) {
	t.Helper()
	for _, err := range tpl.CheckParams(s) {
		t.Error(err)
	}
	failed, err := tpl.CheckRules(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range failed {
		t.Errorf("rule: %s", f)
	}
}

func TestStacksAreDeployable(t *testing.T) {
	tpl := load(t)
	for name, s := range map[string]Stack{"every option": testStack(), "defaults": minimalStack()} {
		t.Run(name, func(t *testing.T) { requireDeployable(t, tpl, s) })
	}
}

// PassRole reaches only listed roles; a pattern needs its switch, and the
// template refuses a stack that gives one without it.
func TestPassRoleWildcardsNeedTheirSwitch(t *testing.T) {
	tpl := load(t)
	pattern := "arn:aws:iam::123456789012:role/ecs-tasks/*"
	passRoleResources := func(s Stack) []string {
		for _, st := range policyOf(t, tpl, s, "TaskRolePolicy", "PolicyDocument") {
			if slices.Contains(st.Actions, "iam:PassRole") {
				return st.Resources
			}
		}
		t.Fatal("no PassRole statement")
		return nil
	}
	// A wildcard in PassableRoleArns: refused by its AllowedPattern.
	bad := withParams(minimalStack(), map[string]any{"PassableRoleArns": []string{pattern}})
	if errs := tpl.CheckParams(bad); len(errs) == 0 {
		t.Errorf("PassableRoleArns %s accepted; only exact role ARNs may be given there", pattern)
	}
	// A pattern without the switch: refused by the rule.
	bad = withParams(minimalStack(), map[string]any{"PassableRolePatterns": []string{pattern}})
	if errs := tpl.CheckParams(bad); len(errs) > 0 {
		t.Fatal(errs)
	}
	failed, err := tpl.CheckRules(bad)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || !strings.HasPrefix(failed[0], "PassRoleWildcardsNeedTheirSwitch") {
		t.Errorf("a pattern without AllowPassRoleWildcards: rules failed %v, want PassRoleWildcardsNeedTheirSwitch", failed)
	}
	// With the switch, the pattern is granted; without a pattern, only the
	// exact ARNs are, switch or not.
	s := withParams(minimalStack(), map[string]any{"PassableRolePatterns": []string{pattern}, "AllowPassRoleWildcards": "true"})
	requireDeployable(t, tpl, s)
	if got := passRoleResources(s); !slices.Contains(got, pattern) {
		t.Errorf("PassRole resources %v, want the pattern with AllowPassRoleWildcards=true", got)
	}
	exact := minimalStack().Params["PassableRoleArns"].([]string)
	for _, s := range []Stack{minimalStack(), withParams(minimalStack(), map[string]any{"AllowPassRoleWildcards": "true"})} {
		if d := cmp.Diff(passRoleResources(s), exact); d != "" {
			t.Errorf("PassRole resources (-got +want):\n%s", d)
		}
	}
	// Clusters are names: a glob is refused (ecs:cluster would match it).
	if errs := tpl.CheckParams(withParams(minimalStack(), map[string]any{"Clusters": []string{"prod-*"}})); len(errs) == 0 {
		t.Error("Clusters prod-* accepted; cluster names only")
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
	// Two tasks by default, sharing the account by leases: a deploy
	// starts the new ones before it stops the old.
	gotSvc := []any{m["DesiredCount"], dc["MinimumHealthyPercent"], dc["MaximumPercent"], m["Cluster"]}
	if d := cmp.Diff(gotSvc, []any{"2", float64(50), float64(200), "tools"}); d != "" {
		t.Errorf("service desired/min/max/cluster (-got +want):\n%s", d)
	}
	// One task: stopped before the new one starts.
	svc, err = tpl.Property(withParams(s, map[string]any{"Replicas": "1"}), "Service")
	if err != nil {
		t.Fatal(err)
	}
	m = svc.(map[string]any)
	dc = m["DeploymentConfiguration"].(map[string]any)
	gotSvc = []any{m["DesiredCount"], dc["MinimumHealthyPercent"], dc["MaximumPercent"], m["Cluster"]}
	if d := cmp.Diff(gotSvc, []any{"1", float64(0), float64(100), "tools"}); d != "" {
		t.Errorf("one replica: service desired/min/max/cluster (-got +want):\n%s", d)
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
			if got, want := cfg.Cleanup.DeregisterUnusedTwins, s.Params["DeregisterUnusedTwins"] == "true"; got != want {
				t.Errorf("cleanup.deregisterUnusedTwins = %v, want %v", got, want)
			}
			// With Clusters, families elsewhere are only reported: the role
			// may not move their services.
			var rules []policy.Rule
			if cl, ok := s.Params["Clusters"].([]string); ok {
				rules = []policy.Rule{{Name: "clusters-parameter", Clusters: cl, OptIn: policy.OptInTag}, {Name: "outside-clusters-parameter", OptIn: policy.OptInTag, Mode: policy.ModeAudit}}
			}
			if d := cmp.Diff(cfg.Policies, rules, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("policies (-got +want):\n%s", d)
			}
		})
	}
}

// TestGoMemoryLimitFollowsTaskMemory: for every TaskMemory the template
// allows, the task gets that memory and GOMEMLIMIT (the Go runtime's soft
// limit, https://pkg.go.dev/runtime#hdr-Environment_Variables: a number
// with a B, KiB, MiB, GiB or TiB suffix) at about 80% of it.
func TestGoMemoryLimitFollowsTaskMemory(t *testing.T) {
	tpl := load(t)
	allowed, _ := tpl.Parameters["TaskMemory"]["AllowedValues"].([]any)
	if len(allowed) == 0 {
		t.Fatal("TaskMemory has no AllowedValues")
	}
	for _, v := range allowed {
		mib := fmt.Sprint(v)
		s := testStack()
		s.Params["TaskMemory"] = mib
		in := taskDefinitionInput(t, tpl, s)
		if got := aws.ToString(in.Memory); got != mib {
			t.Errorf("TaskMemory %s: task memory %q", mib, got)
		}
		limit := ""
		for _, kv := range in.ContainerDefinitions[0].Environment {
			if aws.ToString(kv.Name) == "GOMEMLIMIT" {
				limit = aws.ToString(kv.Value)
			}
		}
		n, ok := strings.CutSuffix(limit, "MiB")
		lim, err := strconv.Atoi(n)
		task, _ := strconv.Atoi(mib)
		if !ok || err != nil {
			t.Errorf("TaskMemory %s: GOMEMLIMIT %q, want a number of MiB", mib, limit)
			continue
		}
		if r := float64(lim) / float64(task); r < 0.75 || r > 0.85 {
			t.Errorf("TaskMemory %s: GOMEMLIMIT %s is %.2f of the task's memory, want about 0.8", mib, limit, r)
		}
	}
	// A value the mapping lacks fails, as CloudFormation would.
	s := testStack()
	s.Params["TaskMemory"] = "3072"
	if _, err := tpl.Property(s, "TaskDefinition"); err == nil || !strings.Contains(err.Error(), "FindInMap") {
		t.Errorf("TaskMemory 3072 (no mapping): err %v, want a FindInMap error", err)
	}
}

// The lease table follows Replicas: with two or more tasks (the default)
// the stack creates it as internal/lease's schema says, the rendered
// configuration names it, and the task role may use it and nothing else of
// DynamoDB; with one task there is no table, no grant, no lease setting.
func TestLeaseTableFollowsReplicas(t *testing.T) {
	tpl := load(t)
	for _, replicas := range []string{"1", "2", "4"} {
		t.Run(replicas, func(t *testing.T) {
			s := withParams(minimalStack(), map[string]any{"Replicas": replicas})
			requireDeployable(t, tpl, s)
			leases := replicas != "1"
			created, err := tpl.Creates(s, "LeaseTable")
			if err != nil {
				t.Fatal(err)
			}
			if created != leases {
				t.Fatalf("LeaseTable created: %v, want %v", created, leases)
			}
			cfg := renderedConfigOf(t, tpl, s)
			var dynamo []awssim.Statement
			for _, st := range policyOf(t, tpl, s, "TaskRolePolicy", "PolicyDocument") {
				if slices.ContainsFunc(st.Actions, func(a string) bool { return strings.HasPrefix(a, "dynamodb:") }) {
					dynamo = append(dynamo, st)
				}
			}
			if !leases {
				if cfg.Leases.Enabled() || len(dynamo) != 0 {
					t.Errorf("one replica: leases %+v, DynamoDB statements %+v; want none", cfg.Leases, dynamo)
				}
				return
			}
			if cfg.Leases.Table != "reconciler-LeaseTable" || cfg.Leases.Shards != config.DefaultLeaseShards {
				t.Errorf("leases %+v, want the stack's table and the default shards", cfg.Leases)
			}
			if err := cfg.ValidateRun(false); err != nil {
				t.Errorf("rendered config: %v", err)
			}
			want := []awssim.Statement{{Sid: "ShardLeases", Effect: "Allow",
				Actions:   []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Scan"},
				Resources: []string{"arn:aws:dynamodb:eu-west-1:123456789012:table/reconciler-LeaseTable"}}}
			if d := cmp.Diff(dynamo, want, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("DynamoDB statements (-got +want):\n%s", d)
			}
			props, err := tpl.Property(s, "LeaseTable")
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(props)
			if err != nil {
				t.Fatal(err)
			}
			var got dynamodb.CreateTableInput
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("LeaseTable: %v\n%s", err, b)
			}
			wantTable := lease.CreateTableInput("")
			wantTable.TableName = nil
			if d := cmp.Diff(&got, wantTable, cmpopts.IgnoreUnexported(dynamodb.CreateTableInput{}, ddbtypes.AttributeDefinition{}, ddbtypes.KeySchemaElement{})); d != "" {
				t.Errorf("LeaseTable is not internal/lease's schema (-template +lease.CreateTableInput):\n%s", d)
			}
		})
	}
}

// checkStarWrite holds a write that AWS only allows on Resource "*" (one of
// starWrites) to the stack's Region.
func checkStarWrite(t *testing.T, sid, action string, conds []awssim.Condition, region string) {
	t.Helper()
	if !slices.Contains(starWrites, action) {
		return
	}
	want := []awssim.Condition{{Operator: "StringEquals", Key: "aws:RequestedRegion", Values: []string{region}}}
	if d := cmp.Diff(conds, want); d != "" {
		t.Errorf("%s: %s on * without the stack's Region (-got +want):\n%s", sid, action, d)
	}
}

// checkPassRoleCondition holds iam:PassRole to ECS tasks.
func checkPassRoleCondition(t *testing.T, sid string, conds []awssim.Condition) {
	t.Helper()
	want := []awssim.Condition{{Operator: "StringEquals", Key: "iam:PassedToService", Values: []string{"ecs-tasks.amazonaws.com"}}}
	if d := cmp.Diff(conds, want); d != "" {
		t.Errorf("%s: PassRole condition (-got +want):\n%s", sid, d)
	}
}
