package awssim

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
)

// patternEvents are the events of the pattern tests, by detail-type.
var patternEvents = []struct{ detailType, detail string }{
	{"e0", `{"state":"running","count":5,"tags":["a","b"],"nested":{"x":"Hello"},"flag":true}`},
	{"e1", `{"state":"stopped","count":0,"nested":{"x":"hello-world"}}`},
	{"e2", `{"state":"Running","count":12.5,"ip":"10.0.0.1"}`},
	{"e3", `{"count":"5","name":"file.txt"}`},
	{"e4", `{"state":null,"nested":{"y":1}}`},
}

// TestEventPatterns puts each pattern on a rule of a custom bus with its
// own queue, publishes every event with PutEvents, and reads which ones
// each queue received: the whole path through the SDK.
func TestEventPatterns(t *testing.T) {
	cases := []struct {
		name, pattern string
		want          []string
	}{
		{"exact string", `{"detail":{"state":["running"]}}`, []string{"e0"}},
		{"exact number, not a string", `{"detail":{"count":[5]}}`, []string{"e0"}},
		{"number by value", `{"detail":{"count":[12.50]}}`, []string{"e2"}},
		{"null", `{"detail":{"state":[null]}}`, []string{"e4"}},
		{"boolean", `{"detail":{"flag":[true]}}`, []string{"e0"}},
		{"any element of an array", `{"detail":{"tags":["b"]}}`, []string{"e0"}},
		{"one of several values", `{"detail":{"state":["stopped","Running"]}}`, []string{"e1", "e2"}},
		{"prefix", `{"detail":{"nested":{"x":[{"prefix":"hello"}]}}}`, []string{"e1"}},
		{"prefix ignoring case", `{"detail":{"nested":{"x":[{"prefix":{"equals-ignore-case":"HELLO"}}]}}}`, []string{"e0", "e1"}},
		{"suffix", `{"detail":{"name":[{"suffix":".txt"}]}}`, []string{"e3"}},
		{"equals-ignore-case", `{"detail":{"state":[{"equals-ignore-case":"RUNNING"}]}}`, []string{"e0", "e2"}},
		{"wildcard", `{"detail":{"name":[{"wildcard":"f*.t*"}]}}`, []string{"e3"}},
		{"anything-but a value", `{"detail":{"state":[{"anything-but":"running"}]}}`, []string{"e1", "e2"}},
		{"anything-but a list", `{"detail":{"state":[{"anything-but":["running","stopped"]}]}}`, []string{"e2"}},
		{"anything-but a prefix", `{"detail":{"state":[{"anything-but":{"prefix":"run"}}]}}`, []string{"e1", "e2"}},
		{"anything-but a number", `{"detail":{"count":[{"anything-but":0}]}}`, []string{"e0", "e2", "e3"}},
		{"exists", `{"detail":{"ip":[{"exists":true}]}}`, []string{"e2"}},
		{"exists false", `{"detail":{"state":[{"exists":false}]}}`, []string{"e3"}},
		{"exists is for leaves", `{"detail":{"nested":[{"exists":true}]}}`, nil},
		{"numeric range", `{"detail":{"count":[{"numeric":[">",0,"<=",12.5]}]}}`, []string{"e0", "e2"}},
		{"numeric equal", `{"detail":{"count":[{"numeric":["=",0]}]}}`, []string{"e1"}},
		{"numeric ignores strings", `{"detail":{"count":[{"numeric":[">=",5]}]}}`, []string{"e0", "e2"}},
		{"nested field", `{"detail":{"nested":{"y":[1]}}}`, []string{"e4"}},
		{"envelope fields", `{"source":["demo.app"],"detail-type":["e2","e4"]}`, []string{"e2", "e4"}},
		{"every field must match", `{"detail":{"state":["running","stopped"],"count":[0]}}`, []string{"e1"}},
		{"$or", `{"$or":[{"detail":{"count":[0]}},{"detail":{"name":[{"exists":true}]}}]}`, []string{"e1", "e3"}},
		{"other source", `{"source":["other.app"]}`, nil},
	}
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	must[*eventbridge.CreateEventBusOutput](t)(e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("apps")}))
	urls := make([]string, len(cases))
	for i, c := range cases {
		name := fmt.Sprint("p", i)
		urls[i] = createQueue(t, e, name, nil)
		if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name), EventBusName: aws.String("apps"), EventPattern: aws.String(c.pattern)}); err != nil {
			t.Fatalf("%s: PutRule: %v", c.name, err)
		}
		out := must[*eventbridge.PutTargetsOutput](t)(e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(name), EventBusName: aws.String("apps"),
			Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(e.sim.QueueARN(name))}}}))
		if out.FailedEntryCount != 0 {
			t.Fatalf("%s: PutTargets: %+v", c.name, out.FailedEntries)
		}
	}
	var entries []ebtypes.PutEventsRequestEntry
	for _, ev := range patternEvents {
		entries = append(entries, ebtypes.PutEventsRequestEntry{Source: aws.String("demo.app"), DetailType: aws.String(ev.detailType),
			Detail: aws.String(ev.detail), EventBusName: aws.String("apps")})
	}
	put := must[*eventbridge.PutEventsOutput](t)(e.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries}))
	if put.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %+v", put.Entries)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, m := range receive(t, e, urls[i], &sqs.ReceiveMessageInput{MaxNumberOfMessages: 10}) {
				var ev Event
				if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
					t.Fatalf("body is not an event: %v", err)
				}
				got = append(got, ev.DetailType)
			}
			sort.Strings(got)
			if diff := cmp.Diff(got, c.want); diff != "" {
				t.Errorf("pattern %s matched (-got +want):\n%s", c.pattern, diff)
			}
		})
	}
}

