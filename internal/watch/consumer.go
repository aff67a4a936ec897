package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSAPI is the part of the SQS client the consumer uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// Outcomes of a message, as metric label values.
const (
	OutcomeQueued      = "queued"      // a reconcile of its family was asked for
	OutcomeUnparseable = "unparseable" // deleted at once
	OutcomeIgnored     = "ignored"     // deleted at once
	OutcomeForeign     = "foreign"     // from another account or Region: deleted at once
	OutcomeUnresolved  = "unresolved"  // its service no longer exists: deleted
	OutcomeRetry       = "retry"       // resolving it failed: left for redelivery
	OutcomeReleased    = "released"    // held past MaxHold: given back to SQS, which redrives it to the DLQ in the end
	OutcomeGivenBack   = "given_back"  // its family is another replica's (leases): made visible again soon, for the owner
	OutcomeNotOwned    = "not_owned"   // its family is another replica's and it was given back GiveBackReceives times: deleted
)

// Outcomes lists every outcome, for pre-creating metric label values.
var Outcomes = []string{OutcomeQueued, OutcomeUnparseable, OutcomeIgnored, OutcomeForeign, OutcomeUnresolved, OutcomeRetry, OutcomeReleased,
	OutcomeGivenBack, OutcomeNotOwned}

// Bounds of ConsumerOptions.MaxHold.
const (
	// DefaultMaxHold is MaxHold when unset (or 3 × Visibility, if longer).
	DefaultMaxHold = 15 * time.Minute
	// DefaultGiveBackReceives and DefaultGiveBackDelay are
	// ConsumerOptions.GiveBackReceives and GiveBackDelay when unset.
	DefaultGiveBackReceives = 5
	DefaultGiveBackDelay    = 2 * time.Second
	// MaxMaxHold is SQS's own bound: a message's visibility cannot be
	// extended past 12 hours from its receive.
	MaxMaxHold = 12 * time.Hour
)

// MinMaxHold is the shortest MaxHold allowed with a visibility timeout:
// 3 × visibility (a reconcile gets several visibility timeouts, and the
// message several extensions), but no more than MaxMaxHold.
func MinMaxHold(visibility time.Duration) time.Duration {
	return min(3*visibility, MaxMaxHold)
}

// ErrNoFamily is returned by a Resolver for a service that does not exist
// (any more): its message is deleted.
var ErrNoFamily = errors.New("service has no task definition family")

// Resolver maps a service event that does not name its task definition to
// the family the service runs (the controller's service cache, else
// DescribeServices).
type Resolver func(ctx context.Context, ev Event) (family string, err error)

// ConsumerOptions configures a Consumer.
type ConsumerOptions struct {
	QueueURL string
	// Account and Region are the reconciler's own: the account of its
	// credentials (OwnAccount) and the Region of its clients. An event of
	// another account or Region, in its envelope or in an ARN it names, is
	// deleted without a reconcile and counted foreign. Empty: not checked.
	Account string
	Region  string
	// WaitTime is the long-poll wait (0-20s, default 20s).
	WaitTime time.Duration
	// Visibility is the visibility timeout the consumer keeps on messages it
	// holds; it extends them every Visibility/3 (default 60s).
	Visibility time.Duration
	// MaxMessages per receive (1-10, default 10).
	MaxMessages int32
	// MaxHold bounds how long a message is held (its visibility extended)
	// while its family's reconciles fail, measured from the message's first
	// receive (SQS's ApproximateFirstReceiveTimestamp). Past it the consumer
	// stops extending the message and forgets its receipt: SQS shows it again
	// once its visibility timeout ends, counts a receive each time it is
	// received again, and moves it to the dead-letter queue after the
	// queue's maxReceiveCount. A message received again past MaxHold is held
	// without extension (a Done can still delete it) and then let go.
	// Between MinMaxHold(Visibility) and MaxMaxHold; default DefaultMaxHold,
	// or MinMaxHold(Visibility) if longer.
	MaxHold time.Duration
	// Enqueue asks for a reconcile of a family. It must not block for long.
	Enqueue func(family string)
	// Resolve maps service events without a family; nil drops them as
	// unresolved.
	Resolve Resolver
	// Observe is told the kind ("" when unknown) and outcome of each message.
	Observe func(kind Kind, outcome string)
	// Owns, when set (leases: several replicas share the queue), says
	// whether this replica holds the lease of a family. A message of a
	// family it does not own is not held: while SQS's receive count of it
	// is at most GiveBackReceives it is given back (hidden for
	// GiveBackDelay × its receive count, then visible to every replica, the
	// owner among them); received more often than that, it is deleted: the
	// owner reconciles the family at its sweeps, and at once when it takes
	// the family's shard. Either way Enqueue is told the family (the
	// controller does not queue it, and remembers it for when its shard
	// comes to this replica). So a valid event is never dead-lettered for
	// reaching the wrong replica, as long as GiveBackReceives is below the
	// queue's maxReceiveCount.
	Owns func(family string) bool
	// GiveBackReceives bounds the receives of a message of another
	// replica's family that are given back (default 5).
	GiveBackReceives int
	// GiveBackDelay is the visibility timeout of a message given back, per
	// receive so far: 1 × at the first receive, 2 × at the second... so
	// that a message of a family no replica owns yet (during a take-over)
	// is not received again and again in a tight loop (default 2s).
	GiveBackDelay time.Duration
	// Lag is told, for each event handled, the time from the event to the
	// success of the reconcile that covered it.
	Lag    func(kind Kind, lag time.Duration)
	Logger *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// After is the timer of the visibility extender and of the backoff
	// after a failed receive, on the clock of Now: the channel receives
	// once d has passed. Default time.After; tests pass a fake clock's.
	After func(d time.Duration) <-chan time.Time
}

