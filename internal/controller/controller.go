package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"

	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/patch"
	"github.com/ecs-sidecar/reconciler/internal/policy"
)

// Observer is told what the controller does, for metrics. Every method must
// be safe for concurrent use.
type Observer interface {
	Reconciled(result string, d time.Duration)
	TwinRegistered()
	ServiceUpdated()
	ServiceSkipped(reason string)
	RolloutFailed(code string)
	RolloutDone(outcome string)
	Refused(r *patch.Refusal)
	SweepDone(sweep string, d time.Duration, err error)
	// ForgedTwin counts revisions refused for carrying the twin markers
	// without the twin's content.
	ForgedTwin()
}

// Reconcile results, as metric label values.
const (
	ResultSuccess  = "success"
	ResultError    = "error"
	ResultTerminal = "terminal"
	ResultPanic    = "panic"
)

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) Reconciled(string, time.Duration)       {}
func (NopObserver) TwinRegistered()                        {}
func (NopObserver) ServiceUpdated()                        {}
func (NopObserver) ServiceSkipped(string)                  {}
func (NopObserver) RolloutFailed(string)                   {}
func (NopObserver) RolloutDone(string)                     {}
func (NopObserver) Refused(*patch.Refusal)                 {}
func (NopObserver) SweepDone(string, time.Duration, error) {}
func (NopObserver) ForgedTwin()                            {}

// Options configure a Controller.
type Options struct {
	ECS ECSAPI
	// TagPrefix of every tag and label (default "ecs-sidecar/").
	TagPrefix string
	// Rules are the policies, tried in order.
	Rules []policy.Rule
	// TagProfiles says which profiles a revision's profile tag may pick
	// (config tagProfiles); the zero value lets a tag pick any.
	TagProfiles policy.TagProfiles
	// Profile returns a profile, with its defaults, by name.
	Profile func(name string) (patch.Profile, bool)
	// DefaultProfile is used when neither a tag nor a rule names one.
	DefaultProfile string
	// Mode is enforce (default), audit (decide and log, write nothing) or
	// remove (return every service to its source).
	Mode string
	// DryRun makes every write a planned Action whatever the mode of the
	// global setting or of a rule says (reconciler plan).
	DryRun bool
	// DeregisterUnusedTwins deregisters the twins of deregistered sources
	// that no service runs (off by default).
	DeregisterUnusedTwins bool
	// RevertOnOptOut returns the services of opted-out families to the
	// source of the twin they run.
	RevertOnOptOut bool
	// Images reads image configs; nil means the task definitions must state
	// what the wrapper needs.
	Images ImageResolver
	// Workers reconcile different families in parallel (default 4).
	Workers int
	// ServiceSweep and FamilySweep are the sweep intervals (defaults 5m and
	// 30m); Jitter spreads them by up to that fraction.
	ServiceSweep, FamilySweep time.Duration
	Jitter                    float64
	// FamilySweepRate caps the family sweep's calls per second (default 5).
	FamilySweepRate float64
	// MaxInFlight and MaxInFlightPerCluster cap the rollouts of twins under
	// way at once (defaults 5 and 2); with Canary, the first service of a
	// family must complete before the others move.
	MaxInFlight, MaxInFlightPerCluster int
	Canary                             bool
	// RampStart, when set (1 <= RampStart <= MaxInFlight), makes MaxInFlight
	// a ceiling that is reached by steps: RampStart rollouts at first, one
	// place more for each rollout that completes (so the window doubles per
	// rollout time while they succeed), and back to RampStart at the first
	// failure (rolled back, failed, or no outcome by the deadline). 0: the
	// window is MaxInFlight from the start. The window lives in memory: a
	// restart starts small again, the cautious side.
	RampStart int
	// RolloutDeadline fails a rollout with no outcome by then (default
	// 30m): services without the circuit breaker never report FAILED.
	RolloutDeadline time.Duration
	// ContestedAfter, when > 0, gives a service up to another writer (IaC
	// that deploys the source revision again on every apply): once ECS's
	// service deployments show it moved from a twin straight back to that
	// twin's source ContestedAfter times within ContestedWindow (default
	// 24h), the service is left on its source (state contested) until its
	// source or the twin's spec changes. 0: the reconciler always insists.
	ContestedAfter  int
	ContestedWindow time.Duration
	// Tagging, when set, makes the family sweep list the opt-in tags of
	// every task definition with tag:GetResources (100 a page, on the
	// tagging API's quota) and the newest revision of every family with
	// one account-wide ListTaskDefinitions, instead of two ECS calls per
	// family. Denied (a role without tag:GetResources), the sweep falls
	// back to the per-family calls and says so once.
	Tagging TaggingAPI
	// OwnerTag is the key of a tag whose value names the tool that manages
	// a family's task definitions (terraform, pulumi), for the families
	// that CloudFormation's and Copilot's own tags do not name: shown in
	// logs, plan and the coverage metrics. "": none.
	OwnerTag string
	// RolloutPoll is how soon a family with a rollout under way, or a
	// deferred move, is looked at again (default 15s).
	RolloutPoll time.Duration
	// ReconcileTimeout bounds one reconcile (default 2m).
	ReconcileTimeout time.Duration
	// OnSuccess is called after a reconcile of family that started at
	// started has succeeded, or failed with a TerminalError (the SQS
	// consumer deletes what it covered).
	OnSuccess func(ctx context.Context, family string, started time.Time)
	// Leases, when set, makes this replica one of several that share the
	// account: a family is reconciled only by the holder of its lease, and
	// every write batch is checked against the lease first (lease.go).
	Leases Leases
	// OnNotOwned is told each family left alone for want of its lease,
	// with one of NotOwnedReasons (metrics; the SQS consumer gives the
	// family's messages back to the queue).
	OnNotOwned func(ctx context.Context, family, reason string)
	// OnAction is told every write, made or (audit mode) planned.
	OnAction func(Action)
	Observer Observer
	// QueueMetrics, when set, gets the workqueue's metrics (depth, latency,
	// retries), as client-go reports them.
	QueueMetrics workqueue.MetricsProvider
	Logger       *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// After is the sweeps' timer, on the clock of Now: the channel receives
	// once d has passed. Default time.After; tests pass a fake clock's.
	After func(d time.Duration) <-chan time.Time
}

