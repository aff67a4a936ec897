package awssim

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func createQueue(t *testing.T, e *env, name string, attrs map[string]string) string {
	t.Helper()
	out, err := e.sqs.CreateQueue(ctxT(t), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

func receive(t *testing.T, e *env, url string, in *sqs.ReceiveMessageInput) []sqstypes.Message {
	t.Helper()
	if in == nil {
		in = &sqs.ReceiveMessageInput{}
	}
	in.QueueUrl = aws.String(url)
	in.MessageSystemAttributeNames = []sqstypes.MessageSystemAttributeName{"All"}
	out, err := e.sqs.ReceiveMessage(ctxT(t), in)
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	return out.Messages
}

func bodies(ms []sqstypes.Message) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, aws.ToString(m.Body))
	}
	return out
}

func TestSQSQueues(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	url := createQueue(t, e, "q1", map[string]string{"VisibilityTimeout": "45"})
	if want := e.url + "/" + DefaultAccount + "/q1"; url != want {
		t.Errorf("QueueUrl: got %s, want %s", url, want)
	}
	// Idempotent with the same attributes, refused with others.
	if again := createQueue(t, e, "q1", map[string]string{"VisibilityTimeout": "45"}); again != url {
		t.Errorf("CreateQueue again: got %s, want %s", again, url)
	}
	_, err := e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q1"), Attributes: map[string]string{"VisibilityTimeout": "46"}})
	wantAPIErr(t, err, "QueueAlreadyExists", "different value")
	_, err = e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("bad name")})
	wantAPIErr(t, err, "InvalidParameterValue", "alphanumeric")
	_, err = e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q2"), Attributes: map[string]string{"VisibilityTimeout": "50000"}})
	wantAPIErr(t, err, "InvalidAttributeValue", "VisibilityTimeout")
	_, err = e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q2"), Attributes: map[string]string{"Colour": "1"}})
	wantAPIErr(t, err, "InvalidAttributeName", "Colour")

	got := must[*sqs.GetQueueUrlOutput](t)(e.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("q1")}))
	if aws.ToString(got.QueueUrl) != url {
		t.Errorf("GetQueueUrl: got %s", aws.ToString(got.QueueUrl))
	}
	_, err = e.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
	wantAPIErr(t, err, "AWS.SimpleQueueService.NonExistentQueue", "does not exist")
	// The SDK also gives the modelled error type.
	var dne *sqstypes.QueueDoesNotExist
	if !errors.As(err, &dne) {
		t.Errorf("GetQueueUrl of a missing queue: %T is not *types.QueueDoesNotExist", err)
	}

	attrs := must[*sqs.GetQueueAttributesOutput](t)(e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{"All"}}))
	want := map[string]string{
		"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesDelayed": "0", "ApproximateNumberOfMessagesNotVisible": "0",
		"CreatedTimestamp": fmt.Sprint(t0.Unix()), "LastModifiedTimestamp": fmt.Sprint(t0.Unix()),
		"DelaySeconds": "0", "MaximumMessageSize": "1048576", "MessageRetentionPeriod": "345600", "ReceiveMessageWaitTimeSeconds": "0",
		"QueueArn": "arn:aws:sqs:us-east-1:123456789012:q1", "SqsManagedSseEnabled": "true", "VisibilityTimeout": "45",
	}
	if diff := cmp.Diff(attrs.Attributes, want); diff != "" {
		t.Errorf("GetQueueAttributes All (-got +want):\n%s", diff)
	}
	must[*sqs.SetQueueAttributesOutput](t)(e.sqs.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(url), Attributes: map[string]string{"DelaySeconds": "5"}}))
	attrs = must[*sqs.GetQueueAttributesOutput](t)(e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{"DelaySeconds", "QueueArn"}}))
	if diff := cmp.Diff(attrs.Attributes, map[string]string{"DelaySeconds": "5", "QueueArn": "arn:aws:sqs:us-east-1:123456789012:q1"}); diff != "" {
		t.Errorf("GetQueueAttributes after Set (-got +want):\n%s", diff)
	}
	_, err = e.sqs.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url),
		Attributes: map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:ghost","maxReceiveCount":3}`}})
	wantAPIErr(t, err, "InvalidAttributeValue", "Dead-letter target does not exist")

	// The queue is found by its path, whatever host the client addresses.
	other := strings.Replace(url, "127.0.0.1", "localhost", 1)
	if other == url {
		t.Fatalf("test server URL %s is not on 127.0.0.1", url)
	}
	must[*sqs.SendMessageOutput](t)(e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(other), MessageBody: aws.String("x")}))
	_, err = e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(e.url + "/999999999999/q1"), MessageBody: aws.String("x")})
	wantAPIErr(t, err, "AWS.SimpleQueueService.NonExistentQueue", "does not exist")
	_, err = e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("f.fifo")})
	wantAPIErr(t, err, "AWS.SimpleQueueService.UnsupportedOperation", "standard queues only")
}

