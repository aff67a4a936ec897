package awssim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/watch"
)

// sampleDir holds the documented event samples (reference/events, as the
// reconciler's parser tests keep them).
const sampleDir = "../watch/testdata/events"

func loadSample(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sampleDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// shapeDiff lists the keys of want (the envelope and detail's top level)
// that got lacks or holds with another JSON kind.
func shapeDiff(got, want map[string]any, at string) []string {
	var out []string
	kind := func(v any) string {
		switch v.(type) {
		case nil:
			return "null"
		case map[string]any:
			return "object"
		case []any:
			return "array"
		default:
			return fmt.Sprintf("%T", v)
		}
	}
	for k, wv := range want {
		gv, ok := got[k]
		switch {
		case !ok:
			out = append(out, at+k+": missing")
		case kind(gv) != kind(wv):
			out = append(out, fmt.Sprintf("%s%s: %s, sample has %s", at, k, kind(gv), kind(wv)))
		case k == "detail" || k == "userIdentity":
			out = append(out, shapeDiff(gv.(map[string]any), wv.(map[string]any), at+k+".")...)
		}
	}
	sort.Strings(out)
	return out
}

// drain receives every message of the queue and deletes them.
func drain(t *testing.T, e *env, url string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for {
		ms := receive(t, e, url, &sqs.ReceiveMessageInput{MaxNumberOfMessages: 10})
		if len(ms) == 0 {
			return out
		}
		for _, m := range ms {
			var ev map[string]any
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
				t.Fatalf("message is not JSON: %v", err)
			}
			ev["_body"] = aws.ToString(m.Body)
			out = append(out, ev)
			must[*sqs.DeleteMessageOutput](t)(e.sqs.DeleteMessage(ctxT(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}))
		}
	}
}

