package watch

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/moto"
)

// The consumer is driven through the real SQS client against moto_server.
func newQueue(t *testing.T) (*sqs.Client, string) {
	t.Helper()
	url := moto.Start(t)
	client := sqs.New(sqs.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(url),
	})
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String("reconciler-events")})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	return client, aws.ToString(out.QueueUrl)
}

func send(t *testing.T, client *sqs.Client, queue, body string) {
	t.Helper()
	if _, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String(body)}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
}

func sample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// queueDepth is visible + in flight.
func queueDepth(t *testing.T, client *sqs.Client, queue string) (visible, inFlight string) {
	t.Helper()
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queue),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	return out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]
}

type recorder struct {
	mu       sync.Mutex
	families []string
	outcomes map[string]int
}

func (r *recorder) enqueue(f string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.families = append(r.families, f)
}

func (r *recorder) observe(_ Kind, outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes[outcome]++
}

func (r *recorder) snapshot() ([]string, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.families), maps.Clone(r.outcomes)
}

// waitFor polls cond (the consumer works in the background) for up to 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// visibilityLog records the consumer's ChangeMessageVisibilityBatch calls.
type visibilityLog struct {
	*sqs.Client
	mu      sync.Mutex
	changes []visibilityChange
}

type visibilityChange struct {
	receipts []string
	seconds  []int32
	failed   int // entries SQS did not change
	err      error
}

func (v *visibilityLog) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	out, err := v.Client.ChangeMessageVisibilityBatch(ctx, in, optFns...)
	c := visibilityChange{err: err}
	for _, e := range in.Entries {
		c.receipts = append(c.receipts, aws.ToString(e.ReceiptHandle))
		c.seconds = append(c.seconds, e.VisibilityTimeout)
	}
	if out != nil {
		c.failed = len(out.Failed)
	}
	v.mu.Lock()
	v.changes = append(v.changes, c)
	v.mu.Unlock()
	return out, err
}

// extended reports whether SQS took an extension of receipt's visibility
// to seconds.
func (v *visibilityLog) extended(receipt string, seconds int32) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range v.changes {
		if c.err != nil || c.failed != 0 {
			continue
		}
		for i, r := range c.receipts {
			if r == receipt && c.seconds[i] == seconds {
				return true
			}
		}
	}
	return false
}

// TestConsumerAtLeastOnce runs the consumer against moto, on a fake clock:
// the visibility extender moves when the test moves the clock, and the test
// sees the extension SQS took instead of waiting a visibility timeout out.
func TestConsumerAtLeastOnce(t *testing.T) {
	client, queue := newQueue(t)
	const visibility = 30 * time.Second // longer than the test: no redelivery on the wall clock
	clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	timers := awssim.NewFakeTimers(clock)
	rec := &recorder{outcomes: map[string]int{}}
	vis := &visibilityLog{Client: client}
	c, err := NewConsumer(vis, ConsumerOptions{
		QueueURL: queue, WaitTime: time.Second, Visibility: visibility,
		Enqueue: rec.enqueue, Observe: rec.observe,
		Resolve: func(ctx context.Context, ev Event) (string, error) { return "", ErrNoFamily },
		Now:     clock.Now, After: timers.After,
	})
	if err != nil {
		t.Fatal(err)
	}
	beforeArrival := clock.Now()
	clock.Advance(time.Second)
	send(t, client, queue, sample(t, "cloudtrail-register-task-definition.json"))
	send(t, client, queue, sample(t, "cloudtrail-register-task-definition-failed.json"))
	send(t, client, queue, "not an event")
	send(t, client, queue, sample(t, "ecs-service-action.json")) // resolver: the service is gone

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "four messages handled", func() bool {
		_, o := rec.snapshot()
		return o[OutcomeQueued]+o[OutcomeIgnored]+o[OutcomeUnparseable]+o[OutcomeUnresolved] == 4
	})
	families, outcomes := rec.snapshot()
	if want := []string{"web"}; !slices.Equal(families, want) {
		t.Errorf("enqueued %v, want %v", families, want)
	}
	for _, o := range []string{OutcomeQueued, OutcomeIgnored, OutcomeUnparseable, OutcomeUnresolved} {
		if outcomes[o] != 1 {
			t.Errorf("outcome %s counted %d times, want 1 (all: %v)", o, outcomes[o], outcomes)
		}
	}
	// Only the event waiting for its reconcile is left, in flight.
	waitFor(t, "the three others deleted", func() bool {
		v, nv := queueDepth(t, client, queue)
		return v == "0" && nv == "1"
	})
	c.mu.Lock()
	if len(c.held["web"]) != 1 {
		c.mu.Unlock()
		t.Fatalf("held %v, want the one message of web", c.held)
	}
	receipt := c.held["web"][0].receipt
	c.mu.Unlock()
	// A third of a visibility timeout on, the extender makes SQS keep it
	// hidden for a whole visibility timeout again.
	nextWaitOf(t, timers, visibility/3)
	timers.Advance(visibility / 3)
	waitFor(t, "the held message's visibility extended", func() bool { return vis.extended(receipt, int32(visibility/time.Second)) })
	if v, nv := queueDepth(t, client, queue); v != "0" || nv != "1" {
		t.Fatalf("after the extension: visible %s, in flight %s; want the held message kept invisible", v, nv)
	}
	// A reconcile that started before the message arrived does not cover it.
	c.Done(ctx, "web", beforeArrival)
	if c.Held() != 1 {
		t.Fatalf("held = %d after an older reconcile, want 1", c.Held())
	}
	c.Done(ctx, "other", clock.Now())
	if c.Held() != 1 {
		t.Fatalf("held = %d after another family's reconcile, want 1", c.Held())
	}
	c.Done(ctx, "web", clock.Now())
	if c.Held() != 0 {
		t.Fatalf("held = %d after the family's reconcile, want 0", c.Held())
	}
	if v, nv := queueDepth(t, client, queue); v != "0" || nv != "0" {
		t.Errorf("queue after Done: visible %s, in flight %s; want empty", v, nv)
	}
}

