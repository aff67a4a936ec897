package awssim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Throttling, fault injection and call counters. All three sit in front of
// every call (Go API and HTTP alike), outside the Sim's lock. Throttling and
// faults are off until enabled (Options or EnableThrottling / SetFaults).

// ThrottleCategory is one of ECS's token buckets (reference/aws-facts.md §2):
// per account and Region, shared by the actions listed.
type ThrottleCategory struct {
	Name    string
	Actions []string
	Burst   float64 // bucket size
	Refill  float64 // tokens per second
}

// ECSThrottleCategories are ECS's documented buckets.
var ECSThrottleCategories = []ThrottleCategory{
	{"task definition modify", []string{"RegisterTaskDefinition", "DeregisterTaskDefinition"}, 20, 1},
	{"task definition read", []string{"DescribeTaskDefinition", "ListTaskDefinitions", "ListTaskDefinitionFamilies"}, 50, 20},
	{"service modify", []string{"CreateService", "DeleteService", "UpdateService"}, 50, 5},
	// The service deployment and revision reads are not in the table the
	// buckets above come from; they read services, so they share the
	// service read bucket.
	{"service read", []string{"DescribeServices", "ListServices", "ListServiceDeployments", "DescribeServiceDeployments", "DescribeServiceRevisions"}, 100, 20},
	{"cluster read", []string{"DescribeClusters", "ListClusters"}, 50, 20},
	{"tag modify", []string{"TagResource", "UntagResource"}, 20, 10},
	{"tag read", []string{"ListTagsForResource"}, 50, 20},
}

// ErrConnectionDropped is returned to Go callers whose call a DropRate
// fault dropped; HTTP callers see their connection closed without a
// response. The call itself was served: a dropped connection loses the
// answer, not the effect (the case that tests idempotency).
var ErrConnectionDropped = errors.New("awssim: connection dropped (injected fault)")

// Faults injected into the calls of one operation. Each call draws from the
// Sim's seeded random source (one stream per operation, so that the draws of
// one operation do not depend on how calls of others interleave).
type Faults struct {
	ErrorRate    float64       // probability of a server error (500) instead of serving
	ThrottleRate float64       // probability of a throttling error instead of serving
	DropRate     float64       // probability that the connection drops after serving
	Latency      time.Duration // added delay before serving, at least this...
	LatencyMax   time.Duration // ...and at most this (uniform); Latency when smaller
}

func (f Faults) zero() bool { return f == Faults{} }

func (f Faults) String() string {
	var parts []string
	if f.ThrottleRate > 0 {
		parts = append(parts, fmt.Sprintf("throttle=%g", f.ThrottleRate))
	}
	if f.ErrorRate > 0 {
		parts = append(parts, fmt.Sprintf("error=%g", f.ErrorRate))
	}
	if f.Latency > 0 || f.LatencyMax > 0 {
		parts = append(parts, fmt.Sprintf("latency=%s-%s", f.Latency, max(f.Latency, f.LatencyMax)))
	}
	if f.DropRate > 0 {
		parts = append(parts, fmt.Sprintf("drop=%g", f.DropRate))
	}
	return strings.Join(parts, ",")
}

// bucket is a token bucket on the Sim's clock.
type bucket struct {
	cat     *ThrottleCategory
	tokens  float64
	last    time.Time
	granted int64
	refused int64
}

type guard struct {
	mu      sync.Mutex
	scale   float64            // 0: throttling off
	buckets map[string]*bucket // by ECS action
	faults  map[string]Faults  // by "service:operation", "service:*" or "*"
	seed    uint64
	rngs    map[string]*rand.Rand // by "service:operation"

	statsMu sync.Mutex
	calls   map[statKey]int64
}

type statKey struct{ service, operation, result string }

func newGuard(seed int64) *guard {
	return &guard{seed: uint64(seed), faults: map[string]Faults{}, rngs: map[string]*rand.Rand{}, calls: map[statKey]int64{}}
}