func TestEventPatternValidation(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	for _, c := range []struct{ pattern, msg string }{
		{`{"source":`, "Event pattern is not valid"},
		{`["aws.ecs"]`, "Filter is not an object"},
		{`{}`, "Empty objects"},
		{`{"source":"aws.ecs"}`, "Match value must be"},
		{`{"source":[]}`, "Empty arrays"},
		{`{"detail":{"n":[{"numeric":["~",1]}]}}`, "Unrecognized numeric range operator"},
		{`{"detail":{"n":[{"numeric":[">",1,">",2]}]}}`, "two lower bounds"},
		{`{"detail":{"n":[{"cidr":"10.0.0.0/8"}]}}`, "Unrecognized match type cidr"},
		{`{"detail":{"n":[{"exists":"yes"}]}}`, "exists match pattern must be either true or false"},
		{`{"$or":[{"source":["a"]}]}`, "$or"},
	} {
		_, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(c.pattern)})
		wantAPIErr(t, err, "InvalidEventPatternException", c.msg)
	}
	_, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r")})
	wantAPIErr(t, err, "ValidationException", "EventPattern or ScheduleExpression")
	_, err = e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventBusName: aws.String("nope"), EventPattern: aws.String(`{"source":["a"]}`)})
	wantAPIErr(t, err, "ResourceNotFoundException", "Event bus nope does not exist")
}

