// Package awssim is an embedded AWS for tests, benchmarks and demos: the
// subset of ECS, SQS, EventBridge, Secrets Manager and ECR that the
// reconciler uses (and the STS, IAM and CloudTrail reads of `reconciler
// check`), served over the real AWS protocols (Sim.Handler), so that
// aws-sdk-go-v2 clients, the aws CLI and boto3 talk to it with only an
// endpoint override.
//
// It is deterministic (ids come from counters, listings are sorted, rollouts
// complete and messages become visible when a Clock says so; injected
// faults come from a seeded source), concurrency-safe, and keeps a journal of
// every mutating ECS and Secrets Manager call and every deployment state
// change so that tests can check histories, not only end states.
//
// ECS's calls and rollouts publish their EventBridge events (events_ecs.go)
// on the default bus, where rules deliver them to SQS queues (events.go,
// sqs.go): the path the reconciler reads. Throttling (ECS's token buckets),
// fault injection and call counters sit in front of every call
// (throttle.go); throttling and faults are off unless enabled.
//
// The package imports nothing of the reconciler: only the SDK's types and
// internal/awsjson, the codec between those types and the wire.
package awssim

import (
	"container/heap"
	"context"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/deepcopy"
)

// Defaults for Options.
const (
	DefaultRegion  = "us-east-1"
	DefaultAccount = "123456789012"
)

// Options configure a Sim. The zero value is usable.
type Options struct {
	Region  string // default DefaultRegion
	Account string // default DefaultAccount
	Clock   Clock  // default RealClock()

	// RolloutDelay is how long a deployment's new tasks take to start: a
	// ROLLING deployment reaches its outcome (COMPLETED, or failure per
	// RolloutRule) then; BLUE_GREEN, LINEAR and CANARY deployments shift
	// traffic and bake after it, for the times their deploymentConfiguration
	// gives (rollout.go). Zero: at the first call or Step after it started.
	RolloutDelay time.Duration

	// RolloutRule decides whether the revision a deployment rolls out is
	// bad; it is asked at each of the rollout's checkpoints (rollout.go).
	// Nil: every rollout succeeds. See FailImages.
	RolloutRule RolloutRule

	// ECRPassword is the password inside ECR authorization tokens.
	// Default "awssim".
	ECRPassword string

	// Logger receives one debug line per HTTP request. Default: discard.
	Logger *slog.Logger

	// NoJournal turns the journal off (observers still run). For
	// benchmarks that measure the simulator's own footprint.
	NoJournal bool

	// ThrottleScale turns on ECS's token buckets with refill rates
	// multiplied by it (see EnableThrottling). Zero: no throttling.
	ThrottleScale float64
	// Faults are injected per operation (see SetFaults); nil: none.
	Faults map[string]Faults
	// Seed seeds the random draws of fault injection, so that a run can be
	// repeated.
	Seed int64
}

// RolloutRule returns a non-empty reason when a rollout of td must fail.
// It is called with the Sim's lock held and must not call the Sim.
type RolloutRule func(td *types.TaskDefinition) (failReason string)

// FailImages is a RolloutRule: rollouts of task definitions with a container
// image matching re fail, with ECS's circuit-breaker reason.
func FailImages(re *regexp.Regexp) RolloutRule {
	return func(td *types.TaskDefinition) string {
		for _, c := range td.ContainerDefinitions {
			if c.Image != nil && re.MatchString(*c.Image) {
				return reasonTasksFailed
			}
		}
		return ""
	}
}

// reasonTasksFailed is the rolloutStateReason ECS gives a deployment that
// its circuit breaker failed.
const reasonTasksFailed = "ECS deployment circuit breaker: tasks failed to start."

// Call is one API call as observers and the journal see it.
type Call struct {
	Seq       int64
	Time      time.Time
	Service   string // "ecs", "secretsmanager", "ecr" (SQS and EventBridge calls are not journaled)
	Operation string // "RegisterTaskDefinition"
	Input     any    // *ecs.RegisterTaskDefinitionInput ...
	Output    any    // nil when Err is set
	Err       *Error
	// UserAgent is the HTTP caller's User-Agent header (an SDK's names its
	// app id, "app/<id>"), so that a history tells one client's writes from
	// another's. Empty for Go callers.
	UserAgent string
}

