package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// These tests drive the consumer step by step (receiveOnce, tend) against
// awssim's SQS through the real SDK client, on a fake clock that the
// simulator and the consumer share: each step is one tend interval
// (Visibility/3) of simulated time, and no test waits on the wall clock.

const (
	holdVisibility = 30 * time.Second
	holdMax        = 2 * time.Minute // MinMaxHold(30s) is 90s
	holdStep       = holdVisibility / 3
	holdReceives   = 3 // the queue's maxReceiveCount
)

// simQueues is a queue whose RedrivePolicy moves a message to dlq on the
// receive after its holdReceives-th.
type simQueues struct {
	clock       *awssim.FakeClock
	client      *sqs.Client
	queue, dlq  string
	deleteCalls atomic.Int32 // DeleteMessageBatch calls made through countingSQS
}

func newSimQueues(t *testing.T) *simQueues {
	t.Helper()
	clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	sim := awssim.New(awssim.Options{Clock: clock})
	srv := httptest.NewServer(sim.Handler()) // 127.0.0.1
	t.Cleanup(srv.Close)
	client := sqs.New(sqs.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(srv.URL),
	})
	ctx := context.Background()
	dlq, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("reconciler-events-dlq")})
	if err != nil {
		t.Fatalf("CreateQueue dlq: %v", err)
	}
	redrive, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": sim.QueueARN("reconciler-events-dlq"),
		"maxReceiveCount":     fmt.Sprint(holdReceives),
	})
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("reconciler-events"), Attributes: map[string]string{
		"VisibilityTimeout": fmt.Sprint(int(holdVisibility / time.Second)),
		"RedrivePolicy":     string(redrive),
	}})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	return &simQueues{clock: clock, client: client, queue: aws.ToString(q.QueueUrl), dlq: aws.ToString(dlq.QueueUrl)}
}

// countingSQS counts the consumer's deletes.
type countingSQS struct {
	*sqs.Client
	deletes *atomic.Int32
}

func (c countingSQS) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	c.deletes.Add(1)
	return c.Client.DeleteMessageBatch(ctx, in, optFns...)
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) lines() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.b.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// consumer builds a consumer of q.queue on the fake clock with the given
// MaxHold. WaitTime under a second asks for short polls (WaitTimeSeconds
// 0): a step never waits on the wall clock.
func (q *simQueues) consumer(t *testing.T, maxHold time.Duration, rec *recorder, logs *syncBuffer) *Consumer {
	t.Helper()
	c, err := NewConsumer(countingSQS{q.client, &q.deleteCalls}, ConsumerOptions{
		QueueURL: q.queue, WaitTime: time.Millisecond, Visibility: holdVisibility, MaxHold: maxHold,
		Enqueue: rec.enqueue, Observe: rec.observe,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    q.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// step is one tend interval: a receive, a tend, then the clock moves on.
func (q *simQueues) step(t *testing.T, c *Consumer) {
	t.Helper()
	if err := c.receiveOnce(context.Background()); err != nil {
		t.Fatalf("receive: %v", err)
	}
	c.tend(context.Background())
	q.clock.Advance(holdStep)
}

// fromDLQ short-polls the dead-letter queue.
func (q *simQueues) fromDLQ(t *testing.T) []sqstypes.Message {
	t.Helper()
	out, err := q.client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.dlq),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"},
	})
	if err != nil {
		t.Fatalf("ReceiveMessage dlq: %v", err)
	}
	return out.Messages
}

func (q *simQueues) depth(t *testing.T, url string) (visible, inFlight string) {
	t.Helper()
	return queueDepth(t, q.client, url)
}

// driveToDLQ steps a consumer whose family never succeeds (Done is never
// called) until the message is in the DLQ, for at most maxSteps. It returns
// the steps taken and the message (nil when it never got there).
func driveToDLQ(t *testing.T, q *simQueues, c *Consumer, maxSteps int) (int, *sqstypes.Message) {
	t.Helper()
	for steps := 1; steps <= maxSteps; steps++ {
		q.step(t, c)
		if ms := q.fromDLQ(t); len(ms) > 0 {
			return steps, &ms[0]
		}
	}
	return maxSteps, nil
}