// held is a message waiting for a reconcile of its family.
type held struct {
	receipt   string
	messageID string
	arrived   time.Time // this receive, on the consumer's clock
	first     time.Time // the message's first receive (SQS's, else arrived)
	receives  int       // SQS's ApproximateReceiveCount; 0 when not given
	hidden    time.Time // when SQS shows it again, as last set by the consumer
	kind      Kind
	evTime    time.Time
}

// Consumer reads the queue and turns messages into family keys. Delivery is
// at least once: a message is deleted only after a reconcile of its family
// that started after the message arrived has succeeded (Done); until then
// its visibility is extended, for at most MaxHold from its first receive.
// A message whose family is not reconciled by then goes back to SQS, which
// moves it to the dead-letter queue after the queue's maxReceiveCount. A
// process killed at any point loses nothing.
type Consumer struct {
	client SQSAPI
	o      ConsumerOptions
	log    *slog.Logger

	mu   sync.Mutex
	held map[string][]held // by family
}

// NewConsumer checks the options and returns a consumer.
func NewConsumer(client SQSAPI, o ConsumerOptions) (*Consumer, error) {
	if o.QueueURL == "" {
		return nil, errors.New("watch: no queue URL")
	}
	if o.Enqueue == nil {
		return nil, errors.New("watch: no Enqueue function")
	}
	if o.WaitTime == 0 {
		o.WaitTime = 20 * time.Second
	}
	if o.WaitTime < 0 || o.WaitTime > 20*time.Second {
		return nil, fmt.Errorf("watch: wait time %v: must be between 0 and 20s", o.WaitTime)
	}
	if o.Visibility == 0 {
		o.Visibility = 60 * time.Second
	}
	if o.Visibility < 3*time.Second || o.Visibility > 12*time.Hour {
		return nil, fmt.Errorf("watch: visibility %v: must be between 3s and 12h", o.Visibility)
	}
	if o.Account != "" && !isAccountID(o.Account) {
		return nil, fmt.Errorf("watch: account %q: must be 12 digits", o.Account)
	}
	if o.MaxMessages == 0 {
		o.MaxMessages = 10
	}
	if o.MaxMessages < 1 || o.MaxMessages > 10 {
		return nil, fmt.Errorf("watch: max messages %d: must be between 1 and 10", o.MaxMessages)
	}
	if o.MaxHold == 0 {
		o.MaxHold = max(DefaultMaxHold, MinMaxHold(o.Visibility))
	}
	if lo := MinMaxHold(o.Visibility); o.MaxHold < lo || o.MaxHold > MaxMaxHold {
		return nil, fmt.Errorf("watch: max hold %v: must be between %v (3 × visibility, at most 12h) and 12h", o.MaxHold, lo)
	}
	if o.GiveBackReceives == 0 {
		o.GiveBackReceives = DefaultGiveBackReceives
	}
	if o.GiveBackDelay == 0 {
		o.GiveBackDelay = DefaultGiveBackDelay
	}
	if o.GiveBackReceives < 1 || o.GiveBackDelay < time.Second || o.GiveBackDelay%time.Second != 0 {
		return nil, fmt.Errorf("watch: give back %d receives, delay %v: want at least 1 receive and whole seconds from 1s", o.GiveBackReceives, o.GiveBackDelay)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Consumer{client: client, o: o, log: log, held: map[string][]held{}}, nil
}

// Run receives until ctx ends, extending the visibility of held messages
// meanwhile. On return, the messages still held are made visible again at
// once, so that another replica (or the next start) takes them.
func (c *Consumer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.extendLoop(ctx)
	}()
	defer func() {
		wg.Wait()
		release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		c.releaseAll(release)
	}()
	backoff := time.Second
	for ctx.Err() == nil {
		if err := c.receiveOnce(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			c.log.Warn("receive from queue failed; retrying", "queue", c.o.QueueURL, "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
			case <-c.o.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = time.Second
	}
	return nil
}

// receiveOnce long-polls once and handles what arrives.
func (c *Consumer) receiveOnce(ctx context.Context) error {
	out, err := c.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(c.o.QueueURL),
		MaxNumberOfMessages: c.o.MaxMessages,
		WaitTimeSeconds:     int32(c.o.WaitTime / time.Second),
		VisibilityTimeout:   int32(c.o.Visibility / time.Second),
		// MaxHold counts from the first receive; the count is logged.
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{
			sqstypes.MessageSystemAttributeNameApproximateFirstReceiveTimestamp,
			sqstypes.MessageSystemAttributeNameApproximateReceiveCount,
		},
	})
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	var drop []sqstypes.Message
	back := map[int32][]string{} // visibility in seconds -> receipts given back
	for _, m := range out.Messages {
		switch keep, secs := c.handle(ctx, m); {
		case secs > 0:
			back[secs] = append(back[secs], aws.ToString(m.ReceiptHandle))
		case !keep:
			drop = append(drop, m)
		}
	}
	for secs, receipts := range back {
		c.setVisibility(ctx, receipts, secs)
	}
	if len(drop) > 0 {
		entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(drop))
		for i, m := range drop {
			entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
		}
		c.deleteEntries(ctx, entries)
	}
	return nil
}