// DeploymentChange is a deployment reaching a new rollout state (the source
// of ECS's "ECS Deployment State Change" and "ECS Service Action" events).
type DeploymentChange struct {
	Seq            int64
	Time           time.Time
	ClusterArn     string
	ServiceArn     string
	DeploymentID   string
	TaskDefinition string
	// State is IN_PROGRESS (started, or rollback started), COMPLETED or FAILED.
	State  types.DeploymentRolloutState
	Reason string
	// Impaired is set when tasks fail to start but no circuit breaker is on:
	// the deployment stays IN_PROGRESS (ECS's SERVICE_TASK_START_IMPAIRED).
	Impaired bool
}

// Entry is one line of the journal: a mutating call or a deployment change.
type Entry struct {
	Seq        int64
	Time       time.Time
	Call       *Call             // set for calls
	Deployment *DeploymentChange // set for deployment changes
}

// Request describes a call about to be served, for gates.
type Request struct {
	Service   string
	Operation string
	Mutating  bool
}

// Gate runs before each call, outside the Sim's lock: a non-nil error is
// returned to the client instead of serving the call (an *Error as is, any
// other error as a ServerException). It is the place for throttling and
// fault injection.
type Gate func(ctx context.Context, r Request) error

// Sim is the simulated AWS account and Region. Create it with New.
type Sim struct {
	region, account string
	clock           Clock
	log             *slog.Logger
	ecrPassword     string
	noJournal       bool

	requests atomic.Int64 // HTTP request ids

	guard *guard // throttling, faults, counters (throttle.go)

	// EventBridge and SQS have their own locks, taken after mu (ECS calls
	// publish their events with mu held) and in that order: mu, then
	// evMu, then sqsMu. Neither calls back into ECS.
	evOnce  sync.Once
	ev      *eventsState
	sqsOnce sync.Once
	sq      *sqsState

	gatesMu sync.RWMutex
	gates   []Gate

	mu           sync.Mutex
	rolloutDelay time.Duration
	rolloutRule  RolloutRule
	seq          int64 // journal and observer order
	ids          int64 // deployment ids, request ids
	revIDs       int64 // service revision ids
	sdIDs        int64 // service deployment ids
	checkpoints  int64 // rollout checkpoints queued (their tie-break)
	journal      []Entry
	onCall       []func(Call)
	onDeploy     []func(DeploymentChange)

	clusters     map[string]*cluster
	clusterNames []string // sorted
	families     map[string]*family
	familyNames  []string // sorted
	rollouts     rolloutQueue
	secrets      map[string]*secret // by name
	secretNames  []string           // creation order
}