// TestECSEventsReachTheDemoQueue drives ECS through the SDK against the
// demo seed and reads its events from the demo queue: each has the shape
// of the documented samples and parses with the reconciler's parser.
func TestECSEventsReachTheDemoQueue(t *testing.T) {
	e := newEnv(t, Options{RolloutDelay: time.Minute, RolloutRule: FailImages(regexp.MustCompile(`:broken$`))})
	ctx := ctxT(t)
	if err := e.sim.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	url := DemoQueueURL(e.url)
	if got := drain(t, e, url); len(got) != 0 {
		t.Fatalf("the demo queue starts with %d messages, want none", len(got))
	}
	e.clock.Advance(time.Minute) // the seed's rollouts complete
	e.sim.Step()
	if got := drain(t, e, url); len(got) != 2*3 {
		t.Fatalf("the seed's 3 ECS rollouts completing gave %d events, want a deployment change and a steady state each", len(got))
	}

	td := DemoTaskDefinition("web", "nginx:1.28", nil)
	reg := must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, td))
	bad := DemoTaskDefinition("web", "", nil)
	bad.ContainerDefinitions[0].Image = nil
	_, badErr := e.ecs.RegisterTaskDefinition(ctx, bad)
	if badErr == nil {
		t.Fatal("registering a container without an image succeeded")
	}
	must[*ecs.TagResourceOutput](t)(e.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: reg.TaskDefinition.TaskDefinitionArn,
		Tags: []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}}}))
	broken := must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, DemoTaskDefinition("api", "python:broken", nil)))
	must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(DemoCluster), Service: aws.String("api"),
		TaskDefinition: broken.TaskDefinition.TaskDefinitionArn}))
	e.clock.Advance(time.Minute) // the rollout fails and rolls back
	e.sim.Step()
	e.clock.Advance(time.Minute) // the rollback completes
	e.sim.Step()

	events := drain(t, e, url)
	type seen struct{ detailType, name, errorCode, reason string }
	var got []seen
	for _, ev := range events {
		d, _ := ev["detail"].(map[string]any)
		s := seen{detailType: ev["detail-type"].(string), name: fmt.Sprint(d["eventName"])}
		if c, ok := d["errorCode"].(string); ok {
			s.errorCode = c
		}
		if r, ok := d["reason"].(string); ok {
			s.reason = r
		}
		got = append(got, s)
	}
	want := []seen{
		{"AWS API Call via CloudTrail", "RegisterTaskDefinition", "", ""},
		{"AWS API Call via CloudTrail", "RegisterTaskDefinition", "ClientException", ""},
		{"AWS API Call via CloudTrail", "TagResource", "", ""},
		{"AWS API Call via CloudTrail", "RegisterTaskDefinition", "", ""},
		// The deployment starts within the call, which is recorded when done.
		{"ECS Deployment State Change", "SERVICE_DEPLOYMENT_IN_PROGRESS", "", ""},
		{"AWS API Call via CloudTrail", "UpdateService", "", ""},
		{"ECS Deployment State Change", "SERVICE_DEPLOYMENT_FAILED", "", reasonTasksFailed},
		{"ECS Deployment State Change", "SERVICE_DEPLOYMENT_IN_PROGRESS", "", ""},
		{"ECS Deployment State Change", "SERVICE_DEPLOYMENT_COMPLETED", "", ""},
		{"ECS Service Action", "SERVICE_STEADY_STATE", "", ""},
	}
	// Reasons other than the failure's are ids: checked below.
	for i := range got {
		if i < len(want) && want[i].reason == "" {
			got[i].reason = ""
		}
	}
	if diff := cmp.Diff(got, want, cmp.AllowUnexported(seen{})); diff != "" {
		t.Fatalf("events in the demo queue (-got +want):\n%s", diff)
	}
	rollback := events[7]["detail"].(map[string]any)["reason"].(string)
	firstDep := events[4]["detail"].(map[string]any)["deploymentId"].(string)
	if !strings.HasPrefix(rollback, "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/") || strings.Contains(rollback, firstDep) {
		t.Errorf("rollback reason: %q (the failed deployment was %s)", rollback, firstDep)
	}

	// Each event has the documented shape...
	samples := map[int]string{
		0: "cloudtrail-register-task-definition.json", 1: "cloudtrail-register-task-definition-failed.json",
		2: "cloudtrail-tag-resource.json", 6: "ecs-deployment-state-change-failed.json",
		7: "ecs-deployment-state-change-rollback.json", 9: "ecs-service-action.json",
	}
	for i, name := range samples {
		if diff := shapeDiff(events[i], loadSample(t, name), ""); len(diff) != 0 {
			t.Errorf("event %d (%s %s) differs in shape from %s:\n%s", i, got[i].detailType, got[i].name, name, strings.Join(diff, "\n"))
		}
	}
	// ...and the reconciler reads it.
	for i, ev := range events {
		parsed, err := watch.Parse([]byte(ev["_body"].(string)))
		switch i {
		case 1: // a failed call changes nothing
			if !errors.Is(err, watch.ErrIgnored) {
				t.Errorf("failed RegisterTaskDefinition: watch.Parse gave %v, want ErrIgnored", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("event %d (%s): watch.Parse: %v", i, got[i].name, err)
			continue
		}
		switch i {
		case 0:
			if parsed.Kind != watch.KindRegisterTaskDefinition || parsed.Family != "web" || parsed.TaskDefinitionArn != aws.ToString(reg.TaskDefinition.TaskDefinitionArn) {
				t.Errorf("RegisterTaskDefinition parsed as %+v", parsed)
			}
			detail := ev["detail"].(map[string]any)
			if parsed.ID != detail["eventID"] || !parsed.Time.Equal(t0.Add(time.Minute)) {
				t.Errorf("RegisterTaskDefinition id %s time %v, want detail.eventID %v and the call's time", parsed.ID, parsed.Time, detail["eventID"])
			}
		case 2:
			if parsed.Kind != watch.KindTagResource || parsed.Family != "web" {
				t.Errorf("TagResource parsed as %+v", parsed)
			}
		case 5:
			if parsed.Kind != watch.KindUpdateService || parsed.Family != "api" || parsed.Service != "arn:aws:ecs:us-east-1:123456789012:service/demo/api" {
				t.Errorf("UpdateService parsed as %+v", parsed)
			}
		case 6:
			if parsed.Kind != watch.KindDeploymentStateChange || parsed.EventName != "SERVICE_DEPLOYMENT_FAILED" || parsed.DeploymentID != firstDep ||
				parsed.Service != "arn:aws:ecs:us-east-1:123456789012:service/demo/api" || parsed.Cluster != "demo" {
				t.Errorf("deployment failure parsed as %+v", parsed)
			}
		case 9:
			if parsed.Kind != watch.KindServiceAction || parsed.EventName != "SERVICE_STEADY_STATE" {
				t.Errorf("service action parsed as %+v", parsed)
			}
		}
	}
	// IDs are unique.
	ids := map[string]bool{}
	for _, ev := range events {
		id := ev["id"].(string)
		if ids[id] {
			t.Errorf("event id %s repeated", id)
		}
		ids[id] = true
	}
}

// TestImpairedRolloutEvent: tasks failing with no circuit breaker are a
// service action, not a deployment change.
func TestImpairedRolloutEvent(t *testing.T) {
	e := newEnv(t, Options{RolloutDelay: time.Minute, RolloutRule: FailImages(regexp.MustCompile(`:broken$`))})
	ctx := ctxT(t)
	must[*ecs.CreateClusterOutput](t)(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}))
	must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, DemoTaskDefinition("f", "x:broken", nil)))
	url := createQueue(t, e, "q", nil)
	putRule(t, e, "r", `{"source":["aws.ecs"],"detail-type":["ECS Service Action","ECS Deployment State Change"]}`, "q")
	must[*ecs.CreateServiceOutput](t)(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("s"),
		TaskDefinition: aws.String("f:1"), DesiredCount: aws.Int32(1), NetworkConfiguration: demoNetwork, LaunchType: types.LaunchTypeFargate}))
	e.clock.Advance(time.Minute)
	e.sim.Step()
	var names []string
	for _, ev := range drain(t, e, url) {
		names = append(names, ev["detail-type"].(string)+" "+fmt.Sprint(ev["detail"].(map[string]any)["eventName"]))
	}
	if diff := cmp.Diff(names, []string{"ECS Deployment State Change SERVICE_DEPLOYMENT_IN_PROGRESS", "ECS Service Action SERVICE_TASK_START_IMPAIRED"}); diff != "" {
		t.Errorf("events (-got +want):\n%s", diff)
	}
}

func putRule(t *testing.T, e *env, name, pattern, queue string) {
	t.Helper()
	ctx := ctxT(t)
	if _, err := e.sim.EventBridge().PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(name), EventPattern: aws.String(pattern)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.EventBridge().PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(name),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(e.sim.QueueARN(queue))}}}); err != nil {
		t.Fatal(err)
	}
}
