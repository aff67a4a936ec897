package awssim

import (
	"testing"

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
	if err := e.sim.SetFaults("sqs:ChangeMessageVisibility", Faults{ThrottleRate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: q.QueueUrl, ReceiptHandle: h, VisibilityTimeout: 60}, noRetry); err == nil {
		t.Fatal("the visibility change was not refused")
	}
	if err := e.sim.SetFaults("sqs:ChangeMessageVisibility", Faults{}); err != nil {
		t.Fatal(err)
	}
	// A refusal that a later change makes good does not count; one that
	// the message's coming back follows does, at that receive.
	must[*sqs.ChangeMessageVisibilityOutput](t)(e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: q.QueueUrl, ReceiptHandle: h, VisibilityTimeout: 1}))
	e.clock.Advance(2e9)
	h = must[*sqs.ReceiveMessageOutput](t)(e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl})).Messages[0].ReceiptHandle
	if d, r, _ := e.sim.ReceiveAccounting(id); d != 1 || r != 0 {
		t.Errorf("after a refusal made good: dropped %d, refused %d; want 1 and 0", d, r)
	}
	if err := e.sim.SetFaults("sqs:ChangeMessageVisibility", Faults{ThrottleRate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: q.QueueUrl, ReceiptHandle: h, VisibilityTimeout: 60}, noRetry); err == nil {
		t.Fatal("the visibility change was not refused")
	}
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