// Controller runs reconciles from a rate-limited workqueue keyed by family:
// a family is never reconciled by two workers at once, and a family queued
// many times while waiting is reconciled once.
type Controller struct {
	o     Options
	ecs   ECSAPI
	log   *slog.Logger
	st    *state
	queue workqueue.TypedRateLimitingInterface[string]

	sweepOnce sync.Once
	// taggingDenied: tag:GetResources was refused once; the family sweep
	// makes its per-family calls from then on.
	taggingDenied atomic.Bool
	swept         chan struct{} // closed when the first service sweep is done
	// firstListing is the account-wide listing Run makes beside the first
	// service sweep (with Tagging), for the first family sweep to take.
	firstListing atomic.Pointer[accountListing]
	// describing shares a DescribeTaskDefinition between the callers that
	// want the same revision at once (revision).
	describing singleflight.Group
	// prefetch, set by Run, bounds the describes of the restart's prefetch
	// (prefetchRevisions) running at once; prefetchWG waits for them.
	prefetch   chan struct{}
	prefetchWG sync.WaitGroup
	lease      leaseState // with Options.Leases: shards held, families left to others
}

// New checks the options and returns a controller.
func New(o Options) (*Controller, error) {
	if o.ECS == nil {
		return nil, errors.New("controller: no ECS client")
	}
	if o.Profile == nil {
		return nil, errors.New("controller: no profile lookup")
	}
	if o.DefaultProfile == "" {
		o.DefaultProfile = patch.ProfileTypeLacework
	}
	if o.TagPrefix == "" {
		o.TagPrefix = patch.DefaultTagPrefix
	}
	if o.Mode == "" {
		o.Mode = policy.ModeEnforce
	}
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.ServiceSweep == 0 {
		o.ServiceSweep = 5 * time.Minute
	}
	if o.FamilySweep == 0 {
		o.FamilySweep = 30 * time.Minute
	}
	if o.FamilySweepRate == 0 {
		o.FamilySweepRate = 5
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 5
	}
	if o.MaxInFlightPerCluster == 0 {
		o.MaxInFlightPerCluster = 2
	}
	if o.RolloutDeadline == 0 {
		o.RolloutDeadline = 30 * time.Minute
	}
	if o.RolloutPoll == 0 {
		o.RolloutPoll = 15 * time.Second
	}
	if o.ContestedWindow == 0 {
		o.ContestedWindow = 24 * time.Hour
	}
	if o.ReconcileTimeout == 0 {
		o.ReconcileTimeout = 2 * time.Minute
	}
	if o.Observer == nil {
		o.Observer = NopObserver{}
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
	q := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "families", MetricsProvider: o.QueueMetrics},
	)
	return &Controller{o: o, ecs: o.ECS, log: log, st: newState(), queue: q, swept: make(chan struct{})}, nil
}