func TestEventBridgeRulesAndTargets(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	createQueue(t, e, "q", nil)
	qArn := e.sim.QueueARN("q")
	for _, name := range []string{"b-rule", "a-rule", "c-other"} {
		out := must[*eventbridge.PutRuleOutput](t)(e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name), EventPattern: aws.String(`{"source":["x"]}`)}))
		if want := "arn:aws:events:us-east-1:123456789012:rule/" + name; aws.ToString(out.RuleArn) != want {
			t.Errorf("RuleArn: got %s, want %s", aws.ToString(out.RuleArn), want)
		}
	}
	// PutRule again updates.
	must[*eventbridge.PutRuleOutput](t)(e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("a-rule"), EventPattern: aws.String(`{"source":["y"]}`),
		State: ebtypes.RuleStateDisabled, Description: aws.String("d")}))
	d := must[*eventbridge.DescribeRuleOutput](t)(e.eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("a-rule")}))
	if aws.ToString(d.EventPattern) != `{"source":["y"]}` || d.State != ebtypes.RuleStateDisabled || aws.ToString(d.Description) != "d" || aws.ToString(d.EventBusName) != "default" {
		t.Errorf("DescribeRule: %+v", d)
	}
	// ListRules pages in name order.
	var names []string
	in := &eventbridge.ListRulesInput{NamePrefix: aws.String(""), Limit: aws.Int32(2)}
	for pages := 0; ; pages++ {
		out := must[*eventbridge.ListRulesOutput](t)(e.eb.ListRules(ctx, in))
		for _, r := range out.Rules {
			names = append(names, aws.ToString(r.Name))
		}
		if out.NextToken == nil {
			if pages != 1 {
				t.Errorf("ListRules: %d pages of 2 for 3 rules", pages+1)
			}
			break
		}
		in.NextToken = out.NextToken
	}
	if diff := cmp.Diff(names, []string{"a-rule", "b-rule", "c-other"}); diff != "" {
		t.Errorf("ListRules (-got +want):\n%s", diff)
	}
	pre := must[*eventbridge.ListRulesOutput](t)(e.eb.ListRules(ctx, &eventbridge.ListRulesInput{NamePrefix: aws.String("c-")}))
	if len(pre.Rules) != 1 || aws.ToString(pre.Rules[0].Name) != "c-other" {
		t.Errorf("ListRules by prefix: %+v", pre.Rules)
	}

	for _, r := range []string{"a-rule", "b-rule"} {
		out := must[*eventbridge.PutTargetsOutput](t)(e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(r),
			Targets: []ebtypes.Target{{Id: aws.String("t1"), Arn: aws.String(qArn)}}}))
		if out.FailedEntryCount != 0 {
			t.Fatalf("PutTargets: %+v", out.FailedEntries)
		}
	}
	byTarget := must[*eventbridge.ListRuleNamesByTargetOutput](t)(e.eb.ListRuleNamesByTarget(ctx, &eventbridge.ListRuleNamesByTargetInput{TargetArn: aws.String(qArn)}))
	if diff := cmp.Diff(byTarget.RuleNames, []string{"a-rule", "b-rule"}); diff != "" {
		t.Errorf("ListRuleNamesByTarget (-got +want):\n%s", diff)
	}
	targets := must[*eventbridge.ListTargetsByRuleOutput](t)(e.eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("b-rule")}))
	if len(targets.Targets) != 1 || aws.ToString(targets.Targets[0].Arn) != qArn {
		t.Errorf("ListTargetsByRule: %+v", targets.Targets)
	}
	// A rule with targets cannot be deleted; without, it can; twice is fine.
	_, err := e.eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("b-rule")})
	wantAPIErr(t, err, "ValidationException", "has targets")
	must[*eventbridge.RemoveTargetsOutput](t)(e.eb.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: aws.String("b-rule"), Ids: []string{"t1"}}))
	must[*eventbridge.DeleteRuleOutput](t)(e.eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("b-rule")}))
	must[*eventbridge.DeleteRuleOutput](t)(e.eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("b-rule")}))
	byTarget = must[*eventbridge.ListRuleNamesByTargetOutput](t)(e.eb.ListRuleNamesByTarget(ctx, &eventbridge.ListRuleNamesByTargetInput{TargetArn: aws.String(qArn)}))
	if diff := cmp.Diff(byTarget.RuleNames, []string{"a-rule"}); diff != "" {
		t.Errorf("ListRuleNamesByTarget after delete (-got +want):\n%s", diff)
	}
	_, err = e.eb.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("b-rule")})
	wantAPIErr(t, err, "ResourceNotFoundException", "Rule b-rule does not exist")

	// Buses: a custom bus's rules are its own; names are unique.
	bus := must[*eventbridge.CreateEventBusOutput](t)(e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("apps")}))
	if aws.ToString(bus.EventBusArn) != "arn:aws:events:us-east-1:123456789012:event-bus/apps" {
		t.Errorf("EventBusArn: %s", aws.ToString(bus.EventBusArn))
	}
	_, err = e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("apps")})
	wantAPIErr(t, err, "ResourceAlreadyExistsException", "already exists")
	r := must[*eventbridge.PutRuleOutput](t)(e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("a-rule"), EventBusName: bus.EventBusArn, EventPattern: aws.String(`{"source":["z"]}`)}))
	if aws.ToString(r.RuleArn) != "arn:aws:events:us-east-1:123456789012:rule/apps/a-rule" {
		t.Errorf("custom bus RuleArn: %s", aws.ToString(r.RuleArn))
	}
	onBus := must[*eventbridge.ListRulesOutput](t)(e.eb.ListRules(ctx, &eventbridge.ListRulesInput{EventBusName: aws.String("apps")}))
	if len(onBus.Rules) != 1 || aws.ToString(onBus.Rules[0].EventPattern) != `{"source":["z"]}` {
		t.Errorf("rules of the custom bus: %+v", onBus.Rules)
	}
}

