package watch

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// gatedVisibility holds every ChangeMessageVisibilityBatch call until want
// calls are in flight at once (or a bound of wall time passes, which fails
// the test: a consumer that extends one batch after the other never gets
// there), then lets them all through to SQS.
type gatedVisibility struct {
	countingSQS
	want     int
	mu       sync.Mutex
	inFlight int
	most     int
	open     chan struct{}
	once     sync.Once
}

func (g *gatedVisibility) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	g.mu.Lock()
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	if g.inFlight >= g.want {
		g.once.Do(func() { close(g.open) })
	}
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-time.After(10 * time.Second):
	}
	defer func() { g.mu.Lock(); g.inFlight--; g.mu.Unlock() }()
	return g.Client.ChangeMessageVisibilityBatch(ctx, in, optFns...)
}

// A consumer holding a backlog extends its batches side by side: 80 held
// messages are 8 ChangeMessageVisibilityBatch calls, all in flight at once,
// and every message is extended (none left to come back while held). In
// the three-replica soak, one replica held about 170 messages and extended
// them one batch after the other; under throttling and retries its last
// batches were extended 14-17 s after their receive with a 10 s visibility
// timeout, and came back to another replica while held.
func TestTendExtendsBatchesSideBySide(t *testing.T) {
	q := newSimQueues(t)
	rec := &recorder{outcomes: map[string]int{}}
	gate := &gatedVisibility{countingSQS: countingSQS{q.client, &q.deleteCalls}, want: visibilityCalls, open: make(chan struct{})}
	c, err := NewConsumer(gate, ConsumerOptions{
		QueueURL: q.queue, WaitTime: time.Millisecond, Visibility: holdVisibility, MaxHold: holdMax,
		Enqueue: rec.enqueue, Observe: rec.observe, Logger: nil, Now: q.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	body := sample(t, "cloudtrail-register-task-definition.json")
	// 8 batches need 80 held messages. Send more: a receive whose response
	// the client fails to read (seen under -race: "use of closed network
	// connection" on a 200) is retried by the SDK, and its 10 messages stay
	// in flight with no holder, as after a lost response on AWS.
	const want, sent = 10 * visibilityCalls, 10*visibilityCalls + 40
	for range sent {
		send(t, q.client, q.queue, body)
	}
	for tries := 0; c.Held() < want; tries++ {
		if tries == sent {
			visible, inFlight := q.depth(t, q.queue)
			t.Fatalf("holding %d of %d messages after %d receives (queue: %s visible, %s in flight)", c.Held(), sent, tries, visible, inFlight)
		}
		if err := c.receiveOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	held := c.Held()
	batches := (held + 9) / 10
	q.clock.Advance(holdStep)
	c.tend(context.Background())
	if gate.most != visibilityCalls {
		t.Errorf("at most %d ChangeMessageVisibilityBatch calls in flight at once, want %d (%d batches of %d held messages side by side)", gate.most, visibilityCalls, batches, held)
	}
	// Past the receives' own visibility timeout every held message is still
	// hidden (each one was extended): visible are the sent ones not held.
	q.clock.Advance(holdVisibility - holdStep + time.Second)
	if visible, inFlight := q.depth(t, q.queue); visible != fmt.Sprint(sent-held) || inFlight != fmt.Sprint(held) {
		t.Errorf("after the receives' visibility timeout: %s visible, %s in flight; want %d (not held) and %d (held)", visible, inFlight, sent-held, held)
	}
}
