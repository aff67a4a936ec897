package deploytest

// Hub mode's templates (issue 20): deploy/cloudformation/member.yaml, the
// role the hub assumes and the rules that forward ECS's events, and
// deploy/cloudformation/hub.yaml, the hub's bus, queue and the StackSet of
// the members. Both are held to reconciler.yaml: the member role grants
// nothing the single-account task role does not, the rules match what its
// rules match.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/moto"
)

const (
	hubAccount    = "123456789012"
	memberAccount = "210987654321"
	hubBusArn     = "arn:aws:events:eu-west-1:123456789012:event-bus/hub-ecs-events"
	hubRoleArn    = "arn:aws:iam::123456789012:role/ecs-sidecar-reconciler-hub"
	externalID    = "3f9c1a7e-hub-external-id"
	orgID         = "o-a1b2c3d4e5"
)

func hubTemplatePath(name string) string { return filepath.Join(filepath.Dir(Path()), name) }

func loadHubTemplate(t *testing.T, name string) *Template {
	t.Helper()
	tpl, err := Load(hubTemplatePath(name))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// memberStack is a member account's stack as the hub's StackSet creates it.
func memberStack() Stack {
	return Stack{
		Region: "eu-west-1", Account: memberAccount, Partition: "aws", StackName: "StackSet-hub-members-0a1b",
		Params: map[string]any{
			"HubAccountId":      hubAccount,
			"HubEventBusArn":    hubBusArn,
			"ExternalId":        externalID,
			"TokenSecretName":   "lacework/token",
			"PassableRoleNames": []string{"ecs-tasks/web", "ecsTaskExecutionRole"},
			"Clusters":          []string{"prod", "batch"},
		},
	}
}

// hubStack is the hub's stack; the bus's attributes are given (deploytest
// makes up only the attributes of reconciler.yaml's resource types).
func hubStack() Stack {
	return Stack{
		Region: "eu-west-1", Account: hubAccount, Partition: "aws", StackName: "hub",
		Params: map[string]any{
			"OrganizationId":        orgID,
			"OrganizationalUnitIds": []string{"ou-ab12-cdef3456", "ou-ab12-0987zyxw"},
			"Regions":               []string{"eu-west-1"},
			"MemberTemplateUrl":     "https://example-bucket.s3.eu-west-1.amazonaws.com/member.yaml",
			"ExternalId":            externalID,
			"TokenSecretName":       "lacework/token",
			"PassableRoleNames":     []string{"ecs-tasks/web", "ecsTaskExecutionRole"},
		},
		Attrs: map[string]string{
			"HubEventBus":     "hub-ecs-events",
			"HubEventBus.Arn": hubBusArn,
			"MemberStackSet":  "hub-members:0a1b2c3d",
		},
	}
}

// trustStatements is a role's trust policy, its Principals kept apart (the
// IAM model evaluates the rest).
func trustStatements(t *testing.T, tpl *Template, s Stack, role string) ([]awssim.Statement, []any) {
	t.Helper()
	doc, err := tpl.Property(s, role, "AssumeRolePolicyDocument")
	if err != nil {
		t.Fatal(err)
	}
	var principals []any
	for _, st := range doc.(map[string]any)["Statement"].([]any) {
		m := st.(map[string]any)
		principals = append(principals, m["Principal"])
		delete(m, "Principal")
		if _, ok := m["Resource"]; !ok {
			m["Resource"] = "*" // a trust policy's resource is the role itself
		}
	}
	b, _ := json.Marshal(doc)
	st, err := awssim.ParsePolicy(b)
	if err != nil {
		t.Fatalf("%s trust: %v\n%s", role, err, b)
	}
	return st, principals
}

// inlinePolicy is the statements of a role's only inline policy.
func inlinePolicy(t *testing.T, tpl *Template, s Stack, role string) []awssim.Statement {
	t.Helper()
	policies, err := tpl.Property(s, role, "Policies")
	if err != nil {
		t.Fatal(err)
	}
	l := policies.([]any)
	if len(l) != 1 {
		t.Fatalf("%s: %d inline policies, want 1", role, len(l))
	}
	b, _ := json.Marshal(l[0].(map[string]any)["PolicyDocument"])
	st, err := awssim.ParsePolicy(b)
	if err != nil {
		t.Fatalf("%s: %v\n%s", role, err, b)
	}
	return st
}

func TestHubStacksAreDeployable(t *testing.T) {
	requireDeployable(t, loadHubTemplate(t, "member.yaml"), memberStack())
	requireDeployable(t, loadHubTemplate(t, "hub.yaml"), hubStack())
	// The external ID is a secret: never echoed by CloudFormation.
	for _, name := range []string{"member.yaml", "hub.yaml"} {
		if p := loadHubTemplate(t, name).Parameters["ExternalId"]; p["NoEcho"] != true {
			t.Errorf("%s: ExternalId NoEcho = %v, want true", name, p["NoEcho"])
		}
	}
}

// The member role trusts the hub account's reconciler role only, and only
// with the external ID and a session name that names the reconciler.
func TestMemberRoleTrustsOnlyTheHubWithTheExternalID(t *testing.T) {
	tpl := loadHubTemplate(t, "member.yaml")
	s := memberStack()
	statements, principals := trustStatements(t, tpl, s, "MemberRole")
	if d := cmp.Diff(principals, []any{map[string]any{"AWS": "arn:aws:iam::" + hubAccount + ":root"}}); d != "" {
		t.Errorf("trust principals (-got +want):\n%s", d)
	}
	var sawExternalID bool
	for _, st := range statements {
		if st.Effect == "Allow" && !slices.Equal(st.Actions, []string{"sts:AssumeRole"}) {
			t.Errorf("%s: trust allows %v, want sts:AssumeRole only", st.Sid, st.Actions)
		}
		for _, c := range st.Conditions {
			if c.Key == "sts:ExternalId" && c.Operator == "StringEquals" && slices.Equal(c.Values, []string{externalID}) {
				sawExternalID = true
			}
		}
	}
	if !sawExternalID {
		t.Errorf("no StringEquals sts:ExternalId %q in the trust policy: %+v", externalID, statements)
	}
	ok := map[string][]string{
		"sts:ExternalId":      {externalID},
		"aws:PrincipalArn":    {hubRoleArn},
		"sts:RoleSessionName": {"ecs-sidecar-reconciler-" + memberAccount},
	}
	with := func(k string, v ...string) map[string][]string {
		m := map[string][]string{}
		for k, v := range ok {
			m[k] = v
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	self := "arn:aws:iam::" + memberAccount + ":role/ecs-sidecar-reconciler-member"
	for _, c := range []struct {
		name string
		ctx  map[string][]string
		want string
	}{
		{"the hub's reconciler", ok, awssim.DecisionAllowed},
		{"no external ID", with("sts:ExternalId"), awssim.DecisionImplicitDeny},
		{"another external ID", with("sts:ExternalId", "guess"), awssim.DecisionImplicitDeny},
		{"another role of the hub", with("aws:PrincipalArn", "arn:aws:iam::"+hubAccount+":role/Admin"), awssim.DecisionImplicitDeny},
		{"another account's role of that name", with("aws:PrincipalArn", "arn:aws:iam::999999999999:role/ecs-sidecar-reconciler-hub"), awssim.DecisionImplicitDeny},
		{"a session not named for the reconciler", with("sts:RoleSessionName", "admin"), awssim.DecisionImplicitDeny},
	} {
		if got := awssim.Evaluate(statements, "sts:AssumeRole", self, c.ctx); got != c.want {
			t.Errorf("%s: AssumeRole %s, want %s", c.name, got, c.want)
		}
	}
}

// The member role is least privilege: no action the single-account task
// role lacks (reconciler.yaml with every option), nothing of the hub's queue,
// table or metrics, no wildcard action, "*" only where reconciler.yaml has it
// and with the same conditions.
func TestMemberRoleIsASubsetOfTheReconcilerRole(t *testing.T) {
	single := map[string]bool{}
	for _, st := range policyOf(t, load(t), testStack(), "TaskRolePolicy", "PolicyDocument") {
		for _, a := range st.Actions {
			single[a] = true
		}
	}
	tpl := loadHubTemplate(t, "member.yaml")
	for name, s := range map[string]Stack{"clusters": memberStack(), "every cluster": withParams(memberStack(), map[string]any{"Clusters": nil})} {
		t.Run(name, func(t *testing.T) {
			statements := inlinePolicy(t, tpl, s, "MemberRole")
			if len(statements) < 8 {
				t.Fatalf("only %d statements: the template did not resolve as expected", len(statements))
			}
			for _, st := range statements {
				if st.Effect != "Allow" {
					t.Errorf("%s: Effect %s", st.Sid, st.Effect)
				}
				for _, a := range st.Actions {
					if strings.ContainsAny(a, "*?") {
						t.Errorf("%s: wildcard action %q", st.Sid, a)
					}
					for _, hub := range []string{"sqs:", "dynamodb:", "cloudwatch:", "logs:", "events:", "sts:"} {
						if strings.HasPrefix(a, hub) {
							t.Errorf("%s: %s is the hub's business, not the member role's", st.Sid, a)
						}
					}
					if !single[a] {
						t.Errorf("%s: %s is not granted by reconciler.yaml's task role", st.Sid, a)
					}
					if slices.Contains(st.Resources, "*") {
						if _, ok := starActions[a]; !ok {
							t.Errorf("%s: %s on Resource \"*\"", st.Sid, a)
						}
						checkStarWrite(t, st.Sid, a, st.Conditions, s.Region)
					}
				}
				if slices.Contains(st.Actions, "iam:PassRole") {
					checkPassRoleCondition(t, st.Sid, st.Conditions)
					for _, r := range st.Resources {
						_, name, _ := strings.Cut(r, ":role/")
						if name == "" || strings.ContainsAny(name, "*?") {
							t.Errorf("%s: PassRole on %q: exact role names only", st.Sid, r)
						}
					}
				}
			}
			td := "arn:aws:ecs:eu-west-1:" + memberAccount + ":task-definition/web:7"
			here := map[string][]string{"aws:RequestedRegion": {"eu-west-1"}}
			passTo := map[string][]string{"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}
			cluster := func(c string) map[string][]string {
				return map[string][]string{"aws:RequestedRegion": {"eu-west-1"}, "ecs:cluster": {"arn:aws:ecs:eu-west-1:" + memberAccount + ":cluster/" + c}}
			}
			staging := awssim.DecisionImplicitDeny
			if name == "every cluster" {
				staging = awssim.DecisionAllowed
			}
			for _, c := range []struct {
				action, resource string
				ctx              map[string][]string
				want             string
			}{
				{"ecs:RegisterTaskDefinition", "*", here, awssim.DecisionAllowed},
				{"ecs:RegisterTaskDefinition", "*", map[string][]string{"aws:RequestedRegion": {"us-east-1"}}, awssim.DecisionImplicitDeny},
				{"ecs:TagResource", td, map[string][]string{"ecs:CreateAction": {"RegisterTaskDefinition"}, "aws:TagKeys": {"team"}}, awssim.DecisionAllowed},
				{"ecs:TagResource", td, map[string][]string{"aws:TagKeys": {"ecs-sidecar/failed"}}, awssim.DecisionAllowed},
				{"ecs:TagResource", td, map[string][]string{"aws:TagKeys": {"team"}}, awssim.DecisionImplicitDeny},
				{"ecs:UpdateService", "arn:aws:ecs:eu-west-1:" + memberAccount + ":service/prod/web", cluster("prod"), awssim.DecisionAllowed},
				{"ecs:UpdateService", "arn:aws:ecs:eu-west-1:" + memberAccount + ":service/staging/web", cluster("staging"), staging},
				{"ecs:UpdateService", "arn:aws:ecs:eu-west-1:" + hubAccount + ":service/prod/web", cluster("prod"), awssim.DecisionImplicitDeny},
				{"iam:PassRole", "arn:aws:iam::" + memberAccount + ":role/ecs-tasks/web", passTo, awssim.DecisionAllowed},
				{"iam:PassRole", "arn:aws:iam::" + memberAccount + ":role/ecsTaskExecutionRole", passTo, awssim.DecisionAllowed},
				{"iam:PassRole", "arn:aws:iam::" + memberAccount + ":role/Admin", passTo, awssim.DecisionImplicitDeny},
				{"iam:PassRole", "arn:aws:iam::" + memberAccount + ":role/ecs-tasks/web", map[string][]string{"iam:PassedToService": {"ec2.amazonaws.com"}}, awssim.DecisionImplicitDeny},
				{"secretsmanager:DescribeSecret", "arn:aws:secretsmanager:eu-west-1:" + memberAccount + ":secret:lacework/token-AbCdEf", nil, awssim.DecisionAllowed},
				{"secretsmanager:GetSecretValue", "arn:aws:secretsmanager:eu-west-1:" + memberAccount + ":secret:lacework/token-AbCdEf", nil, awssim.DecisionImplicitDeny},
				{"secretsmanager:DescribeSecret", "arn:aws:secretsmanager:eu-west-1:" + memberAccount + ":secret:lacework/other-AbCdEf", nil, awssim.DecisionImplicitDeny},
			} {
				if got := awssim.Evaluate(statements, c.action, c.resource, c.ctx); got != c.want {
					t.Errorf("%s on %s %v: %s, want %s", c.action, c.resource, c.ctx, got, c.want)
				}
			}
		})
	}
}

// rulePatterns is the event pattern of every AWS::Events::Rule of tpl, as
// sorted JSON.
func rulePatterns(t *testing.T, tpl *Template, s Stack) []string {
	t.Helper()
	var out []string
	for id, r := range tpl.Resources {
		if r.Type != "AWS::Events::Rule" {
			continue
		}
		p, err := tpl.Property(s, id, "EventPattern")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(p) // maps marshal with sorted keys
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

// The members forward what the single-account rules match, to the hub's bus
// through the forwarding role; the hub's bus rules match the same.
func TestMemberRulesForwardTheReconcilerPatterns(t *testing.T) {
	want := rulePatterns(t, load(t), testStack())
	if len(want) != 2 {
		t.Fatalf("reconciler.yaml has %d rules, want 2", len(want))
	}
	tpl, s := loadHubTemplate(t, "member.yaml"), memberStack()
	if d := cmp.Diff(rulePatterns(t, tpl, s), want); d != "" {
		t.Errorf("member rule patterns (-member +reconciler.yaml):\n%s", d)
	}
	hub := loadHubTemplate(t, "hub.yaml")
	if d := cmp.Diff(rulePatterns(t, hub, hubStack()), want); d != "" {
		t.Errorf("hub bus rule patterns (-hub +reconciler.yaml):\n%s", d)
	}
	forwardRole, err := tpl.Resolve(map[string]any{"Fn::GetAtt": []any{"ForwardRole", "Arn"}}, s)
	if err != nil {
		t.Fatal(err)
	}
	for id, r := range tpl.Resources {
		if r.Type != "AWS::Events::Rule" {
			continue
		}
		if bus, ok := r.Properties["EventBusName"]; ok && bus != "default" {
			t.Errorf("rule %s on bus %v; ECS sends its events to the default bus", id, bus)
		}
		targets, err := tpl.Property(s, id, "Targets")
		if err != nil {
			t.Fatal(err)
		}
		want := []any{map[string]any{"Id": "hub-event-bus", "Arn": hubBusArn, "RoleArn": forwardRole}}
		if d := cmp.Diff(targets, want); d != "" {
			t.Errorf("rule %s targets (-got +want):\n%s", id, d)
		}
	}
	for id, r := range hub.Resources {
		if r.Type == "AWS::Events::Rule" && !cmp.Equal(r.Properties["EventBusName"], map[string]any{"Ref": "HubEventBus"}) {
			t.Errorf("hub rule %s on bus %v, want the hub bus", id, r.Properties["EventBusName"])
		}
	}
}

// EventBridge assumes the forwarding role of the member's own account, and
// may only put events on the hub's bus with it.
func TestForwardRoleMayOnlyPutEventsOnTheHubBus(t *testing.T) {
	tpl, s := loadHubTemplate(t, "member.yaml"), memberStack()
	statements := inlinePolicy(t, tpl, s, "ForwardRole")
	want := []awssim.Statement{{Sid: "PutEventsOnHubBusOnly", Effect: "Allow", Actions: []string{"events:PutEvents"}, Resources: []string{hubBusArn}}}
	if d := cmp.Diff(statements, want); d != "" {
		t.Errorf("forwarding role policy (-got +want):\n%s", d)
	}
	trust, principals := trustStatements(t, tpl, s, "ForwardRole")
	if d := cmp.Diff(principals, []any{map[string]any{"Service": "events.amazonaws.com"}}); d != "" {
		t.Errorf("forwarding role principals (-got +want):\n%s", d)
	}
	mine := map[string][]string{"aws:SourceAccount": {memberAccount}}
	if got := awssim.Evaluate(trust, "sts:AssumeRole", "*", mine); got != awssim.DecisionAllowed {
		t.Errorf("EventBridge of the member: %s", got)
	}
	if got := awssim.Evaluate(trust, "sts:AssumeRole", "*", map[string][]string{"aws:SourceAccount": {"999999999999"}}); got != awssim.DecisionImplicitDeny {
		t.Errorf("EventBridge of another account: %s, want implicitDeny", got)
	}
}

// Accounts of the organization only may put events on the hub's bus; the
// queue takes messages from the hub bus's two rules only.
func TestHubBusAndQueuePolicies(t *testing.T) {
	tpl, s := loadHubTemplate(t, "hub.yaml"), hubStack()
	st, err := tpl.Property(s, "HubEventBusPolicy", "Statement")
	if err != nil {
		t.Fatal(err)
	}
	m := st.(map[string]any)
	if m["Principal"] != "*" {
		t.Errorf("bus policy principal %v: the organization condition does the narrowing, with Principal *", m["Principal"])
	}
	delete(m, "Principal")
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{m}})
	statements, err := awssim.ParsePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []awssim.Statement{{Sid: "OrganizationPutEvents", Effect: "Allow", Actions: []string{"events:PutEvents"}, Resources: []string{hubBusArn},
		Conditions: []awssim.Condition{{Operator: "StringEquals", Key: "aws:PrincipalOrgID", Values: []string{orgID}}}}}
	if d := cmp.Diff(statements, want); d != "" {
		t.Errorf("hub bus policy (-got +want):\n%s", d)
	}
	if got := awssim.Evaluate(statements, "events:PutEvents", hubBusArn, map[string][]string{"aws:PrincipalOrgID": {"o-zzzzzzzzzz"}}); got != awssim.DecisionImplicitDeny {
		t.Errorf("PutEvents from another organization: %s", got)
	}

	doc, err := tpl.Property(s, "QueuePolicy", "PolicyDocument")
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for id, r := range tpl.Resources {
		if r.Type == "AWS::Events::Rule" {
			arn, err := tpl.Resolve(map[string]any{"Fn::GetAtt": []any{id, "Arn"}}, s)
			if err != nil {
				t.Fatal(err)
			}
			rules = append(rules, arn.(string))
		}
	}
	slices.Sort(rules)
	var sends int
	for _, st := range doc.(map[string]any)["Statement"].([]any) {
		m := st.(map[string]any)
		if m["Effect"] != "Allow" {
			continue
		}
		sends++
		if d := cmp.Diff(m["Principal"], map[string]any{"Service": "events.amazonaws.com"}); d != "" {
			t.Errorf("queue send principal (-got +want):\n%s", d)
		}
		if m["Action"] != "sqs:SendMessage" {
			t.Errorf("queue policy allows %v; only sqs:SendMessage", m["Action"])
		}
		got := m["Condition"].(map[string]any)["ArnEquals"].(map[string]any)["aws:SourceArn"]
		l, _ := strs(got)
		slices.Sort(l)
		if len(rules) != 2 || !slices.Equal(l, rules) {
			t.Errorf("queue policy senders %v, want the hub bus's rules %v", l, rules)
		}
	}
	if sends != 1 {
		t.Errorf("%d Allow statements in the queue policy, want 1", sends)
	}
}

// The StackSet reaches the OUs' accounts through Organizations, deploys to
// accounts that join them and deletes the stacks of accounts that leave;
// it passes the member template every parameter it needs.
func TestMemberStackSetIsServiceManagedWithAutoDeployment(t *testing.T) {
	tpl, s := loadHubTemplate(t, "hub.yaml"), hubStack()
	props, err := tpl.Property(s, "MemberStackSet")
	if err != nil {
		t.Fatal(err)
	}
	p := props.(map[string]any)
	got := map[string]any{
		"PermissionModel":  p["PermissionModel"],
		"AutoDeployment":   p["AutoDeployment"],
		"ManagedExecution": p["ManagedExecution"],
		"Capabilities":     p["Capabilities"],
		"TemplateURL":      p["TemplateURL"],
		"Targets":          p["StackInstancesGroup"],
	}
	want := map[string]any{
		"PermissionModel":  "SERVICE_MANAGED",
		"AutoDeployment":   map[string]any{"Enabled": true, "RetainStacksOnAccountRemoval": false},
		"ManagedExecution": map[string]any{"Active": true},
		"Capabilities":     []any{"CAPABILITY_NAMED_IAM"},
		"TemplateURL":      s.Params["MemberTemplateUrl"],
		"Targets": []any{map[string]any{
			"DeploymentTargets": map[string]any{"OrganizationalUnitIds": []any{"ou-ab12-cdef3456", "ou-ab12-0987zyxw"}},
			"Regions":           []any{"eu-west-1"},
		}},
	}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("StackSet (-got +want):\n%s", d)
	}

	// The parameters it passes make a deployable member stack, and name
	// this account, its bus and the external ID.
	member := loadHubTemplate(t, "member.yaml")
	ms := memberStack()
	ms.Params = map[string]any{}
	for _, kv := range p["Parameters"].([]any) {
		kv := kv.(map[string]any)
		k, v := kv["ParameterKey"].(string), kv["ParameterValue"].(string)
		if typ, _ := member.Parameters[k]["Type"].(string); typ == "CommaDelimitedList" {
			ms.Params[k] = strings.Split(v, ",")
		} else {
			ms.Params[k] = v
		}
	}
	requireDeployable(t, member, ms)
	for k, want := range map[string]any{"HubAccountId": hubAccount, "HubEventBusArn": hubBusArn, "ExternalId": externalID} {
		if ms.Params[k] != want {
			t.Errorf("StackSet parameter %s = %v, want %v", k, ms.Params[k], want)
		}
	}
}

// moto's CloudFormation creates the member stack: the role the hub assumes
// (with the trust policy and inline policy of the template) and the two
// forwarding rules, targeting the hub's bus with the forwarding role.
func TestMemberStackOnMoto(t *testing.T) {
	motoURL := moto.Start(t)
	body, err := os.ReadFile(hubTemplatePath("member.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bus := "arn:aws:events:" + simRegion + ":" + hubAccount + ":event-bus/hub-ecs-events"
	form := url.Values{"Action": {"CreateStack"}, "Version": {"2010-05-15"}, "StackName": {"member"},
		"TemplateBody": {string(body)}, "Capabilities.member.1": {"CAPABILITY_NAMED_IAM"}}
	for i, kv := range [][2]string{
		{"HubAccountId", hubAccount}, {"HubEventBusArn", bus}, {"ExternalId", externalID},
		{"TokenSecretName", "lacework/token"}, {"PassableRoleNames", "ecs-tasks/web,ecsTaskExecutionRole"},
	} {
		form.Set(fmt.Sprintf("Parameters.member.%d.ParameterKey", i+1), kv[0])
		form.Set(fmt.Sprintf("Parameters.member.%d.ParameterValue", i+1), kv[1])
	}
	cfnQuery(t, motoURL, form)
	var status string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out := cfnQuery(t, motoURL, url.Values{"Action": {"DescribeStacks"}, "Version": {"2010-05-15"}, "StackName": {"member"}})
		var r struct {
			Stacks []struct {
				StackStatus, StackStatusReason string
			} `xml:"DescribeStacksResult>Stacks>member"`
		}
		if err := xml.Unmarshal(out, &r); err != nil || len(r.Stacks) != 1 {
			t.Fatalf("DescribeStacks: %v\n%s", err, out)
		}
		status = r.Stacks[0].StackStatus
		if !strings.HasSuffix(status, "_IN_PROGRESS") {
			if status != "CREATE_COMPLETE" {
				t.Fatalf("member stack: %s %s", status, r.Stacks[0].StackStatusReason)
			}
			break
		}
	}
	if status != "CREATE_COMPLETE" {
		t.Fatalf("member stack: %s after 30s", status)
	}

	ctx := context.Background()
	cfg := newClientConfig(t, motoURL, simRegion, nil, nil)
	role, err := iam.NewFromConfig(cfg).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("ecs-sidecar-reconciler-member")})
	if err != nil {
		t.Fatalf("GetRole: %v", err)
	}
	trust, err := url.QueryUnescape(aws.ToString(role.Role.AssumeRolePolicyDocument))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{externalID, "arn:aws:iam::" + hubAccount + ":root", "sts:ExternalId"} {
		if !strings.Contains(trust, want) {
			t.Errorf("the created role's trust policy lacks %q:\n%s", want, trust)
		}
	}
	pol, err := iam.NewFromConfig(cfg).GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: role.Role.RoleName, PolicyName: aws.String("ecs-sidecar-reconciler-member")})
	if err != nil {
		t.Fatalf("GetRolePolicy: %v", err)
	}
	doc, err := url.QueryUnescape(aws.ToString(pol.PolicyDocument))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid([]byte(doc)) {
		// moto hands back the document as Python prints a dict.
		doc = strings.ReplaceAll(doc, "'", `"`)
	}
	if statements, err := awssim.ParsePolicy([]byte(doc)); err != nil {
		t.Errorf("the created role's policy: %v\n%s", err, doc)
	} else if got := awssim.Evaluate(statements, "iam:PassRole", "arn:aws:iam::"+simAccount+":role/ecs-tasks/web",
		map[string][]string{"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}); got != awssim.DecisionAllowed {
		t.Errorf("the created role may not pass ecs-tasks/web: %s\n%s", got, doc)
	}

	eb := eventbridge.NewFromConfig(cfg)
	rules, err := eb.ListRules(ctx, &eventbridge.ListRulesInput{})
	if err != nil {
		t.Fatalf("ListRules: %v", err)
	}
	var forwarding int
	for _, r := range rules.Rules {
		if !strings.Contains(aws.ToString(r.Name), "ForwardRule") {
			continue
		}
		forwarding++
		targets, err := eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: r.Name})
		if err != nil {
			t.Fatalf("ListTargetsByRule %s: %v", aws.ToString(r.Name), err)
		}
		if len(targets.Targets) != 1 || aws.ToString(targets.Targets[0].Arn) != bus || !strings.Contains(aws.ToString(targets.Targets[0].RoleArn), ":role/") {
			t.Errorf("rule %s targets %+v, want the hub bus with the forwarding role", aws.ToString(r.Name), targets.Targets)
		}
	}
	if forwarding != 2 {
		t.Errorf("%d forwarding rules in moto, want 2 (%d rules in all)", forwarding, len(rules.Rules))
	}
}

// cfnQuery posts a CloudFormation query-protocol request to moto, signed
// (moto routes by the credential scope's service); the module has no
// CloudFormation SDK client.
func cfnQuery(t *testing.T, endpoint string, form url.Values) []byte {
	t.Helper()
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "cloudformation", simRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d\n%s", form.Get("Action"), resp.StatusCode, out)
	}
	return out
}