func TestPutEventsDelivery(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	url := createQueue(t, e, "q", nil)
	dlq := createQueue(t, e, "dlq", nil)
	must[*eventbridge.PutRuleOutput](t)(e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(`{"source":["app"]}`)}))
	must[*eventbridge.PutRuleOutput](t)(e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("off"), EventPattern: aws.String(`{"source":["app"]}`), State: ebtypes.RuleStateDisabled}))
	must[*eventbridge.PutTargetsOutput](t)(e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []ebtypes.Target{
		{Id: aws.String("whole"), Arn: aws.String(e.sim.QueueARN("q"))},
		{Id: aws.String("path"), Arn: aws.String(e.sim.QueueARN("q")), InputPath: aws.String("$.detail.k")},
		{Id: aws.String("const"), Arn: aws.String(e.sim.QueueARN("q")), Input: aws.String(`"fixed"`)},
		// A queue that does not exist: the delivery fails into the DLQ.
		{Id: aws.String("gone"), Arn: aws.String(e.sim.QueueARN("ghost")), DeadLetterConfig: &ebtypes.DeadLetterConfig{Arn: aws.String(e.sim.QueueARN("dlq"))}},
	}}))
	must[*eventbridge.PutTargetsOutput](t)(e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("off"), Targets: []ebtypes.Target{
		{Id: aws.String("t"), Arn: aws.String(e.sim.QueueARN("q"))}}}))

	out := must[*eventbridge.PutEventsOutput](t)(e.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{
		{Source: aws.String("app"), DetailType: aws.String("thing"), Detail: aws.String(`{"k":"v"}`), Resources: []string{"arn:aws:x:us-east-1:123456789012:r/1"}},
		{Source: aws.String("aws.ecs"), DetailType: aws.String("thing"), Detail: aws.String(`{}`)},
		{Source: aws.String("app"), DetailType: aws.String("thing"), Detail: aws.String(`[1]`)},
		{Source: aws.String("app"), DetailType: aws.String("thing"), Detail: aws.String(`{}`), EventBusName: aws.String("nope")},
		{DetailType: aws.String("thing"), Detail: aws.String(`{}`)},
	}}))
	var codes []string
	for _, r := range out.Entries {
		codes = append(codes, aws.ToString(r.ErrorCode))
	}
	if diff := cmp.Diff(codes, []string{"", "NotAuthorizedForSourceException", "MalformedDetail", "ResourceNotFoundException", "InvalidArgument"}); diff != "" || out.FailedEntryCount != 4 {
		t.Errorf("PutEvents entries (-got +want), %d failed:\n%s", out.FailedEntryCount, diff)
	}
	ms := receive(t, e, url, &sqs.ReceiveMessageInput{MaxNumberOfMessages: 10})
	got := bodies(ms)
	sort.Strings(got)
	if len(got) != 3 || got[0] != `"fixed"` || got[1] != "v" {
		t.Fatalf("queue got %q; want the event, its detail.k and the constant input (and nothing from the disabled rule)", got)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(got[2]), &ev); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"version": "0", "id": aws.ToString(out.Entries[0].EventId), "detail-type": "thing", "source": "app",
		"account": "123456789012", "time": t0.Format("2006-01-02T15:04:05Z"), "region": "us-east-1",
		"resources": []any{"arn:aws:x:us-east-1:123456789012:r/1"}, "detail": map[string]any{"k": "v"}}
	if diff := cmp.Diff(ev, want); diff != "" {
		t.Errorf("delivered event (-got +want):\n%s", diff)
	}
	dead := receive(t, e, dlq, &sqs.ReceiveMessageInput{MessageAttributeNames: []string{"All"}})
	if len(dead) != 1 {
		t.Fatalf("DLQ: got %d messages, want 1", len(dead))
	}
	attr := func(n string) string { return aws.ToString(dead[0].MessageAttributes[n].StringValue) }
	if attr("RULE_ARN") != "arn:aws:events:us-east-1:123456789012:rule/r" || attr("TARGET_ARN") != e.sim.QueueARN("ghost") || attr("ERROR_CODE") == "" {
		t.Errorf("DLQ message attributes: %v", dead[0].MessageAttributes)
	}
	if aws.ToString(dead[0].Body) != got[2] {
		t.Errorf("DLQ body: got %s, want the event", aws.ToString(dead[0].Body))
	}
	st := e.sim.Stats().Events
	if diff := cmp.Diff(st, EventStats{Published: 1, Matched: 1, Delivered: 3, Failed: 1, DeadLettered: 1}); diff != "" {
		t.Errorf("event stats (-got +want):\n%s", diff)
	}
}