func TestConsumerReturnsHeldMessagesOnShutdown(t *testing.T) {
	client, queue := newQueue(t)
	rec := &recorder{outcomes: map[string]int{}}
	c, err := NewConsumer(client, ConsumerOptions{
		QueueURL: queue, WaitTime: time.Second, Visibility: 60 * time.Second,
		Enqueue: rec.enqueue, Observe: rec.observe,
	})
	if err != nil {
		t.Fatal(err)
	}
	send(t, client, queue, sample(t, "cloudtrail-tag-resource.json"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, "the message held", func() bool { return c.Held() == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Without the release it would stay invisible for 60s.
	out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), WaitTimeSeconds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("after shutdown the queue gives %d messages, want the 1 unhandled message back", len(out.Messages))
	}
}

func TestNewConsumerRejectsBadOptions(t *testing.T) {
	enq := func(string) {}
	for _, o := range []ConsumerOptions{
		{Enqueue: enq},
		{QueueURL: "q"},
		{QueueURL: "q", Enqueue: enq, WaitTime: 21 * time.Second},
		{QueueURL: "q", Enqueue: enq, Visibility: time.Second},
		{QueueURL: "q", Enqueue: enq, MaxMessages: 11},
		{QueueURL: "q", Enqueue: enq, MaxHold: 2 * time.Minute},                                // < 3 × 60s
		{QueueURL: "q", Enqueue: enq, Visibility: 10 * time.Minute, MaxHold: 15 * time.Minute}, // < 3 × 10m
		{QueueURL: "q", Enqueue: enq, MaxHold: 13 * time.Hour},
		{QueueURL: "q", Enqueue: enq, MaxHold: -time.Minute},
		{QueueURL: "q", Enqueue: enq, Account: "12345"},
	} {
		if _, err := NewConsumer(nil, o); err == nil {
			t.Errorf("NewConsumer(%+v) succeeded, want an error", o)
		}
	}
}

func TestNewConsumerMaxHoldDefault(t *testing.T) {
	enq := func(string) {}
	for _, tc := range []struct{ visibility, maxHold, want time.Duration }{
		{0, 0, 15 * time.Minute},
		{10 * time.Minute, 0, 30 * time.Minute}, // 3 × visibility, when longer
		{12 * time.Hour, 0, 12 * time.Hour},     // SQS's bound
		{time.Minute, 3 * time.Minute, 3 * time.Minute},
	} {
		c, err := NewConsumer(nil, ConsumerOptions{QueueURL: "q", Enqueue: enq, Visibility: tc.visibility, MaxHold: tc.maxHold})
		if err != nil {
			t.Errorf("visibility %v, max hold %v: %v", tc.visibility, tc.maxHold, err)
			continue
		}
		if c.o.MaxHold != tc.want {
			t.Errorf("visibility %v, max hold %v: MaxHold = %v, want %v", tc.visibility, tc.maxHold, c.o.MaxHold, tc.want)
		}
	}
}

// scriptedReceive fails or answers the consumer's receives in turn, then
// blocks until the consumer stops.
type scriptedReceive struct {
	SQSAPI
	mu      sync.Mutex
	results []error // nil: an empty answer
}

func (s *scriptedReceive) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	s.mu.Lock()
	if len(s.results) == 0 {
		s.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	err := s.results[0]
	s.results = s.results[1:]
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &sqs.ReceiveMessageOutput{}, nil
}

// TestConsumerBacksOffAfterFailedReceives: after a failed receive the
// consumer waits 1s, doubling with each failure in a row up to 30s, on its
// clock; a receive that succeeds brings the wait back to 1s.
func TestConsumerBacksOffAfterFailedReceives(t *testing.T) {
	down := errors.New("injected: receive failed")
	script := []error{down, down, down, down, down, down, down, nil, down}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second, time.Second}
	const visibility = 3 * time.Hour // the extender waits an hour: apart from the backoffs
	clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	timers := awssim.NewFakeTimers(clock)
	c, err := NewConsumer(&scriptedReceive{results: script}, ConsumerOptions{
		QueueURL: "q", Visibility: visibility, MaxHold: MaxMaxHold, Enqueue: func(string) {},
		Now: clock.Now, After: timers.After,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var got []time.Duration
	for range want {
		d := timers.NextWait(t.Fatal)
		if d == visibility/3 {
			d = timers.NextWait(t.Fatal)
		}
		got = append(got, d)
		timers.Advance(d)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("waits after the receives %v: %v, want %v", script, got, want)
	}
}
