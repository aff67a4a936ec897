package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Fence is the proof of a family's lease that each write batch is checked
// against: the shard of the family and the fencing token this replica got
// when it took the shard (internal/lease's Fence, which the wiring converts).
type Fence struct {
	Shard string
	Token int64
}

// Leases is what the controller needs of the shard leases (internal/lease)
// when several replicas share an account: only the holder of a family's
// lease reconciles it. The controller does no I/O of its own for them.
type Leases interface {
	// ShardFor names the shard of a family.
	ShardFor(family string) string
	// Owns says, without I/O, whether this replica holds the family's
	// lease now, with the fence to check before writing.
	Owns(family string) (Fence, bool)
	// Check verifies a fence against the lease table before a write
	// batch; an error means the batch must not be written. An error that
	// matches ErrLeaseLost says the lease is not this replica's any more.
	Check(ctx context.Context, f Fence) error
}

// ErrLeaseLost is what a Leases.Check error matches (errors.Is) when the
// lease is another replica's now or has run out; the wiring maps
// internal/lease's ErrLeaseLost to it. A reconcile that fails Check with it
// makes no write and ends without a retry: the family is the owner's.
var ErrLeaseLost = errors.New("lease lost")

// errNotOwned is the error of a reconcile of a family whose lease this
// replica does not hold when the reconcile starts.
var errNotOwned = fmt.Errorf("%w: the family's shard is not held by this replica", ErrLeaseLost)

// Reasons of Options.OnNotOwned, as metric label values.
const (
	// NotOwnedQueued: a sweep or an event asked for a family this replica
	// does not own; it is not queued.
	NotOwnedQueued = "not_queued"
	// NotOwnedDequeued: the family was queued while owned and its lease
	// was gone when a worker took it.
	NotOwnedDequeued = "dequeued"
	// NotOwnedLost: Check failed before a write batch; nothing of the
	// batch was written.
	NotOwnedLost = "lease_lost"
)

// NotOwnedReasons lists the reasons, for pre-creating metric label values.
var NotOwnedReasons = []string{NotOwnedQueued, NotOwnedDequeued, NotOwnedLost}

// leaseState is the controller's memory of the shards it holds, to tell
// gains and losses apart between two calls of LeasesChanged, and of the
// families it heard of but left to another replica, to reconcile them when
// their shard comes its way.
type leaseState struct {
	mu      sync.Mutex
	held    map[string]int64    // shard -> token, as LeasesChanged last said
	skipped map[string]struct{} // families not queued for want of their lease
	said    map[string]bool     // shard -> the last state logged (held or not)
}

// leaseAdmits says whether a family may be queued: always without leases;
// with them, only when this replica owns it. A family left out is counted
// and remembered, and its shard's state is logged once per change.
func (c *Controller) leaseAdmits(family string) bool {
	if c.o.Leases == nil {
		return true
	}
	if _, ok := c.o.Leases.Owns(family); ok {
		c.lease.mu.Lock()
		delete(c.lease.skipped, family)
		c.lease.mu.Unlock()
		return true
	}
	c.lease.mu.Lock()
	if c.lease.skipped == nil {
		c.lease.skipped = map[string]struct{}{}
	}
	c.lease.skipped[family] = struct{}{}
	c.lease.mu.Unlock()
	c.notOwned(context.Background(), family, NotOwnedQueued)
	return false
}

// leaseFence returns the fence of a family at the start of its reconcile,
// or errNotOwned. Without leases, the zero Fence and no error.
func (c *Controller) leaseFence(family string) (Fence, error) {
	if c.o.Leases == nil {
		return Fence{}, nil
	}
	f, ok := c.o.Leases.Owns(family)
	if !ok {
		return Fence{}, errNotOwned
	}
	c.st.sayOnce(family, "lease", "owned") // the next loss is logged again
	return f, nil
}

// checkLease runs before each write batch of a reconcile: the fence the
// reconcile started with must still be this replica's, by the table. A
// failure aborts the batch before anything is written.
func (c *Controller) checkLease(ctx context.Context, p *plan) error {
	if c.o.Leases == nil || c.o.DryRun {
		return nil
	}
	if err := c.o.Leases.Check(ctx, p.fence); err != nil {
		if errors.Is(err, ErrLeaseLost) {
			return fmt.Errorf("family %s: no write: %w", p.family, err)
		}
		return fmt.Errorf("family %s: no write: the lease could not be checked: %w", p.family, err)
	}
	return nil
}