// New returns an empty simulator.
func New(o Options) *Sim {
	s := &Sim{
		region:       o.Region,
		account:      o.Account,
		clock:        o.Clock,
		log:          o.Logger,
		ecrPassword:  o.ECRPassword,
		noJournal:    o.NoJournal,
		rolloutDelay: o.RolloutDelay,
		rolloutRule:  o.RolloutRule,
		clusters:     map[string]*cluster{},
		families:     map[string]*family{},
		secrets:      map[string]*secret{},
	}
	if s.region == "" {
		s.region = DefaultRegion
	}
	if s.account == "" {
		s.account = DefaultAccount
	}
	if s.clock == nil {
		s.clock = RealClock()
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.ecrPassword == "" {
		s.ecrPassword = "awssim"
	}
	s.guard = newGuard(o.Seed)
	if o.ThrottleScale > 0 {
		s.EnableThrottling(o.ThrottleScale)
	}
	for k, f := range o.Faults {
		if err := s.SetFaults(k, f); err != nil {
			s.log.Error("awssim: ignoring a fault", "key", k, "err", err)
		}
	}
	s.onCall = append(s.onCall, s.publishCallEvent)
	s.onDeploy = append(s.onDeploy, s.publishDeploymentEvent)
	return s
}

// Region and Account the simulator serves.
func (s *Sim) Region() string  { return s.region }
func (s *Sim) Account() string { return s.account }

// SetRollout changes the rollout delay for deployments that start from now
// on, and the rule for every checkpoint from now on (so a fault can be
// injected into a rollout under way, for instance during bake time).
func (s *Sim) SetRollout(delay time.Duration, rule RolloutRule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rolloutDelay, s.rolloutRule = delay, rule
}

// OnCall registers an observer of every mutating call, successful or not, in
// journal order. Observers run with the Sim's lock held: they must be quick
// and must not call the Sim.
func (s *Sim) OnCall(f func(Call)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall = append(s.onCall, f)
}

// OnDeployment registers an observer of deployment state changes, with the
// same rules as OnCall.
func (s *Sim) OnDeployment(f func(DeploymentChange)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onDeploy = append(s.onDeploy, f)
}

// AddGate adds a gate in front of every call; gates run in the order added.
func (s *Sim) AddGate(g Gate) {
	s.gatesMu.Lock()
	defer s.gatesMu.Unlock()
	s.gates = append(s.gates, g)
}

// Journal returns the journal so far, oldest first. Entries share their
// inputs and outputs with the simulator: read them, do not modify them.
func (s *Sim) Journal() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Entry(nil), s.journal...)
}

// Step brings rollouts up to the clock's time. Calls do it too; a server on
// a real clock calls Step on a ticker so that deployment changes are
// observed when they happen.
func (s *Sim) Step() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.clock.Now())
}

// StepEvery calls Step every interval until stop is called (stop waits for
// the last Step to return): what a server on a real clock runs beside.
func (s *Sim) StepEvery(interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				s.Step()
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// mutating lists the operations that change state: the journal's calls.
var mutating = map[string]bool{
	"CreateCluster": true, "RegisterTaskDefinition": true, "DeregisterTaskDefinition": true,
	"TagResource": true, "UntagResource": true, "CreateService": true, "UpdateService": true,
	"DeleteService": true, "CreateSecret": true,
}

// invoke serves one call: gates, then under the lock: rollouts up to now,
// the operation, the journal and observers. goCaller copies the input and
// output so that a Go caller shares no memory with the simulator's state.
func invoke[I, O any](ctx context.Context, s *Sim, service, op string, in *I, fn func(*Sim, *I) (*O, error), goCaller bool) (*O, error) {
	if in == nil {
		in = new(I)
	}
	if goCaller {
		in = deepcopy.Of(in)
	}
	adm := s.before(ctx, Request{Service: service, Operation: op, Mutating: mutating[op]})
	gateErr := adm.err
	out, err := invokeLocked(s, service, op, in, fn, gateErr, userAgentOf(ctx))
	s.count(service, op, err, adm.drop)
	if adm.drop {
		return nil, ErrConnectionDropped
	}
	if err != nil {
		return nil, err
	}
	if goCaller {
		out = deepcopy.Of(out)
	}
	return out, nil
}

func invokeLocked[I, O any](s *Sim, service, op string, in *I, fn func(*Sim, *I) (*O, error), gateErr error, userAgent string) (*O, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.advanceLocked(now)
	var out *O
	var err error
	if gateErr != nil {
		err = gateErr
	} else {
		out, err = callSafely(s, in, fn)
	}
	var apiErr *Error
	if err != nil && !errors.As(err, &apiErr) {
		apiErr = &Error{Code: codeServer, Message: err.Error(), Status: 500}
	}
	if mutating[op] {
		c := Call{Time: now, Service: service, Operation: op, Input: in, Err: apiErr, UserAgent: userAgent}
		if apiErr == nil {
			c.Output = out
		}
		s.recordCallLocked(c)
	}
	if apiErr != nil {
		return nil, apiErr
	}
	return out, nil
}

// invokeOwn serves a call of a service with its own lock (SQS, EventBridge):
// the guard and gates, then fn without the Sim's lock, then the counters.
func invokeOwn[I, O any](ctx context.Context, s *Sim, service, op string, in *I, fn func(*Sim, context.Context, *I) (*O, error), goCaller bool) (*O, error) {
	if in == nil {
		in = new(I)
	}
	if goCaller {
		in = deepcopy.Of(in)
	}
	adm := s.before(ctx, Request{Service: service, Operation: op, Mutating: !strings.HasPrefix(op, "List") && !strings.HasPrefix(op, "Get") && !strings.HasPrefix(op, "Describe")})
	var out *O
	err := adm.err
	if err == nil {
		out, err = callOwnSafely(ctx, s, in, fn)
	}
	var apiErr *Error
	if err != nil && !errors.As(err, &apiErr) {
		apiErr = &Error{Code: codeServer, Message: err.Error(), Status: 500}
	}
	if apiErr != nil {
		err = apiErr
	}
	s.count(service, op, err, adm.drop)
	if service == "sqs" && (adm.drop || adm.err != nil) {
		s.sqs().noteFault(op, in, out, adm.drop, adm.err != nil)
	}
	if adm.drop {
		return nil, ErrConnectionDropped
	}
	if err != nil {
		return nil, err
	}
	if goCaller {
		out = deepcopy.Of(out)
	}
	return out, nil
}

func callOwnSafely[I, O any](ctx context.Context, s *Sim, in *I, fn func(*Sim, context.Context, *I) (*O, error)) (out *O, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &Error{Code: codeServer, Message: "internal error", Status: 500}
			s.log.Error("awssim: operation panicked", "panic", r)
		}
	}()
	return fn(s, ctx, in)
}

