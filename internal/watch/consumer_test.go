package watch

import (
	"context"
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

func TestConsumerAtLeastOnce(t *testing.T) {
	client, queue := newQueue(t)
	rec := &recorder{outcomes: map[string]int{}}
	c, err := NewConsumer(client, ConsumerOptions{
		QueueURL: queue, WaitTime: time.Second, Visibility: 3 * time.Second,
		Enqueue: rec.enqueue, Observe: rec.observe,
		Resolve: func(ctx context.Context, ev Event) (string, error) { return "", ErrNoFamily },
	})
	if err != nil {
		t.Fatal(err)
	}
	beforeArrival := time.Now()
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
	// Only the event waiting for its reconcile is left, held invisible
	// beyond the first visibility timeout by the extender.
	waitFor(t, "the three others deleted", func() bool {
		v, nv := queueDepth(t, client, queue)
		return v == "0" && nv == "1"
	})
	time.Sleep(4 * time.Second) // past one visibility timeout
	if v, nv := queueDepth(t, client, queue); v != "0" || nv != "1" {
		t.Fatalf("after the visibility timeout: visible %s, in flight %s; want the held message kept invisible", v, nv)
	}
	// A reconcile that started before the message arrived does not cover it.
	c.Done(ctx, "web", beforeArrival)
	if c.Held() != 1 {
		t.Fatalf("held = %d after an older reconcile, want 1", c.Held())
	}
	c.Done(ctx, "other", time.Now())
	if c.Held() != 1 {
		t.Fatalf("held = %d after another family's reconcile, want 1", c.Held())
	}
	c.Done(ctx, "web", time.Now())
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