func TestSQSSendReceiveDelete(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	url := createQueue(t, e, "q", nil)
	body := "héllo {\"a\":1}\n"
	attrs := map[string]sqstypes.MessageAttributeValue{
		"kind":  {DataType: aws.String("String"), StringValue: aws.String("test")},
		"n":     {DataType: aws.String("Number.int"), StringValue: aws.String("42")},
		"bytes": {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
	}
	sent, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body), MessageAttributes: attrs})
	if err != nil {
		t.Fatal(err) // the SDK checks MD5OfMessageBody against the body it sent
	}
	sum := md5.Sum([]byte(body))
	if got := aws.ToString(sent.MD5OfMessageBody); got != hex.EncodeToString(sum[:]) {
		t.Errorf("MD5OfMessageBody: got %s", got)
	}
	if aws.ToString(sent.MD5OfMessageAttributes) == "" {
		t.Errorf("MD5OfMessageAttributes missing")
	}
	_, err = e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("bad \x01")})
	wantAPIErr(t, err, "InvalidMessageContents", "Invalid characters")
	_, err = e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(strings.Repeat("x", 1<<20+1))})
	wantAPIErr(t, err, "InvalidParameterValue", "shorter than 1048576")

	// Receive with the attributes asked for; the SDK verifies MD5OfBody.
	ms := receive(t, e, url, &sqs.ReceiveMessageInput{MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
	if len(ms) != 1 {
		t.Fatalf("got %d messages, want 1", len(ms))
	}
	m := ms[0]
	if aws.ToString(m.Body) != body || aws.ToString(m.MessageId) != aws.ToString(sent.MessageId) {
		t.Errorf("received %q id %s", aws.ToString(m.Body), aws.ToString(m.MessageId))
	}
	if diff := cmp.Diff(m.MessageAttributes, attrs, cmpSDK); diff != "" {
		t.Errorf("MessageAttributes (-got +want):\n%s", diff)
	}
	if got, want := aws.ToString(m.MD5OfMessageAttributes), aws.ToString(sent.MD5OfMessageAttributes); got != want {
		t.Errorf("MD5OfMessageAttributes on receive %s, on send %s", got, want)
	}
	if diff := cmp.Diff(m.Attributes, map[string]string{
		"ApproximateReceiveCount": "1", "SentTimestamp": fmt.Sprint(t0.UnixMilli()),
		"ApproximateFirstReceiveTimestamp": fmt.Sprint(t0.UnixMilli()), "SenderId": "AIDAAWSSIMEXAMPLE",
	}); diff != "" {
		t.Errorf("system attributes (-got +want):\n%s", diff)
	}
	// Only the attributes asked for, by name and by prefix.
	must[*sqs.ChangeMessageVisibilityOutput](t)(e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}))
	ms = receive(t, e, url, &sqs.ReceiveMessageInput{MessageAttributeNames: []string{"ki.*", "n"}})
	if len(ms) != 1 || len(ms[0].MessageAttributes) != 2 || ms[0].MessageAttributes["bytes"].DataType != nil {
		t.Fatalf("filtered attributes: got %+v", ms)
	}
	if ms[0].Attributes["ApproximateReceiveCount"] != "2" || aws.ToString(ms[0].ReceiptHandle) == aws.ToString(m.ReceiptHandle) {
		t.Errorf("second receive: count %s, handle changed %v", ms[0].Attributes["ApproximateReceiveCount"], aws.ToString(ms[0].ReceiptHandle) != aws.ToString(m.ReceiptHandle))
	}
	must[*sqs.DeleteMessageOutput](t)(e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: ms[0].ReceiptHandle}))
	// Deleting again succeeds; a handle that is not one fails.
	must[*sqs.DeleteMessageOutput](t)(e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: ms[0].ReceiptHandle}))
	_, err = e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String("garbage")})
	wantAPIErr(t, err, "ReceiptHandleIsInvalid", "garbage")
	e.clock.Advance(time.Hour)
	if got := receive(t, e, url, nil); len(got) != 0 {
		t.Errorf("after delete: got %v", bodies(got))
	}
}