// callSafely turns a panic of an operation into a ServerException, as a
// service would, instead of killing the server.
func callSafely[I, O any](s *Sim, in *I, fn func(*Sim, *I) (*O, error)) (out *O, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, &Error{Code: codeServer, Message: "internal error", Status: 500}
			s.log.Error("awssim: operation panicked", "panic", r)
		}
	}()
	return fn(s, in)
}

func (s *Sim) runGates(ctx context.Context, r Request) error {
	s.gatesMu.RLock()
	gates := s.gates
	s.gatesMu.RUnlock()
	for _, g := range gates {
		if err := g(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sim) recordCallLocked(c Call) {
	s.seq++
	c.Seq = s.seq
	if !s.noJournal {
		s.journal = append(s.journal, Entry{Seq: c.Seq, Time: c.Time, Call: &c})
	}
	for _, f := range s.onCall {
		f(c)
	}
}

func (s *Sim) recordDeploymentLocked(d DeploymentChange) {
	s.seq++
	d.Seq = s.seq
	if !s.noJournal {
		s.journal = append(s.journal, Entry{Seq: d.Seq, Time: d.Time, Deployment: &d})
	}
	for _, f := range s.onDeploy {
		f(d)
	}
}

func (s *Sim) nextID() int64 {
	s.ids++
	return s.ids
}

// advanceLocked processes every rollout checkpoint due at or before now, in
// due order, each at its own due time (a checkpoint may queue the next one,
// which runs in the same call when it is due by now).
func (s *Sim) advanceLocked(now time.Time) {
	for len(s.rollouts) > 0 && !s.rollouts[0].due.After(now) {
		it := heap.Pop(&s.rollouts).(*rolloutItem)
		s.stepRolloutLocked(it.svc, it.dep, it.due)
	}
}

// insertSorted inserts v into the sorted slice xs if it is not there.
func insertSorted(xs []string, v string) []string {
	i, found := searchStrings(xs, v)
	if found {
		return xs
	}
	xs = append(xs, "")
	copy(xs[i+1:], xs[i:])
	xs[i] = v
	return xs
}

func removeSorted(xs []string, v string) []string {
	i, found := searchStrings(xs, v)
	if !found {
		return xs
	}
	return append(xs[:i], xs[i+1:]...)
}

// searchStrings is sort.SearchStrings with a found flag.
func searchStrings(xs []string, v string) (int, bool) {
	lo, hi := 0, len(xs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if xs[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(xs) && xs[lo] == v
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