// handle decides what becomes of one message: keep is false when the
// message is to be deleted at once; giveBack > 0 when it is to be made
// visible again in that many seconds (another replica's family).
func (c *Consumer) handle(ctx context.Context, m sqstypes.Message) (keep bool, giveBack int32) {
	arrived := c.o.Now()
	ev, err := Parse([]byte(aws.ToString(m.Body)))
	switch {
	case errors.Is(err, ErrUnparseable):
		c.observe("", OutcomeUnparseable)
		c.log.Warn("deleting a message that is not an EventBridge event", "message_id", aws.ToString(m.MessageId), "reason", err)
		return false, 0
	case errors.Is(err, ErrIgnored):
		c.observe("", OutcomeIgnored)
		c.log.Debug("deleting an event the reconciler does not act on", "message_id", aws.ToString(m.MessageId), "reason", err)
		return false, 0
	case err != nil:
		c.observe("", OutcomeUnparseable)
		return false, 0
	}
	if why := ev.Foreign(c.o.Account, c.o.Region); why != "" {
		c.observe(ev.Kind, OutcomeForeign)
		// Never the body; the envelope's fields, bounded.
		c.log.Warn("deleting an event from another account or Region", "event_id", bounded(ev.ID),
			"message_id", aws.ToString(m.MessageId), "kind", ev.Kind, "account", bounded(ev.Account), "region", bounded(ev.Region),
			"mismatch", why, "own_account", c.o.Account, "own_region", c.o.Region)
		return false, 0
	}
	family := ev.Family
	if family == "" {
		if c.o.Resolve == nil {
			c.observe(ev.Kind, OutcomeUnresolved)
			return false, 0
		}
		family, err = c.o.Resolve(ctx, ev)
		switch {
		case errors.Is(err, ErrNoFamily):
			c.observe(ev.Kind, OutcomeUnresolved)
			c.log.Info("deleting an event of a service that no longer exists", "event_id", ev.ID, "service", ev.Service)
			return false, 0
		case err != nil:
			// Leave it: it becomes visible again and is retried.
			c.observe(ev.Kind, OutcomeRetry)
			c.log.Warn("cannot map a service event to its family; it will be redelivered", "event_id", ev.ID, "service", ev.Service, "err", err)
			return true, 0
		}
	}
	if c.o.Owns != nil && !c.o.Owns(family) {
		return c.notOwned(m, ev, family)
	}
	h := held{
		receipt: aws.ToString(m.ReceiptHandle), messageID: aws.ToString(m.MessageId),
		arrived: arrived, first: arrived, hidden: arrived.Add(c.o.Visibility),
		kind: ev.Kind, evTime: ev.Time,
	}
	if ms, err := strconv.ParseInt(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateFirstReceiveTimestamp)], 10, 64); err == nil {
		// Not after this receive, whatever the clocks' skew.
		if t := time.UnixMilli(ms); t.Before(arrived) {
			h.first = t
		}
	}
	h.receives, _ = strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	c.mu.Lock()
	c.held[family] = append(c.held[family], h)
	c.mu.Unlock()
	c.observe(ev.Kind, OutcomeQueued)
	c.log.Debug("event queued a reconcile", "family", family, "kind", ev.Kind, "event_id", ev.ID)
	if ev.Kind == KindUpdateService && ev.Caller != "" && !ev.OwnCall {
		// Who deploys what: the first thing to know of a service that
		// something keeps moving back to its source (state contested).
		c.log.Info("service updated by another principal", "family", family, "service", bounded(ev.Service), "by", ev.Caller, "event_id", ev.ID)
	}
	c.o.Enqueue(family)
	return true, 0
}

