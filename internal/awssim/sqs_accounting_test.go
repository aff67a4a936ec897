package awssim

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// ReceiveAccounting counts, per message, the receives whose response an
// injected drop lost and the visibility changes an injected throttle
// refused; a clean receive and change count nothing.
func TestReceiveAccountingCountsFaultedReceives(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	noRetry := func(o *sqs.Options) { o.RetryMaxAttempts = 1 }
	q := must[*sqs.CreateQueueOutput](t)(e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("events")}))
	sent := must[*sqs.SendMessageOutput](t)(e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("{}")}))
	id := aws.ToString(sent.MessageId)

	if err := e.sim.SetFaults("sqs:ReceiveMessage", Faults{DropRate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, VisibilityTimeout: 0}, noRetry); err == nil {
		t.Fatal("the receive's response was not dropped")
	}
	if d, r, ok := e.sim.ReceiveAccounting(id); !ok || d != 1 || r != 0 {
		t.Fatalf("after a dropped receive: dropped %d, refused %d, known %v; want 1, 0, true", d, r, ok)
	}
	if err := e.sim.SetFaults("sqs:ReceiveMessage", Faults{}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(60e9) // the dropped receive's visibility timeout (30 s default) ends
	got := must[*sqs.ReceiveMessageOutput](t)(e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl}))
	if len(got.Messages) != 1 {
		t.Fatalf("received %d messages, want the one sent", len(got.Messages))
	}
	h := got.Messages[0].ReceiptHandle
	refuseExtension(t, e, q.QueueUrl, h)
	// A refusal that a later change makes good does not count; one that
	// the message's coming back follows does, at that receive.
	must[*sqs.ChangeMessageVisibilityOutput](t)(e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: q.QueueUrl, ReceiptHandle: h, VisibilityTimeout: 1}))
	e.clock.Advance(2e9)
	h = must[*sqs.ReceiveMessageOutput](t)(e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl})).Messages[0].ReceiptHandle
	if d, r, _ := e.sim.ReceiveAccounting(id); d != 1 || r != 0 {
		t.Errorf("after a refusal made good: dropped %d, refused %d; want 1 and 0", d, r)
	}
	refuseExtension(t, e, q.QueueUrl, h)
	e.clock.Advance(60e9)
	if got := must[*sqs.ReceiveMessageOutput](t)(e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl})); len(got.Messages) != 1 {
		t.Fatal("the message did not come back")
	}
	if d, r, _ := e.sim.ReceiveAccounting(id); d != 1 || r != 1 {
		t.Errorf("after a refusal and the message's return: dropped %d, refused %d; want 1 and 1", d, r)
	}
	if _, _, ok := e.sim.ReceiveAccounting("no-such-id"); ok {
		t.Error("an unknown message id is known")
	}
}

// ReceiveHistory keeps every counted receive with its time, the receiving
// client's User-Agent and what faults did to it, and the time of the move
// to the dead-letter queue: a chaos test matches each receive with the
// process that made it.
func TestReceiveHistoryNamesEachReceive(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	noRetry := func(o *sqs.Options) { o.RetryMaxAttempts = 1 }
	named := func(app string) func(*sqs.Options) { return func(o *sqs.Options) { o.AppID = app } }
	dlq := must[*sqs.CreateQueueOutput](t)(e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("dead")}))
	q := must[*sqs.CreateQueueOutput](t)(e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("events"), Attributes: map[string]string{
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dead","maxReceiveCount":3}`}}))
	sent := must[*sqs.SendMessageOutput](t)(e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("{}")}))
	id := aws.ToString(sent.MessageId)
	receive := func(app string) *sqs.ReceiveMessageOutput {
		t.Helper()
		return must[*sqs.ReceiveMessageOutput](t)(e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, VisibilityTimeout: 10}, named(app)))
	}

	start := e.clock.Now()
	h := receive("first").Messages[0].ReceiptHandle // 1: its holder lets it lapse
	e.clock.Advance(11e9)
	h = receive("second").Messages[0].ReceiptHandle // 2: its extension is refused
	refuseExtension(t, e, q.QueueUrl, h)
	e.clock.Advance(11e9)
	if err := e.sim.SetFaults("sqs:ReceiveMessage", Faults{DropRate: 1}); err != nil { // 3: dropped
		t.Fatal(err)
	}
	if _, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, VisibilityTimeout: 10}, noRetry, named("third")); err == nil {
		t.Fatal("the receive's response was not dropped")
	}
	if err := e.sim.SetFaults("sqs:ReceiveMessage", Faults{}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(11e9)
	if got := receive("fourth"); len(got.Messages) != 0 { // moves it: 3 receives counted
		t.Fatalf("received %d messages past maxReceiveCount, want 0", len(got.Messages))
	}
	history, dead, ok := e.sim.ReceiveHistory(id)
	if !ok || len(history) != 3 {
		t.Fatalf("ReceiveHistory = %d records, known %v; want 3 records", len(history), ok)
	}
	for i, want := range []struct {
		app              string
		after            time.Duration
		dropped, refused bool
	}{{"first", 0, false, false}, {"second", 11 * time.Second, false, true}, {"third", 22 * time.Second, true, false}} {
		r := history[i]
		if !strings.Contains(r.UserAgent, "app/"+want.app) || r.At.Sub(start) != want.after || r.Dropped != want.dropped || r.ExtensionRefused != want.refused {
			t.Errorf("receive %d = %+v; want the client app/%s at +%s, dropped %v, extension refused %v", i+1, r, want.app, want.after, want.dropped, want.refused)
		}
	}
	if dead.Sub(start) != 33*time.Second {
		t.Errorf("dead-lettered at +%s, want +33s (the receive that found it past maxReceiveCount)", dead.Sub(start))
	}
	if d, r, _ := e.sim.ReceiveAccounting(id); d != 1 || r != 1 {
		t.Errorf("ReceiveAccounting = %d dropped, %d refused; want 1 and 1", d, r)
	}
	if got := must[*sqs.ReceiveMessageOutput](t)(e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: dlq.QueueUrl})); len(got.Messages) != 1 || aws.ToString(got.Messages[0].MessageId) != id {
		t.Errorf("the DLQ holds %d messages, want the one moved", len(got.Messages))
	}
}

// refuseExtension has an injected throttle refuse one visibility extension
// of the message of receipt h (no retry), then lifts the fault.
func refuseExtension(t *testing.T, e *env, queue, h *string) {
	t.Helper()
	if err := e.sim.SetFaults("sqs:ChangeMessageVisibility", Faults{ThrottleRate: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := e.sqs.ChangeMessageVisibility(ctxT(t), &sqs.ChangeMessageVisibilityInput{QueueUrl: queue, ReceiptHandle: h, VisibilityTimeout: 60},
		func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	if err == nil {
		t.Fatal("the visibility change was not refused")
	}
	if err := e.sim.SetFaults("sqs:ChangeMessageVisibility", Faults{}); err != nil {
		t.Fatal(err)
	}
}