// EnableThrottling turns ECS's token buckets on, their refill rates
// multiplied by scale (1: AWS's rates; 50: a benchmark fifty times faster).
// Bursts are AWS's. Buckets start full, on the Sim's clock. A scale of 0
// turns throttling off.
func (s *Sim) EnableThrottling(scale float64) {
	g := s.guard
	g.mu.Lock()
	defer g.mu.Unlock()
	if scale <= 0 {
		g.scale, g.buckets = 0, nil
		return
	}
	g.scale = scale
	g.buckets = map[string]*bucket{}
	now := s.clock.Now()
	for i := range ECSThrottleCategories {
		c := &ECSThrottleCategories[i]
		b := &bucket{cat: c, tokens: c.Burst, last: now}
		for _, a := range c.Actions {
			g.buckets[a] = b
		}
	}
}

// SetFaults sets the faults of the operations that key names: "ecs:UpdateService",
// "ecs:*" (every ECS operation), or "*" (every operation). Services are
// named as in Call.Service (ecs, sqs, events, secretsmanager, ecr, sts,
// iam, cloudtrail), case-insensitively. The most specific key applies.
// Zero Faults remove the entry.
func (s *Sim) SetFaults(key string, f Faults) error {
	key, err := normalizeFaultKey(key)
	if err != nil {
		return err
	}
	for _, r := range []float64{f.ErrorRate, f.ThrottleRate, f.DropRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("awssim: fault rate %g not in [0,1]", r)
		}
	}
	if f.Latency < 0 || f.LatencyMax < 0 {
		return fmt.Errorf("awssim: negative latency")
	}
	g := s.guard
	g.mu.Lock()
	defer g.mu.Unlock()
	if f.zero() {
		delete(g.faults, key)
	} else {
		g.faults[key] = f
	}
	return nil
}

func normalizeFaultKey(key string) (string, error) {
	if key == "*" {
		return key, nil
	}
	svc, op, ok := strings.Cut(key, ":")
	if !ok || svc == "" || op == "" {
		return "", fmt.Errorf("awssim: fault key %q: want service:operation, service:* or *", key)
	}
	return strings.ToLower(svc) + ":" + op, nil
}

func (g *guard) faultsFor(service, op string) Faults {
	if f, ok := g.faults[service+":"+op]; ok {
		return f
	}
	if f, ok := g.faults[service+":*"]; ok {
		return f
	}
	return g.faults["*"]
}

// rng returns the random stream of one operation, seeded from the Sim's
// seed and the operation's name. Called with g.mu held.
func (g *guard) rng(service, op string) *rand.Rand {
	k := service + ":" + op
	r := g.rngs[k]
	if r == nil {
		h := fnv.New64a()
		h.Write([]byte(k))
		r = rand.New(rand.NewPCG(g.seed, h.Sum64()))
		g.rngs[k] = r
	}
	return r
}

// admission is what the guard decided for one call.
type admission struct {
	err  error         // refuse the call with this error
	wait time.Duration // added latency
	drop bool          // drop the connection after serving
}

func (g *guard) admit(now time.Time, service, op string) admission {
	g.mu.Lock()
	defer g.mu.Unlock()
	var a admission
	if f := g.faultsFor(service, op); !f.zero() {
		r := g.rng(service, op)
		// Draw every number every time, so that a call's fate does not
		// depend on the other rates.
		lat, pThrottle, pError, pDrop := r.Float64(), r.Float64(), r.Float64(), r.Float64()
		if hi := max(f.Latency, f.LatencyMax); hi > 0 {
			a.wait = f.Latency + time.Duration(lat*float64(hi-f.Latency))
		}
		switch {
		case pThrottle < f.ThrottleRate:
			a.err = throttleError(service)
		case pError < f.ErrorRate:
			a.err = serverError(service)
		case pDrop < f.DropRate:
			a.drop = true
		}
	}
	if a.err == nil && g.scale > 0 && service == "ecs" {
		if b := g.buckets[op]; b != nil {
			if dt := now.Sub(b.last).Seconds(); dt > 0 {
				b.tokens = min(b.cat.Burst, b.tokens+dt*b.cat.Refill*g.scale)
				b.last = now
			}
			if b.tokens >= 1 {
				b.tokens--
				b.granted++
			} else {
				b.refused++
				a.err = &Error{Code: "ThrottlingException", Message: "Rate exceeded"} // ECS's text
				a.drop = false
			}
		}
	}
	return a
}