// notOwned is handle's answer for a message of a family that another
// replica owns (ConsumerOptions.Owns): given back while its receive count
// is at most GiveBackReceives, deleted after.
func (c *Consumer) notOwned(m sqstypes.Message, ev Event, family string) (keep bool, giveBack int32) {
	receives, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	receives = max(receives, 1)
	c.o.Enqueue(family) // not queued; remembered for when its shard comes here
	if receives > c.o.GiveBackReceives {
		c.observe(ev.Kind, OutcomeNotOwned)
		c.log.Info("deleting an event of another replica's family, given back enough: its owner covers the family by its sweeps",
			"family", family, "kind", ev.Kind, "event_id", ev.ID, "receive_count", receives)
		return false, 0
	}
	c.observe(ev.Kind, OutcomeGivenBack)
	c.log.Debug("giving an event of another replica's family back to the queue", "family", family, "kind", ev.Kind, "event_id", ev.ID, "receive_count", receives)
	delay := min(time.Duration(receives)*c.o.GiveBackDelay, 12*time.Hour)
	return false, int32(delay / time.Second)
}

// Done tells the consumer that a reconcile of family which started at
// started has succeeded: the messages of that family that arrived before it
// started are deleted.
func (c *Consumer) Done(ctx context.Context, family string, started time.Time) {
	c.mu.Lock()
	var done []held
	keep := c.held[family][:0]
	for _, h := range c.held[family] {
		if h.arrived.Before(started) {
			done = append(done, h)
		} else {
			keep = append(keep, h)
		}
	}
	if len(keep) == 0 {
		delete(c.held, family)
	} else {
		c.held[family] = keep
	}
	c.mu.Unlock()
	if len(done) == 0 {
		return
	}
	now := c.o.Now()
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(done))
	for i, h := range done {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h.receipt)}
		if c.o.Lag != nil && !h.evTime.IsZero() {
			c.o.Lag(h.kind, now.Sub(h.evTime))
		}
	}
	c.deleteEntries(ctx, entries)
}

// GiveBack returns the held messages of a family to the queue, visible
// again after GiveBackDelay, without deleting them: the family turned out
// to be another replica's (its lease went while they waited), and the
// owner is to receive them. Their receive count is not reset: one that
// comes back here past GiveBackReceives is deleted (ConsumerOptions.Owns).
func (c *Consumer) GiveBack(ctx context.Context, family string) {
	c.mu.Lock()
	hs := c.held[family]
	delete(c.held, family)
	c.mu.Unlock()
	if len(hs) == 0 {
		return
	}
	receipts := make([]string, len(hs))
	for i, h := range hs {
		receipts[i] = h.receipt
		c.observe(h.kind, OutcomeGivenBack)
	}
	c.log.Info("giving the messages of a family back to the queue: its lease is another replica's now", "family", family, "count", len(hs))
	c.setVisibility(ctx, receipts, int32(c.o.GiveBackDelay/time.Second))
}

// Held returns the number of messages waiting for a reconcile.
func (c *Consumer) Held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, hs := range c.held {
		n += len(hs)
	}
	return n
}

// deleteEntries deletes in batches of 10. A failed delete is only logged:
// the message comes back and its reconcile is a no-op.
func (c *Consumer) deleteEntries(ctx context.Context, entries []sqstypes.DeleteMessageBatchRequestEntry) {
	for start := 0; start < len(entries); start += 10 {
		batch := entries[start:min(start+10, len(entries))]
		out, err := c.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(c.o.QueueURL), Entries: batch})
		if err != nil {
			c.log.Warn("delete messages failed; they will be redelivered", "count", len(batch), "err", err)
			continue
		}
		for _, f := range out.Failed {
			c.log.Warn("delete message failed; it will be redelivered", "code", aws.ToString(f.Code))
		}
	}
}