// Issue 16: a family whose reconcile never succeeds. With MaxHold the
// message is held for 2m (12 steps of 10s, released at t=120s), then comes
// back twice, each time held unextended and let go, and the receive after
// the third (maxReceiveCount 3) moves it to the DLQ at t=200s: 21 steps,
// 3 receives, 3 releases. The "no max hold" case is the behaviour before
// the fix (MaxHold at its 12h bound stands in for "forever"): within the
// same bound of steps the message is received once, held and extended
// throughout, and never reaches the DLQ; so this test fails without the
// release.
func TestConsumerNeverSucceedingFamilyReachesDLQ(t *testing.T) {
	const maxSteps = 60 // 10 minutes of fake time
	t.Run("max hold", func(t *testing.T) {
		q := newSimQueues(t)
		rec := &recorder{outcomes: map[string]int{}}
		logs := &syncBuffer{}
		c := q.consumer(t, holdMax, rec, logs)
		body := sample(t, "cloudtrail-register-task-definition.json")
		send(t, q.client, q.queue, body)

		steps, m := driveToDLQ(t, q, c, maxSteps)
		if m == nil {
			t.Fatalf("after %d steps (%v) the message is not in the DLQ", steps, time.Duration(steps)*holdStep)
		}
		t.Logf("in the DLQ after %d steps (%v of fake time)", steps, time.Duration(steps)*holdStep)
		if steps != 21 {
			t.Errorf("in the DLQ after %d steps, want 21 (released at 120s, received again at 140s and 170s, moved at 200s)", steps)
		}
		// The count moves with the message (awssim, as moto): the queue's 3
		// receives, and the one from the DLQ.
		if got := m.Attributes["ApproximateReceiveCount"]; got != fmt.Sprint(holdReceives+1) {
			t.Errorf("the DLQ's message was received %s times, want %d", got, holdReceives+1)
		}
		if aws.ToString(m.Body) != body {
			t.Errorf("the DLQ's message is not the one sent")
		}
		if v, nv := q.depth(t, q.queue); v != "0" || nv != "0" {
			t.Errorf("queue after the redrive: visible %s, in flight %s; want empty", v, nv)
		}
		if c.Held() != 0 {
			t.Errorf("held = %d, want 0", c.Held())
		}
		families, outcomes := rec.snapshot()
		if outcomes[OutcomeReleased] != holdReceives || outcomes[OutcomeQueued] != holdReceives {
			t.Errorf("outcomes %v, want %d queued and %d released (one of each per receive)", outcomes, holdReceives, holdReceives)
		}
		if len(families) != holdReceives {
			t.Errorf("enqueued %v, want the family once per receive", families)
		}
		if n := q.deleteCalls.Load(); n != 0 {
			t.Errorf("the consumer deleted %d times, want never", n)
		}
		// One warning per release, with the family and the receive count,
		// and nothing of the body.
		var counts []any
		for _, l := range logs.lines() {
			if l["level"] != "WARN" {
				continue
			}
			if !strings.Contains(l["msg"].(string), "max hold") {
				t.Errorf("unexpected warning %v", l)
				continue
			}
			if l["family"] != "web" {
				t.Errorf("release logged family %v, want web", l["family"])
			}
			counts = append(counts, l["receive_count"])
		}
		if fmt.Sprint(counts) != "[1 2 3]" {
			t.Errorf("releases logged with receive counts %v, want [1 2 3]", counts)
		}
		if s := fmt.Sprint(logs.lines()); strings.Contains(s, "ci-deployer") || strings.Contains(s, "eventVersion") {
			t.Errorf("the log holds some of the message body: %s", s)
		}
	})
	t.Run("no max hold", func(t *testing.T) {
		q := newSimQueues(t)
		rec := &recorder{outcomes: map[string]int{}}
		c := q.consumer(t, MaxMaxHold, rec, &syncBuffer{})
		send(t, q.client, q.queue, sample(t, "cloudtrail-register-task-definition.json"))
		if steps, m := driveToDLQ(t, q, c, maxSteps); m != nil {
			t.Fatalf("the message reached the DLQ after %d steps without a max hold", steps)
		}
		if _, o := rec.snapshot(); o[OutcomeQueued] != 1 || o[OutcomeReleased] != 0 {
			t.Errorf("outcomes %v, want one receive and no release", o)
		}
		if v, nv := q.depth(t, q.queue); v != "0" || nv != "1" {
			t.Errorf("queue: visible %s, in flight %s; want the message held", v, nv)
		}
	})
}