func TestSQSBatches(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	url := createQueue(t, e, "q", nil)
	var entries []sqstypes.SendMessageBatchRequestEntry
	for i := range 10 {
		entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("m", i)), MessageBody: aws.String(fmt.Sprint("body ", i))})
	}
	entries[3].MessageBody = aws.String("\x00")
	out, err := e.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Successful) != 9 || len(out.Failed) != 1 || aws.ToString(out.Failed[0].Id) != "m3" ||
		aws.ToString(out.Failed[0].Code) != "InvalidMessageContents" || !out.Failed[0].SenderFault {
		t.Errorf("SendMessageBatch: %d ok, failed %+v", len(out.Successful), out.Failed)
	}
	_, err = e.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: append(entries, entries[0])})
	wantAPIErr(t, err, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "Maximum number of entries")
	_, err = e.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []sqstypes.SendMessageBatchRequestEntry{entries[0], entries[0]}})
	wantAPIErr(t, err, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "repeated")
	_, err = e.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []sqstypes.SendMessageBatchRequestEntry{{Id: aws.String("a b"), MessageBody: aws.String("x")}}})
	wantAPIErr(t, err, "AWS.SimpleQueueService.InvalidBatchEntryId", "alphanumeric")

	ms := receive(t, e, url, &sqs.ReceiveMessageInput{MaxNumberOfMessages: 10})
	if diff := cmp.Diff(bodies(ms), []string{"body 0", "body 1", "body 2", "body 4", "body 5", "body 6", "body 7", "body 8", "body 9"}); diff != "" {
		t.Errorf("received (-got +want):\n%s", diff)
	}
	var vis []sqstypes.ChangeMessageVisibilityBatchRequestEntry
	var del []sqstypes.DeleteMessageBatchRequestEntry
	for i, m := range ms {
		if i < 2 {
			vis = append(vis, sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(fmt.Sprint("v", i)), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0})
		} else {
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("d", i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String("bad"), ReceiptHandle: aws.String("nope")})
	dout := must[*sqs.DeleteMessageBatchOutput](t)(e.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: del}))
	if len(dout.Successful) != 7 || len(dout.Failed) != 1 || aws.ToString(dout.Failed[0].Code) != "ReceiptHandleIsInvalid" {
		t.Errorf("DeleteMessageBatch: %d ok, failed %+v", len(dout.Successful), dout.Failed)
	}
	vout := must[*sqs.ChangeMessageVisibilityBatchOutput](t)(e.sqs.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: vis}))
	if len(vout.Successful) != 2 || len(vout.Failed) != 0 {
		t.Errorf("ChangeMessageVisibilityBatch: %+v", vout)
	}
	// Visible again at once: the two, and nothing else.
	if diff := cmp.Diff(bodies(receive(t, e, url, &sqs.ReceiveMessageInput{MaxNumberOfMessages: 10})), []string{"body 0", "body 1"}); diff != "" {
		t.Errorf("after the batches (-got +want):\n%s", diff)
	}
}

func TestSQSVisibilityTimeout(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	url := createQueue(t, e, "q", map[string]string{"VisibilityTimeout": "30"})
	must[*sqs.SendMessageOutput](t)(e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("m")}))
	first := receive(t, e, url, nil)
	if len(first) != 1 {
		t.Fatalf("first receive: %v", bodies(first))
	}
	e.clock.Advance(29 * time.Second)
	if got := receive(t, e, url, nil); len(got) != 0 {
		t.Errorf("in flight for 29 s of 30: got %v", bodies(got))
	}
	attrs := must[*sqs.GetQueueAttributesOutput](t)(e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}}))
	if diff := cmp.Diff(attrs.Attributes, map[string]string{"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "1"}); diff != "" {
		t.Errorf("counts in flight (-got +want):\n%s", diff)
	}
	// Extending the visibility counts from now.
	must[*sqs.ChangeMessageVisibilityOutput](t)(e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: first[0].ReceiptHandle, VisibilityTimeout: 60}))
	e.clock.Advance(59 * time.Second)
	if got := receive(t, e, url, nil); len(got) != 0 {
		t.Errorf("extended to 60 s, after 59 s: got %v", bodies(got))
	}
	e.clock.Advance(time.Second)
	second := receive(t, e, url, &sqs.ReceiveMessageInput{VisibilityTimeout: 5})
	if len(second) != 1 || second[0].Attributes["ApproximateReceiveCount"] != "2" ||
		second[0].Attributes["ApproximateFirstReceiveTimestamp"] != fmt.Sprint(t0.UnixMilli()) {
		t.Fatalf("after the timeout: %+v", second)
	}
	// The first handle's message is in flight again under a new handle; the
	// visibility of a message not in flight cannot change.
	e.clock.Advance(5 * time.Second)
	_, err := e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: second[0].ReceiptHandle, VisibilityTimeout: 10})
	wantAPIErr(t, err, "AWS.SimpleQueueService.MessageNotInflight", "") // the SDK's type has no message member
	_, err = e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: second[0].ReceiptHandle, VisibilityTimeout: 43201})
	wantAPIErr(t, err, "InvalidParameterValue", "VisibilityTimeout")

	// DelaySeconds hides a new message until it is due.
	must[*sqs.SendMessageOutput](t)(e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("later"), DelaySeconds: 10}))
	receive(t, e, url, nil) // takes "m"
	if got := receive(t, e, url, nil); len(got) != 0 {
		t.Errorf("delayed message received early: %v", bodies(got))
	}
	e.clock.Advance(10 * time.Second)
	if diff := cmp.Diff(bodies(receive(t, e, url, nil)), []string{"later"}); diff != "" {
		t.Errorf("delayed message when due (-got +want):\n%s", diff)
	}
}

