package audit

import (
	"context"
	"encoding/json"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/moto"
)

// Audit events arrive in an SQS queue subscribed to the audit bus, through
// the real clients against moto_server.
func TestAuditEventsReachAQueueOnTheBus(t *testing.T) {
	url := moto.Start(t)
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	eb := eventbridge.New(eventbridge.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(url)})
	q := sqs.New(sqs.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(url)})
	ctx := context.Background()

	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("reconciler-audit")}); err != nil {
		t.Fatal(err)
	}
	qout, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("audit")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: qout.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{
		Name: aws.String("to-chat"), EventBusName: aws.String("reconciler-audit"),
		EventPattern: aws.String(`{"source":["` + Source + `"]}`),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{
		Rule: aws.String("to-chat"), EventBusName: aws.String("reconciler-audit"),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(attrs.Attributes["QueueArn"])}},
	}); err != nil {
		t.Fatal(err)
	}

	p, err := New(eb, "reconciler-audit", nil)
	if err != nil {
		t.Fatal(err)
	}
	const twin = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2"
	p.Add(controller.Action{Kind: controller.ActionRegisterTwin, Family: "web", Source: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1", Twin: twin, Spec: "abc"})
	p.Add(controller.Action{Kind: controller.ActionUpdateService, Family: "web", Service: "arn:aws:ecs:us-east-1:123456789012:service/prod/web", To: twin})
	p.Add(controller.Action{Kind: controller.ActionMarkFailed, Family: "web", Twin: twin, Reason: controller.FailedRolledBack})
	p.Add(controller.Action{Kind: controller.ActionUpdateService, Planned: true, Family: "web"}) // audit mode: not sent
	p.Flush(ctx)
	if p.Failed() != 0 {
		t.Fatalf("%d events failed", p.Failed())
	}

	var got []string
	var failed controller.Action
	for len(got) < 3 {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: qout.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			var ev struct {
				Source     string            `json:"source"`
				DetailType string            `json:"detail-type"`
				Detail     controller.Action `json:"detail"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
				t.Fatalf("message is not an event: %v", err)
			}
			if ev.Source != Source {
				t.Errorf("source = %q, want %q", ev.Source, Source)
			}
			got = append(got, ev.DetailType)
			if ev.DetailType == DetailTypes[controller.ActionMarkFailed] {
				failed = ev.Detail
			}
		}
	}
	sort.Strings(got)
	want := []string{"ECS Sidecar Rollout Failed", "ECS Sidecar Service Updated", "ECS Sidecar Twin Registered"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("events received (-got +want):\n%s", diff)
	}
	if failed.Twin != twin || failed.Reason != controller.FailedRolledBack {
		t.Errorf("the failure event's detail = %+v, want the twin and its code", failed)
	}
}