// Enqueue asks for a reconcile of a family, for something that happened
// outside (an event): the reconcile lists the family's revisions itself,
// whatever an account-wide listing kept of it.
func (c *Controller) Enqueue(family string) {
	if family != "" {
		c.st.dropListing(family)
	}
	c.enqueue(family)
}

// enqueue is Enqueue for the sweeps, which keep what they listed.
func (c *Controller) enqueue(family string) {
	if family != "" && c.leaseAdmits(family) {
		c.queue.Add(family)
	}
}

// Swept is closed once the first service sweep has completed.
func (c *Controller) Swept() <-chan struct{} { return c.swept }

// QueueLen is the number of families waiting.
func (c *Controller) QueueLen() int { return c.queue.Len() }

// Run runs the periodic sweeps and the workers until ctx ends. The workers
// and the family sweep wait for the first service sweep: a reconcile needs
// the index of services to know which services a family has. When ctx ends
// it stops taking work and lets in-flight reconciles finish.
//
// Run returns an error, after the same orderly stop, when the service sweep
// is denied access before it ever succeeded: the role lacks a permission,
// and no retry will grant it. Other failures are retried (the next sweep
// comes sooner) and logged.
func (c *Controller) Run(ctx context.Context) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	// The first service sweep describes the revisions it finds in the
	// background, as many at once as there are workers (prefetchRevisions).
	c.prefetch = make(chan struct{}, c.o.Workers)
	defer c.prefetchWG.Wait()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.every(ctx, c.o.ServiceSweep, "services", func(ctx context.Context) error {
			err := c.SweepServices(ctx)
			select {
			case <-c.swept:
			default:
				if cloud.IsAccessDenied(err) {
					stop(fmt.Errorf("service sweep: access denied before any sweep succeeded (check the task role): %w", err))
				}
			}
			return err
		})
	}()
	// With Tagging, the family sweep lists every ACTIVE revision of the
	// account anyway: its first listing is made now, beside the first
	// service sweep (another bucket), and the first reconciles take each
	// family's revisions from it (issue 21: no ListTaskDefinitions per
	// family at a restart). Reconciles wait for it; failed, they list
	// their families themselves.
	listed := make(chan struct{})
	if c.o.Tagging != nil && !c.taggingDenied.Load() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(listed)
			// Not paced at FamilySweepRate: it stands for the restart's
			// per-family listings, which only the client-side buckets
			// pace, and the reconciles wait for it.
			l, err := c.listAccount(ctx, rate.NewLimiter(rate.Inf, 1))
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("listing the account's revisions failed; the first reconciles list their families' revisions", "err", err)
				}
				return
			}
			c.keepListing(l)
			c.firstListing.Store(l)
		}()
	} else {
		close(listed)
	}
	ready := func() bool {
		for _, ch := range []chan struct{}{c.swept, listed} {
			select {
			case <-ctx.Done():
				return false
			case <-ch:
			}
		}
		return true
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if ready() {
			c.every(ctx, c.o.FamilySweep, "families", c.SweepFamilies)
		}
	}()
	for range c.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !ready() {
				return
			}
			for c.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	c.log.Info("stopping: letting in-flight reconciles finish")
	c.queue.ShutDownWithDrain()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// every runs sweep at once and then every interval (jittered) until ctx