// extendLoop keeps held messages invisible while their reconcile waits: a
// tend every Visibility/3, counted from the end of the previous one, on the
// clock of After.
func (c *Consumer) extendLoop(ctx context.Context) {
	wait := c.o.Visibility / 3
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.o.After(wait):
			start := c.o.Now()
			c.tend(ctx)
			// Tends start every Visibility/3: a tend that took long (many
			// held messages, throttled and retried calls) does not push
			// the next one later, or the last messages of a slow tend
			// would go without an extension for longer than a visibility
			// timeout and come back while held.
			wait = max(0, c.o.Visibility/3-c.o.Now().Sub(start))
		}
	}
}

// tend runs every Visibility/3: it extends the visibility of the held
// messages within MaxHold of their first receive, and lets the others go.
// A message past MaxHold is not extended; it is forgotten (released) at the
// first tend that finds at most 2/3 of a visibility timeout left of it,
// the point where it would otherwise have been extended: so its receipt is
// dropped before SQS can show the message again and hand out another one,
// and a Done never deletes with a stale receipt. Until then a Done still
// deletes it.
func (c *Consumer) tend(ctx context.Context) {
	now := c.o.Now()
	type release struct {
		family string
		h      held
	}
	var extend []string
	var released []release
	c.mu.Lock()
	for family, hs := range c.held {
		keep := hs[:0]
		for _, h := range hs {
			switch {
			case now.Sub(h.first) < c.o.MaxHold:
				h.hidden = now.Add(c.o.Visibility)
				extend = append(extend, h.receipt)
				keep = append(keep, h)
			case h.hidden.Sub(now) > c.o.Visibility*2/3:
				keep = append(keep, h)
			default:
				released = append(released, release{family, h})
			}
		}
		clear(hs[len(keep):])
		if len(keep) == 0 {
			delete(c.held, family)
		} else {
			c.held[family] = keep
		}
	}
	c.mu.Unlock()
	c.setVisibility(ctx, extend, int32(c.o.Visibility/time.Second))
	for _, r := range released {
		c.observe(r.h.kind, OutcomeReleased)
		// Never the body: it may hold data.
		c.log.Warn("giving a message back to the queue: its family has not been reconciled within the max hold; SQS moves it to the dead-letter queue after the queue's maxReceiveCount",
			"family", r.family, "kind", r.h.kind, "message_id", r.h.messageID, "receive_count", r.h.receives,
			"first_receive", r.h.first, "max_hold", c.o.MaxHold)
	}
}

// releaseAll makes every held message visible again (shutdown).
func (c *Consumer) releaseAll(ctx context.Context) {
	n := c.Held()
	if n == 0 {
		return
	}
	c.log.Info("returning unhandled messages to the queue", "count", n)
	c.mu.Lock()
	var receipts []string
	for _, hs := range c.held {
		for _, h := range hs {
			receipts = append(receipts, h.receipt)
		}
	}
	c.held = map[string][]held{}
	c.mu.Unlock()
	c.setVisibility(ctx, receipts, 0)
}

// visibilityCalls bounds the ChangeMessageVisibilityBatch calls of one
// setVisibility in flight at once.
const visibilityCalls = 8

// setVisibility sets the visibility timeout of the messages of receipts, in
// batches of 10, up to visibilityCalls batches at once: one call after the
// other, a consumer holding hundreds of messages (a backlog) under
// throttling, whose calls the SDK retries with backoff, extended its last
// batches seconds late, past their visibility timeout. Entries SQS did not
// change are logged (with their codes: MessageNotInflight is a message that
// came back before its extension), never their receipts.
func (c *Consumer) setVisibility(ctx context.Context, receipts []string, seconds int32) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, visibilityCalls)
	for start := 0; start < len(receipts); start += 10 {
		batch := receipts[start:min(start+10, len(receipts))]
		entries := make([]sqstypes.ChangeMessageVisibilityBatchRequestEntry, len(batch))
		for i, r := range batch {
			entries[i] = sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r), VisibilityTimeout: seconds}
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			out, err := c.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(c.o.QueueURL), Entries: entries})
			if err != nil {
				c.log.Warn("change message visibility failed", "count", len(entries), "err", err)
				return
			}
			if len(out.Failed) > 0 {
				codes := make([]string, len(out.Failed))
				for i, f := range out.Failed {
					codes[i] = aws.ToString(f.Code)
				}
				c.log.Warn("change message visibility failed for some messages", "count", len(out.Failed), "of", len(entries), "codes", strings.Join(codes, ","))
			}
		}()
	}
	wg.Wait()
}

func (c *Consumer) observe(k Kind, outcome string) {
	if c.o.Observe != nil {
		c.o.Observe(k, outcome)
	}
}