// leaseSkipped handles, in processNext, a reconcile that ended for want of
// the family's lease: no retry (the family is the owner's; it comes back
// here if this replica takes its shard), the hook is told. False for any
// other outcome.
func (c *Controller) leaseSkipped(ctx context.Context, family string, err error) bool {
	if c.o.Leases == nil || !errors.Is(err, ErrLeaseLost) {
		return false
	}
	c.queue.Forget(family)
	reason := NotOwnedLost
	if errors.Is(err, errNotOwned) {
		reason = NotOwnedDequeued
	} else {
		c.log.Warn("lease lost before a write: the batch was not written; the family is left to the replica that holds it", "family", family, "err", err)
	}
	c.lease.mu.Lock()
	if c.lease.skipped == nil {
		c.lease.skipped = map[string]struct{}{}
	}
	c.lease.skipped[family] = struct{}{}
	c.lease.mu.Unlock()
	c.notOwned(ctx, family, reason)
	return true
}

// notOwned logs the shard's state once per change and tells the hook.
func (c *Controller) notOwned(ctx context.Context, family, reason string) {
	shard := c.o.Leases.ShardFor(family)
	c.lease.mu.Lock()
	if c.lease.said == nil {
		c.lease.said = map[string]bool{}
	}
	was, known := c.lease.said[shard]
	c.lease.said[shard] = false
	c.lease.mu.Unlock()
	if !known || was {
		c.log.Info("shard not held by this replica: its families are left to the replica that holds it", "shard", shard, "family", family)
	}
	if c.st.sayOnce(family, "lease", "not_owned") {
		c.log.Debug("family not reconciled: its lease is another replica's", "family", family, "shard", shard, "reason", reason)
	}
	if c.o.OnNotOwned != nil {
		c.o.OnNotOwned(ctx, family, reason)
	}
}

// LeasesChanged tells the controller which shards this replica holds now
// (after each lease round). The families of the shards it gained (new, or
// taken again with another token) are queued: those its services index,
// its past reconciles and the events and sweeps it left to others know of.
// What happened to them while another replica (or none) held the shard is
// read from AWS by those reconciles, as after a restart.
func (c *Controller) LeasesChanged(held []Fence) {
	if c.o.Leases == nil {
		return
	}
	now := make(map[string]int64, len(held))
	for _, f := range held {
		now[f.Shard] = f.Token
	}
	c.lease.mu.Lock()
	gained := map[string]bool{}
	for sh, tok := range now {
		if old, ok := c.lease.held[sh]; !ok || old != tok {
			gained[sh] = true
		}
	}
	var lost []string
	for sh := range c.lease.held {
		if _, ok := now[sh]; !ok {
			lost = append(lost, sh)
		}
	}
	c.lease.held = now
	if c.lease.said == nil {
		c.lease.said = map[string]bool{}
	}
	for sh := range gained {
		c.lease.said[sh] = true
	}
	candidates := slices.Collect(maps.Keys(c.lease.skipped))
	c.lease.mu.Unlock()
	if len(gained) == 0 && len(lost) == 0 {
		return
	}
	slices.Sort(lost)
	g := slices.Sorted(maps.Keys(gained))
	if len(gained) == 0 {
		c.log.Info("leases changed", "held", len(now), "lost", lost)
		return
	}
	candidates = append(candidates, c.st.familyNames()...)
	slices.Sort(candidates)
	candidates = slices.Compact(candidates)
	var queued []string
	for _, family := range candidates {
		if gained[c.o.Leases.ShardFor(family)] && c.leaseAdmits(family) {
			c.queue.Add(family)
			queued = append(queued, family)
		}
	}
	c.log.Info("leases changed: reconciling the families of the shards gained", "held", len(now), "gained", g, "lost", lost,
		"families", len(queued), "sample", sample(queued))
}

// familyNames lists the families the state knows: those of indexed
// services and those reconciled.
func (s *state) familyNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.byFamily)+len(s.families))
	for f := range s.byFamily {
		out = append(out, f)
	}
	for f := range s.families {
		if _, ok := s.byFamily[f]; !ok {
			out = append(out, f)
		}
	}
	return out
}