func TestSQSRedrive(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	dlq := createQueue(t, e, "dlq", nil)
	url := createQueue(t, e, "q", map[string]string{"VisibilityTimeout": "10",
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":"2"}`})
	sent := must[*sqs.SendMessageOutput](t)(e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("poison")}))
	for i := 1; i <= 2; i++ {
		ms := receive(t, e, url, nil)
		if len(ms) != 1 || ms[0].Attributes["ApproximateReceiveCount"] != fmt.Sprint(i) {
			t.Fatalf("receive #%d: %+v", i, ms)
		}
		e.clock.Advance(10 * time.Second)
	}
	// The third receive would exceed maxReceiveCount: the message moves.
	if got := receive(t, e, url, nil); len(got) != 0 {
		t.Errorf("third receive: got %v, want the message moved to the DLQ", bodies(got))
	}
	ms := receive(t, e, dlq, nil)
	if len(ms) != 1 || aws.ToString(ms[0].Body) != "poison" || aws.ToString(ms[0].MessageId) != aws.ToString(sent.MessageId) ||
		ms[0].Attributes["DeadLetterQueueSourceArn"] != "arn:aws:sqs:us-east-1:123456789012:q" {
		t.Fatalf("DLQ: %+v", ms)
	}
	attrs := must[*sqs.GetQueueAttributesOutput](t)(e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{"All"}}))
	if attrs.Attributes["ApproximateNumberOfMessages"] != "0" || attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
		t.Errorf("source queue after redrive: %v", attrs.Attributes)
	}
}

func TestSQSLongPolling(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	url := createQueue(t, e, "q", nil)
	// A long poll returns as soon as a message arrives: the send below is
	// made after the poll started (the poller is counted as waiting first).
	got := make(chan []sqstypes.Message, 1)
	errc := make(chan error, 1)
	go func() {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20})
		if err != nil {
			errc <- err
			return
		}
		got <- out.Messages
	}()
	for !e.sim.sqsWaiting("q") {
		time.Sleep(5 * time.Millisecond)
	}
	must[*sqs.SendMessageOutput](t)(e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("wake")}))
	select {
	case ms := <-got:
		if diff := cmp.Diff(bodies(ms), []string{"wake"}); diff != "" {
			t.Errorf("long poll (-got +want):\n%s", diff)
		}
	case err := <-errc:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("long poll did not return")
	}
	// A poll of an empty queue with a short wait returns empty.
	out := must[*sqs.ReceiveMessageOutput](t)(e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1}))
	if len(out.Messages) != 0 {
		t.Errorf("empty queue: got %v", bodies(out.Messages))
	}
	_, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 21})
	wantAPIErr(t, err, "InvalidParameterValue", "WaitTimeSeconds")
	_, err = e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 11})
	wantAPIErr(t, err, "InvalidParameterValue", "MaxNumberOfMessages")
}

func TestSQSMD5OfAttributes(t *testing.T) {
	// Known answer, computed by hand from SQS's documented encoding:
	// name "a" (00000001 61), type "String" (00000006 537472696e67),
	// transport 01, value "b" (00000001 62).
	enc := []byte("\x00\x00\x00\x01a\x00\x00\x00\x06String\x01\x00\x00\x00\x01b")
	sum := md5.Sum(enc)
	got := md5OfAttributes(map[string]sqstypes.MessageAttributeValue{"a": {DataType: aws.String("String"), StringValue: aws.String("b")}})
	if want := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("md5OfAttributes: got %s, want %s", got, want)
	}
}

// sqsWaiting reports whether a long poll is waiting on the queue (tests).
func (s *Sim) sqsWaiting(name string) bool {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	q := st.queues[name]
	return q != nil && q.waiters > 0
}

var cmpSDK = cmpopts.IgnoreUnexported(sqstypes.MessageAttributeValue{})