// ends. After a failed sweep the next one comes sooner: 1 s, doubling with
// each failure in a row, at most 30 s and at most the interval.
func (c *Controller) every(ctx context.Context, interval time.Duration, name string, sweep func(context.Context) error) {
	failures := 0
	for {
		start := c.o.Now()
		err := sweep(ctx)
		d := c.o.Now().Sub(start)
		c.o.Observer.SweepDone(name, d, err)
		if err != nil && ctx.Err() == nil {
			c.log.Warn("sweep failed; the next one will retry", "sweep", name, "err", err, "duration", d.String())
		} else if err == nil {
			c.log.Debug("sweep done", "sweep", name, "duration", d.String())
		}
		wait := interval
		if c.o.Jitter > 0 {
			wait += time.Duration(rand.Float64() * c.o.Jitter * float64(interval))
		}
		if err != nil {
			failures++
			wait = min(wait, 30*time.Second, time.Second<<min(failures-1, 5))
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-c.o.After(wait):
		}
	}
}

// processNext takes one family off the queue and reconciles it; false when
// the queue is shut down.
func (c *Controller) processNext(ctx context.Context) bool {
	family, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(family)
	started := c.o.Now()
	// In-flight reconciles finish after ctx ends (drain); each is bounded.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.ReconcileTimeout)
	defer cancel()
	res, err := c.safeReconcile(rctx, family)
	d := c.o.Now().Sub(started)
	term, isTerm := IsTerminal(err)
	switch {
	case err == nil:
		c.queue.Forget(family)
		c.o.Observer.Reconciled(ResultSuccess, d)
		if c.o.OnSuccess != nil {
			c.o.OnSuccess(rctx, family, started)
		}
		if res.RequeueAfter > 0 {
			// The fallback that follows rollouts when no deployment event arrives.
			c.queue.AddAfter(family, res.RequeueAfter)
		}
	case c.leaseSkipped(rctx, family, err):
		// Another replica's family now: not retried here (lease.go).
	case isTerm:
		// No retry can fix it: acknowledge the family's messages (they
		// would only come back to the same answer) and wait for a change.
		c.queue.Forget(family)
		c.o.Observer.Reconciled(ResultTerminal, d)
		c.log.Error("reconcile failed for good; not retrying until the family changes", "family", family, "reason", term.Reason, "err", err)
		if c.o.OnSuccess != nil {
			c.o.OnSuccess(rctx, family, started)
		}
	case errors.Is(err, errPanic):
		c.o.Observer.Reconciled(ResultPanic, d)
		c.log.Error("reconcile panicked; retrying later", "family", family, "err", err)
		c.queue.AddRateLimited(family)
	default:
		c.o.Observer.Reconciled(ResultError, d)
		c.log.Warn("reconcile failed; retrying later", "family", family, "err", err, "retries", c.queue.NumRequeues(family))
		c.queue.AddRateLimited(family)
	}
	return true
}

var errPanic = errors.New("panic")

func (c *Controller) safeReconcile(ctx context.Context, family string) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", errPanic, r, debug.Stack())
		}
	}()
	return c.Reconcile(ctx, family)
}
