package watch

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// With leases, several replicas share one queue (awssim's, maxReceiveCount
// 3, on the fake clock of the consumers). These tests drive them step by
// step, as maxhold_test.go does.

const giveBackDelay = 2 * time.Second

// leasedConsumer is a consumer of q.queue whose replica owns the families
// owns lists, giving back 2 receives.
func (q *simQueues) leasedConsumer(t *testing.T, rec *recorder, owns ...string) *Consumer {
	t.Helper()
	c, err := NewConsumer(countingSQS{q.client, &q.deleteCalls}, ConsumerOptions{
		QueueURL: q.queue, WaitTime: time.Millisecond, Visibility: holdVisibility, MaxHold: holdMax,
		Enqueue: rec.enqueue, Observe: rec.observe,
		Owns:             func(family string) bool { return slices.Contains(owns, family) },
		GiveBackReceives: holdReceives - 1, GiveBackDelay: giveBackDelay,
		Logger: slog.New(slog.DiscardHandler),
		Now:    q.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func receive(t *testing.T, c *Consumer) {
	t.Helper()
	if err := c.receiveOnce(context.Background()); err != nil {
		t.Fatalf("receive: %v", err)
	}
}

// A replica that receives an event of a family it does not own gives it
// back instead of holding or deleting it: it is hidden for the give-back
// delay only, then the owner receives it, holds it and deletes it once its
// reconcile is done. The non-owner was told the family (the controller
// remembers it for when the shard comes its way), and nothing reaches the
// dead-letter queue.
func TestConsumerGivesBackAnotherReplicasEvent(t *testing.T) {
	q := newSimQueues(t)
	otherRec, ownerRec := &recorder{outcomes: map[string]int{}}, &recorder{outcomes: map[string]int{}}
	other := q.leasedConsumer(t, otherRec)
	owner := q.leasedConsumer(t, ownerRec, "web")
	send(t, q.client, q.queue, sample(t, "cloudtrail-register-task-definition.json"))

	receive(t, other)
	families, outcomes := otherRec.snapshot()
	if outcomes[OutcomeGivenBack] != 1 || other.Held() != 0 || !slices.Equal(families, []string{"web"}) {
		t.Fatalf("non-owner: outcomes %v, held %d, told %v; want given back once, nothing held, told web", outcomes, other.Held(), families)
	}
	if q.deleteCalls.Load() != 0 {
		t.Fatal("the non-owner deleted the event")
	}
	// Hidden for the delay (not the 30 s visibility timeout), then the
	// owner's.
	receive(t, owner)
	if owner.Held() != 0 {
		t.Fatal("the owner received the event before the give-back delay")
	}
	q.clock.Advance(giveBackDelay)
	receive(t, owner)
	if owner.Held() != 1 {
		t.Fatalf("the owner holds %d messages after the delay, want the event", owner.Held())
	}
	start := q.clock.Now()
	q.clock.Advance(time.Second)
	owner.Done(context.Background(), "web", start.Add(time.Second))
	if visible, inFlight := q.depth(t, q.queue); visible != "0" || inFlight != "0" {
		t.Errorf("queue: %s visible, %s in flight after the owner's Done, want empty", visible, inFlight)
	}
	if ms := q.fromDLQ(t); len(ms) != 0 {
		t.Errorf("%d messages in the DLQ", len(ms))
	}
}

// When no replica that receives an event owns its family (its shard is
// being taken over, or the owner never happens to receive it), the event
// is given back GiveBackReceives times, each time hidden longer, and then
// deleted by a non-owner: never dead-lettered (the queue's maxReceiveCount
// is 3, the give-backs 2). The owner covers the family by reconciling the
// families of the shards it takes, and by its sweeps.
func TestConsumerDeletesAnEventNoOwnerReceives(t *testing.T) {
	q := newSimQueues(t)
	rec := &recorder{outcomes: map[string]int{}}
	other := q.leasedConsumer(t, rec)
	send(t, q.client, q.queue, sample(t, "cloudtrail-register-task-definition.json"))

	for i := 1; i <= holdReceives-1; i++ {
		receive(t, other)
		if _, outcomes := rec.snapshot(); outcomes[OutcomeGivenBack] != i {
			t.Fatalf("receive %d: outcomes %v, want %d given back", i, outcomes, i)
		}
		// Hidden for i × the delay: not visible a second earlier.
		q.clock.Advance(time.Duration(i)*giveBackDelay - time.Second)
		receive(t, other)
		if _, outcomes := rec.snapshot(); outcomes[OutcomeGivenBack] != i || outcomes[OutcomeNotOwned] != 0 {
			t.Fatalf("receive %d: seen again before %v: %v", i, time.Duration(i)*giveBackDelay, outcomes)
		}
		q.clock.Advance(time.Second)
	}
	receive(t, other)
	if _, outcomes := rec.snapshot(); outcomes[OutcomeNotOwned] != 1 {
		t.Fatalf("outcomes %v, want the event deleted as not owned at receive %d", outcomes, holdReceives)
	}
	q.clock.Advance(time.Hour)
	if visible, inFlight := q.depth(t, q.queue); visible != "0" || inFlight != "0" {
		t.Errorf("queue: %s visible, %s in flight, want empty", visible, inFlight)
	}
	if ms := q.fromDLQ(t); len(ms) != 0 {
		t.Errorf("%d messages in the DLQ, want none", len(ms))
	}
}

// The messages a replica holds for a family whose lease it lost meanwhile
// go back to the queue (GiveBack), not deleted: the new owner receives them.
func TestConsumerGiveBackReturnsHeldMessages(t *testing.T) {
	q := newSimQueues(t)
	aRec, bRec := &recorder{outcomes: map[string]int{}}, &recorder{outcomes: map[string]int{}}
	a := q.leasedConsumer(t, aRec, "web")
	b := q.leasedConsumer(t, bRec, "web")
	send(t, q.client, q.queue, sample(t, "cloudtrail-register-task-definition.json"))
	receive(t, a)
	if a.Held() != 1 {
		t.Fatalf("a holds %d, want the event", a.Held())
	}
	a.GiveBack(context.Background(), "web")
	if a.Held() != 0 || q.deleteCalls.Load() != 0 {
		t.Fatalf("after GiveBack a holds %d, deletes %d; want 0 and 0", a.Held(), q.deleteCalls.Load())
	}
	q.clock.Advance(giveBackDelay)
	receive(t, b)
	if b.Held() != 1 {
		t.Fatalf("b holds %d after the give-back delay, want the event", b.Held())
	}
}