// A family that succeeds within MaxHold: its message is deleted and never
// reaches the DLQ, however long the clock then runs.
func TestConsumerSuccessWithinMaxHoldDeletes(t *testing.T) {
	q := newSimQueues(t)
	rec := &recorder{outcomes: map[string]int{}}
	c := q.consumer(t, holdMax, rec, &syncBuffer{})
	send(t, q.client, q.queue, sample(t, "cloudtrail-register-task-definition.json"))
	for range 11 { // steps at 0s-100s: extended, within MaxHold
		q.step(t, c)
	}
	if c.Held() != 1 {
		t.Fatalf("held = %d within MaxHold, want 1", c.Held())
	}
	c.Done(context.Background(), "web", q.clock.Now())
	if c.Held() != 0 {
		t.Fatalf("held = %d after Done, want 0", c.Held())
	}
	for range 60 {
		q.step(t, c)
	}
	if ms := q.fromDLQ(t); len(ms) != 0 {
		t.Errorf("the DLQ has %d messages, want none", len(ms))
	}
	if v, nv := q.depth(t, q.queue); v != "0" || nv != "0" {
		t.Errorf("queue after Done: visible %s, in flight %s; want empty", v, nv)
	}
	if _, o := rec.snapshot(); o[OutcomeQueued] != 1 || o[OutcomeReleased] != 0 {
		t.Errorf("outcomes %v, want one receive and no release", o)
	}
}

// A message received again past MaxHold is held without extension, and a
// Done within its visibility deletes it.
func TestConsumerPastMaxHoldStillDeletable(t *testing.T) {
	q := newSimQueues(t)
	rec := &recorder{outcomes: map[string]int{}}
	c := q.consumer(t, holdMax, rec, &syncBuffer{})
	send(t, q.client, q.queue, sample(t, "cloudtrail-register-task-definition.json"))
	for range 14 { // steps at 0s-130s: released at 120s, visible again at 140s
		q.step(t, c)
	}
	if _, o := rec.snapshot(); o[OutcomeReleased] != 1 || o[OutcomeQueued] != 1 {
		t.Fatalf("outcomes %v at 140s, want one receive and one release", o)
	}
	q.step(t, c) // 140s: the second receive, past MaxHold
	if c.Held() != 1 {
		t.Fatalf("held = %d after the receive past MaxHold, want 1", c.Held())
	}
	c.Done(context.Background(), "web", q.clock.Now())
	if v, nv := q.depth(t, q.queue); v != "0" || nv != "0" {
		t.Errorf("queue after Done: visible %s, in flight %s; want empty", v, nv)
	}
	for range 30 {
		q.step(t, c)
	}
	if ms := q.fromDLQ(t); len(ms) != 0 {
		t.Errorf("the DLQ has %d messages, want none", len(ms))
	}
	if _, o := rec.snapshot(); o[OutcomeReleased] != 1 {
		t.Errorf("outcomes %v, want the one release only", o)
	}
}