// throttleError is each service's throttling error: ECS, EventBridge,
// Secrets Manager and ECR say ThrottlingException; SQS RequestThrottled.
func throttleError(service string) *Error {
	if service == "sqs" {
		return sqsErr("RequestThrottled", "RequestThrottled", "Rate exceeded (injected fault).")
	}
	return &Error{Code: "ThrottlingException", Message: "Rate exceeded (injected fault)."}
}

// serverError is each service's 500: ECS's and ECR's model name
// ServerException, Secrets Manager InternalServiceError; the others the
// common InternalFailure.
func serverError(service string) *Error {
	code := "InternalFailure"
	switch service {
	case "ecs", "ecr":
		code = codeServer
	case "secretsmanager":
		code = "InternalServiceError"
	}
	return &Error{Code: code, Message: "Internal error (injected fault).", Status: http.StatusInternalServerError}
}

// before runs the guard and the gates for a call about to be served. It
// sleeps for injected latency (returning early if ctx ends).
func (s *Sim) before(ctx context.Context, r Request) admission {
	a := s.guard.admit(s.clock.Now(), r.Service, r.Operation)
	if a.wait > 0 {
		t := time.NewTimer(a.wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if a.err == nil {
		a.err = s.runGates(ctx, r)
	}
	return a
}

// count records the result of a call: "ok", the error code, or "dropped".
func (s *Sim) count(service, op string, err error, dropped bool) {
	result := "ok"
	var e *Error
	switch {
	case dropped:
		result = "dropped"
	case errors.As(err, &e):
		result = e.Code
	case err != nil:
		result = codeServer
	}
	g := s.guard
	g.statsMu.Lock()
	g.calls[statKey{service, op, result}]++
	g.statsMu.Unlock()
}

// Stats are the simulator's counters, served on GET /_sim/stats.
type Stats struct {
	// Calls per operation and result ("ok", an error code, or "dropped"),
	// sorted by service, operation and result.
	Calls []CallCount `json:"calls"`
	// Buckets are ECS's token buckets, when throttling is on.
	Buckets []BucketStats `json:"buckets,omitempty"`
	// Events counts EventBridge's work.
	Events EventStats `json:"events"`
}

// CallCount is the number of calls of one operation with one result.
type CallCount struct {
	Service   string `json:"service"`
	Operation string `json:"operation"`
	Result    string `json:"result"`
	Count     int64  `json:"count"`
}

// BucketStats is one token bucket's account.
type BucketStats struct {
	Category string  `json:"category"`
	Burst    float64 `json:"burst"`
	Refill   float64 `json:"refillPerSecond"` // scaled
	Tokens   float64 `json:"tokens"`
	Granted  int64   `json:"granted"`
	Refused  int64   `json:"refused"`
}

// EventStats counts events through EventBridge.
type EventStats struct {
	Published    int64 `json:"published"`    // events put on a bus (ECS's and PutEvents')
	Matched      int64 `json:"matched"`      // (event, rule) matches
	Delivered    int64 `json:"delivered"`    // messages sent to SQS targets
	Failed       int64 `json:"failed"`       // deliveries that failed
	DeadLettered int64 `json:"deadLettered"` // failed deliveries sent to a target's DLQ
	Unsupported  int64 `json:"unsupported"`  // matches of targets that are not SQS queues (not delivered)
}

// Stats returns the counters.
func (s *Sim) Stats() Stats {
	var st Stats
	g := s.guard
	g.statsMu.Lock()
	for k, n := range g.calls {
		st.Calls = append(st.Calls, CallCount{k.service, k.operation, k.result, n})
	}
	g.statsMu.Unlock()
	sort.Slice(st.Calls, func(i, j int) bool {
		a, b := st.Calls[i], st.Calls[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Operation != b.Operation {
			return a.Operation < b.Operation
		}
		return a.Result < b.Result
	})
	if st.Calls == nil {
		st.Calls = []CallCount{}
	}
	g.mu.Lock()
	if g.scale > 0 {
		for i := range ECSThrottleCategories {
			c := &ECSThrottleCategories[i]
			b := g.buckets[c.Actions[0]]
			st.Buckets = append(st.Buckets, BucketStats{c.Name, c.Burst, c.Refill * g.scale, b.tokens, b.granted, b.refused})
		}
	}
	g.mu.Unlock()
	st.Events = s.events().statsSnapshot()
	return st
}

// CallCount returns how many calls of service:operation ended with result.
func (s *Sim) CallCount(service, op, result string) int64 {
	g := s.guard
	g.statsMu.Lock()
	defer g.statsMu.Unlock()
	return g.calls[statKey{service, op, result}]
}

func (s *Sim) serveStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.Stats())
}

// FetchStats reads the counters of a simulator served at endpoint (as
// `reconciler sim` serves it), from GET /_sim/stats.
func FetchStats(ctx context.Context, endpoint string) (Stats, error) {
	var st Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/_sim/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET %s/_sim/stats: %s", endpoint, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("GET %s/_sim/stats: %w", endpoint, err)
	}
	return st, nil
}