// After a release, a Done that comes late neither fails nor deletes with
// the stale receipt: awssim, like moto, would delete the message with it
// (SQS documents that it may), taking it from the replica that holds it now.
func TestConsumerLateDoneAfterRelease(t *testing.T) {
	q := newSimQueues(t)
	rec := &recorder{outcomes: map[string]int{}}
	logs := &syncBuffer{}
	c := q.consumer(t, holdMax, rec, logs)
	send(t, q.client, q.queue, sample(t, "cloudtrail-register-task-definition.json"))
	for range 13 { // steps at 0s-120s: released at 120s, visible again at 140s
		q.step(t, c)
	}
	if _, o := rec.snapshot(); o[OutcomeReleased] != 1 {
		t.Fatalf("outcomes %v; want the message released", o)
	}
	if c.Held() != 0 {
		t.Errorf("held = %d after the release, want its receipt forgotten", c.Held())
	}
	// Another replica takes it once visible again (140s).
	q.clock.Advance(10 * time.Second)
	out, err := q.client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.queue)})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("the other replica's receive: %d messages, %v; want the message", len(out.Messages), err)
	}
	// The family's reconcile, begun before the release, succeeds now.
	c.Done(context.Background(), "web", q.clock.Now())
	if n := q.deleteCalls.Load(); n != 0 {
		t.Errorf("the late Done made %d delete calls, want none", n)
	}
	if v, nv := q.depth(t, q.queue); v != "0" || nv != "1" {
		t.Errorf("queue after the late Done: visible %s, in flight %s; want the other replica's message still in flight", v, nv)
	}
	for _, l := range logs.lines() {
		if l["level"] == "WARN" && strings.Contains(l["msg"].(string), "delete") {
			t.Errorf("the late Done logged %v", l)
		}
	}
	// The other replica's receipt is the live one.
	if _, err := q.client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(q.queue), ReceiptHandle: out.Messages[0].ReceiptHandle}); err != nil {
		t.Fatalf("DeleteMessage with the current receipt: %v", err)
	}
	if v, nv := q.depth(t, q.queue); v != "0" || nv != "0" {
		t.Errorf("queue: visible %s, in flight %s; want empty", v, nv)
	}
}

// MaxHold counts from the message's first receive, SQS's
// ApproximateFirstReceiveTimestamp, which may be another replica's; without
// the attribute, from the consumer's own receive. Another replica receives
// the message at 0s and lets it go at 10s, when the consumer receives it.
func TestConsumerMaxHoldFromFirstReceive(t *testing.T) {
	for _, tc := range []struct {
		name      string
		strip     bool
		releaseAt time.Duration
	}{
		{"first receive from SQS", false, 120 * time.Second},
		{"no attribute: the local receive", true, 130 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newSimQueues(t)
			start := q.clock.Now()
			rec := &recorder{outcomes: map[string]int{}}
			var client SQSAPI = q.client
			if tc.strip {
				client = stripAttributes{q.client}
			}
			c, err := NewConsumer(client, ConsumerOptions{
				QueueURL: q.queue, WaitTime: time.Millisecond, Visibility: holdVisibility, MaxHold: holdMax,
				Enqueue: rec.enqueue, Observe: rec.observe, Now: q.clock.Now,
			})
			if err != nil {
				t.Fatal(err)
			}
			send(t, q.client, q.queue, sample(t, "cloudtrail-register-task-definition.json"))
			if out, err := q.client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.queue), VisibilityTimeout: 10}); err != nil || len(out.Messages) != 1 {
				t.Fatalf("the other replica's receive: %v", err)
			}
			q.clock.Advance(10 * time.Second)
			for q.clock.Now().Sub(start) <= tc.releaseAt {
				if _, o := rec.snapshot(); o[OutcomeReleased] != 0 {
					t.Fatalf("released before %v: at the step of %v", tc.releaseAt, q.clock.Now().Sub(start)-holdStep)
				}
				q.step(t, c)
			}
			if _, o := rec.snapshot(); o[OutcomeReleased] != 1 {
				t.Errorf("outcomes %v after the step of %v, want the release", o, tc.releaseAt)
			}
		})
	}
}

// stripAttributes drops the system attributes of received messages.
type stripAttributes struct{ *sqs.Client }

func (s stripAttributes) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out, err := s.Client.ReceiveMessage(ctx, in, optFns...)
	if out != nil {
		for i := range out.Messages {
			out.Messages[i].Attributes = nil
		}
	}
	return out, err
}