// ParseFaults reads fault specifications, separated by ';':
//
//	SERVICE:OPERATION:KEY=VALUE[,KEY=VALUE...]
//
// SERVICE is ecs, sqs, events, secretsmanager, ecr, sts, iam, cloudtrail or
// *; OPERATION an operation name or *. Keys: throttle, error and drop take a
// probability in [0,1]; latency takes a duration (100ms) or a range
// (0-100ms, 10ms-1s; a bare number in the low end takes the high end's
// unit). Example: "ecs:*:throttle=0.2,error=0.05,latency=0-100ms,drop=0.01".
// It returns the keys for SetFaults.
func ParseFaults(spec string) (map[string]Faults, error) {
	out := map[string]Faults{}
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fields := strings.SplitN(part, ":", 3)
		if len(fields) != 3 {
			return nil, fmt.Errorf("fault %q: want SERVICE:OPERATION:KEY=VALUE[,KEY=VALUE]", part)
		}
		key := fields[0] + ":" + fields[1]
		if fields[0] == "*" {
			if fields[1] != "*" {
				return nil, fmt.Errorf("fault %q: service * takes operation * only", part)
			}
			key = "*"
		}
		key, err := normalizeFaultKey(key)
		if err != nil {
			return nil, err
		}
		var f Faults
		for _, kv := range strings.Split(fields[2], ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				return nil, fmt.Errorf("fault %q: %q is not KEY=VALUE", part, kv)
			}
			switch k {
			case "throttle", "error", "drop":
				p, err := strconv.ParseFloat(v, 64)
				if err != nil || p < 0 || p > 1 {
					return nil, fmt.Errorf("fault %q: %s=%s: want a probability in [0,1]", part, k, v)
				}
				switch k {
				case "throttle":
					f.ThrottleRate = p
				case "error":
					f.ErrorRate = p
				default:
					f.DropRate = p
				}
			case "latency":
				lo, hi, err := parseLatency(v)
				if err != nil {
					return nil, fmt.Errorf("fault %q: latency=%s: %v", part, v, err)
				}
				f.Latency, f.LatencyMax = lo, hi
			default:
				return nil, fmt.Errorf("fault %q: unknown key %q (want throttle, error, drop or latency)", part, k)
			}
		}
		out[key] = f
	}
	return out, nil
}

func parseLatency(v string) (lo, hi time.Duration, err error) {
	loS, hiS, isRange := strings.Cut(v, "-")
	if !isRange {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, 0, fmt.Errorf("want a duration or a range such as 0-100ms")
		}
		return d, d, nil
	}
	hi, err = time.ParseDuration(hiS)
	if err != nil {
		return 0, 0, fmt.Errorf("want a range such as 0-100ms: %v", err)
	}
	lo, err = time.ParseDuration(loS)
	if err != nil {
		// "10-100ms": the low end takes the high end's unit.
		unit := strings.TrimLeft(hiS, "0123456789.")
		lo, err = time.ParseDuration(loS + unit)
		if err != nil {
			return 0, 0, fmt.Errorf("want a range such as 0-100ms: %v", err)
		}
	}
	if lo < 0 || hi < lo {
		return 0, 0, fmt.Errorf("range %s is empty or negative", v)
	}
	return lo, hi, nil
}
