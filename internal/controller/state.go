package controller

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/awsjson"
	"github.com/ecs-sidecar/reconciler/internal/ecsarn"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// revision is one task definition revision. Its content never changes
// (revisions are immutable), so it is cached by ARN for good; only its tags
// change, and they are re-read where a decision depends on them.
type revision struct {
	arn    string
	family string
	number int32
	// packed is the content of a source (what Instrument reads), in the
	// wire's JSON (awsjson): a decoded types.TaskDefinition weighs several
	// times more, and its strings would keep the SDK's whole response
	// alive. A twin's content is not kept: the cache holds thousands of
	// them and only the rare restoring of a deregistered source reads one,
	// again from ECS.
	packed []byte
	status types.TaskDefinitionStatus // when read
	// registeredAt bounds the service deployments that can target it.
	registeredAt time.Time
	// digest is a twin's content (patch.Digest): what it is, whatever its
	// markers claim.
	digest string
	class  patch.Class
	tags   []types.Tag
	// planned is a twin that audit mode would register: not in AWS.
	planned bool
	// prefetched: described by the restart's prefetch, during the first
	// service sweep (Controller.prefetch). Its tags then count as read by
	// the family's first reconcile when that one takes the restart's
	// listing (nothing outside said the family changed since).
	prefetched bool
}

// inactive says whether the revision was deregistered when it was read.
func (r *revision) inactive() bool {
	return r.status == types.TaskDefinitionStatusInactive
}

// ecsJSON encodes the content of sources kept in the cache.
var ecsJSON = awsjson.Codec{Service: awsjson.ECS}

// newRevision makes the cache's revision of a task definition as ECS
// returned it: a source keeps its content (packed), a twin does not.
func newRevision(td *types.TaskDefinition, tags []types.Tag, class patch.Class) (*revision, error) {
	arn := strings.Clone(aws.ToString(td.TaskDefinitionArn))
	family := ecsarn.Family(arn) // a part of arn, not another copy
	if family != aws.ToString(td.Family) {
		family = strings.Clone(aws.ToString(td.Family))
	}
	r := &revision{
		arn:    arn,
		family: family,
		number: td.Revision,
		status: types.TaskDefinitionStatus(strings.Clone(string(td.Status))),
		class:  cloneClass(class),
		tags:   tags,
	}
	if td.RegisteredAt != nil {
		r.registeredAt = *td.RegisteredAt
	}
	if class.Kind == patch.KindTwin {
		r.digest = patch.Digest(patch.RegisterInput(td, nil))
	}
	if class.Kind != patch.KindTwin {
		// What RegisterTaskDefinition takes; the revision's identity is
		// kept above, and what ECS adds (requiresAttributes,
		// compatibilities, registeredAt and By) is read by nothing.
		keep := *td
		keep.TaskDefinitionArn, keep.Family, keep.Revision, keep.Status = nil, nil, 0, ""
		keep.RequiresAttributes, keep.Compatibilities, keep.RegisteredAt, keep.RegisteredBy, keep.DeregisteredAt = nil, nil, nil, nil, nil
		b, err := ecsJSON.Marshal(&keep)
		if err != nil {
			return nil, fmt.Errorf("keep task definition %s: %w", r.arn, err)
		}
		if r.packed, err = pack(b); err != nil {
			return nil, fmt.Errorf("keep task definition %s: %w", r.arn, err)
		}
	}
	return r, nil
}

// packDict primes the compression of sources' JSON with what most task
// definitions say: a few hundred bytes each compress poorly on their own.
var packDict = []byte(`{"containerDefinitions":[{"command":[],"cpu":0,"dependsOn":[{"condition":"START","containerName":""}],` +
	`"entryPoint":[],"environment":[{"name":"","value":""}],"essential":true,"healthCheck":{"command":["CMD-SHELL",""],` +
	`"interval":30,"retries":3,"timeout":5},"image":".dkr.ecr.us-east-1.amazonaws.com/","logConfiguration":{"logDriver":"awslogs",` +
	`"options":{"awslogs-group":"/ecs/","awslogs-region":"us-east-1","awslogs-stream-prefix":"ecs"}},"memory":0,` +
	`"memoryReservation":0,"mountPoints":[{"containerPath":"/","readOnly":false,"sourceVolume":""}],"name":"",` +
	`"portMappings":[{"containerPort":8080,"hostPort":8080,"protocol":"tcp"}],"secrets":[{"name":"",` +
	`"valueFrom":"arn:aws:secretsmanager:us-east-1:"}],"ulimits":[],"user":"","volumesFrom":[],"workingDirectory":"/"}],` +
	`"cpu":"256","executionRoleArn":"arn:aws:iam::role/ecsTaskExecutionRole","memory":"512","networkMode":"awsvpc",` +
	`"placementConstraints":[],"requiresCompatibilities":["FARGATE"],"runtimePlatform":{"cpuArchitecture":"X86_64",` +
	`"operatingSystemFamily":"LINUX"},"taskRoleArn":"arn:aws:iam::role/","volumes":[{"name":""}]}`)

var (
	// packer is one compressor for every source: a few microseconds a
	// revision, each revision once, and a compressor weighs most of a MiB.
	packerMu  sync.Mutex
	packer    *flate.Writer
	unpackers sync.Pool
)

// pack compresses a source's JSON for the cache.
func pack(b []byte) ([]byte, error) {
	packerMu.Lock()
	defer packerMu.Unlock()
	var out bytes.Buffer
	if packer == nil {
		w, err := flate.NewWriterDict(&out, flate.BestCompression, packDict)
		if err != nil {
			return nil, err
		}
		packer = w
	} else {
		packer.Reset(&out)
	}
	if _, err := packer.Write(b); err != nil {
		return nil, err
	}
	if err := packer.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(out.Bytes()), nil // out has room to spare
}

// unpack reverses pack.
func unpack(b []byte) ([]byte, error) {
	r, _ := unpackers.Get().(io.ReadCloser)
	if r == nil {
		r = flate.NewReaderDict(bytes.NewReader(b), packDict)
	} else if err := r.(flate.Resetter).Reset(bytes.NewReader(b), packDict); err != nil {
		return nil, err
	}
	defer unpackers.Put(r)
	return io.ReadAll(r)
}

// cloneClass copies the strings Classify took from the SDK's answer (see
// serviceFromSDK).
func cloneClass(c patch.Class) patch.Class {
	c.Spec, c.Detail = strings.Clone(c.Spec), strings.Clone(c.Detail)
	if c.Containers != nil {
		names := make([]string, len(c.Containers))
		for i, n := range c.Containers {
			names[i] = strings.Clone(n)
		}
		c.Containers = names
	}
	return c
}

// content returns the task definition of a source, decoded anew from the
// cache (the caller may change it): what RegisterTaskDefinition takes, and
// its ARN, family, revision and status; not the fields ECS adds on its own.
func (r *revision) content() (*types.TaskDefinition, error) {
	if r.packed == nil {
		return nil, fmt.Errorf("task definition %s: content not kept", r.arn)
	}
	b, err := unpack(r.packed)
	if err != nil {
		return nil, fmt.Errorf("task definition %s: %w", r.arn, err)
	}
	td := new(types.TaskDefinition)
	if err := ecsJSON.Unmarshal(b, td); err != nil {
		return nil, fmt.Errorf("task definition %s: %w", r.arn, err)
	}
	td.TaskDefinitionArn, td.Family, td.Revision, td.Status = aws.String(r.arn), aws.String(r.family), r.number, r.status
	return td, nil
}

// service is what the controller knows of a service from DescribeServices.
type service struct {
	arn         string
	cluster     string // cluster ARN
	name        string
	taskDef     string // the service's task definition: its primary deployment's
	controller  types.DeploymentControllerType
	status      string
	deployments []deployment
	// swept: read by a service sweep and not yet used by a reconcile
	// (takeSwept). Read and cleared under state.mu only.
	swept bool
}

func (s *service) family() string { return ecsarn.Family(s.taskDef) }

// familyState is what the last reconcile of a family concluded, for the
// sweeps to tell at no cost whether a service needs work.
type familyState struct {
	instrument bool
	reason     string
	profile    string
	owner      string // one of Owners
	// newest is the newest ACTIVE revision the reconcile saw.
	newest string
	// deciding is the revision whose tags decided opt-in ("" when none
	// carries the tag), and its tag values as read.
	deciding     string
	decidingTags string
	// newestSource is the newest ACTIVE source revision: the family sweep
	// watches its tags when no revision carries the inject tag.
	newestSource string
	// ok holds the revisions a service may run without another reconcile:
	// current twins, and sources that cannot be instrumented (refused).
	ok revSet
	// twinOf maps source revisions to their current twin; refused maps the
	// sources that cannot be instrumented to the first reason code.
	twinOf  revMap[string]
	refused revMap[patch.Code]
}

// revSet is a family's set of revision ARNs. A family has a handful, and
// the account thousands of families: a map each would weigh ten times more.
type revSet []string

func (s revSet) has(arn string) bool { return slices.Contains(s, arn) }

func (s *revSet) add(arn string) {
	if !s.has(arn) {
		*s = append(*s, arn)
	}
}

// revMap is a family's small map keyed by revision ARN (see revSet).
type revMap[V any] []revEntry[V]

type revEntry[V any] struct {
	arn string
	v   V
}

func (m revMap[V]) get(arn string) (V, bool) {
	for _, e := range m {
		if e.arn == arn {
			return e.v, true
		}
	}
	var zero V
	return zero, false
}

func (m *revMap[V]) set(arn string, v V) {
	for i := range *m {
		if (*m)[i].arn == arn {
			(*m)[i].v = v
			return
		}
	}
	*m = append(*m, revEntry[V]{arn, v})
}

// state is the controller's cache. Everything in it can be rebuilt from AWS.
type state struct {
	mu        sync.Mutex
	revisions map[string]*revision    // by ARN
	services  map[string]*service     // by service ARN
	families  map[string]*familyState // by family
	moved     map[string]string       // service ARN -> twin ARN the controller moved it to (to count the outcome once)
	// pending are moves admitted and not yet answered: they count as
	// rollouts in flight until the service is cached again (the
	// UpdateService answer, or a describe) or the call fails.
	pending map[string]pendingMove
	failed  map[string]string // twin ARN -> failure code
	forged  map[string]bool   // twin ARNs reported as forged
	// svcRevisions maps a service revision ARN to its task definition:
	// service revisions are immutable, so they are cached for good (only
	// those deployed since a twin was registered are read, before a move
	// to that twin).
	svcRevisions map[string]string
	// said is what the last log line of a family said of a topic (its
	// decision, its refusal, its warnings), so that a reconcile that
	// reaches the same answer says nothing: one line per change. Kept in
	// memory only, on purpose: a restarted process says it once again.
	said map[string]string
	// contested maps a service ARN to the twin another writer keeps moving
	// it off (rebuilt from ECS's service deployments by each reconcile).
	contested map[string]string
	indexed   map[string]bool // clusters whose services a sweep has indexed
	// window is the ramp's current bound on rollouts in flight (see
	// Options.RampStart); 0 before the first admission.
	window int
	// waiting are the families with a move deferred for want of a place
	// (max_in_flight, ramp_window, max_in_flight_per_cluster), in the order
	// they asked: a rollout that ends queues as many as it frees places for
	// (wakeWaiting), so they are not polled while every place is taken.
	waiting   []string
	isWaiting map[string]bool
	// woken are the waiting families queued by wakeWaiting whose
	// reconcile has not taken its place yet: each holds one of the free
	// places, so that two rollouts' ends do not hand out one place twice.
	woken map[string]bool

	// Indexes of services, kept by setServiceLocked and deleteServiceLocked,
	// so that a reconcile and pacing cost what the family has, not what the
	// account has: by family, by cluster, and those whose primary
	// deployment is IN_PROGRESS.
	byFamily  map[string][]*service
	byCluster map[string]map[string]*service
	rolling   map[string]*service
	// clusters interns cluster ARNs: every cached service names one.
	clusters map[string]string

	// listing holds, for the first reconcile of each family never
	// reconciled, the family's revisions as the last account-wide listing
	// saw them (takeListing); touched are the families queued from outside
	// (an event) while a listing was under way (listings > 0): a listing may
	// predate what the event says, so they are not kept.
	listing  map[string]listedRevisions
	touched  map[string]bool
	listings int
}

// listedRevisions are a family's ACTIVE revisions as an account-wide
// listing saw them, newest first; all: the family has no more.
type listedRevisions struct {
	arns []string
	all  bool
}

// beginListing notes that an account-wide listing starts: the families
// queued from outside from now on are not taken from it (keepListing).
func (st *state) beginListing() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.listings == 0 {
		st.touched = map[string]bool{}
	}
	st.listings++
}

// keepListing ends a listing begun by beginListing and keeps of it (nil: it
// failed) the families never reconciled and not touched since it began,
// replacing what an older listing kept.
func (st *state) keepListing(families map[string]listedRevisions) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.listings--
	if families != nil {
		for fam := range families {
			if _, reconciled := st.families[fam]; reconciled || st.touched[fam] {
				delete(families, fam)
			}
		}
		st.listing = families
	}
	if st.listings == 0 {
		st.touched = nil
	}
}

// takeListing returns, once, the family's revisions as the last
// account-wide listing saw them, if it kept them.
func (st *state) takeListing(family string) (listedRevisions, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	l, ok := st.listing[family]
	if ok {
		delete(st.listing, family)
	}
	return l, ok
}

// dropListing forgets the family's listed revisions: something outside (an
// event) says the family changed, and its reconcile must list it afresh.
func (st *state) dropListing(family string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.listing, family)
	if st.touched != nil {
		st.touched[family] = true
	}
}

func newState() *state {
	return &state{
		revisions:    map[string]*revision{},
		isWaiting:    map[string]bool{},
		woken:        map[string]bool{},
		services:     map[string]*service{},
		families:     map[string]*familyState{},
		moved:        map[string]string{},
		pending:      map[string]pendingMove{},
		failed:       map[string]string{},
		forged:       map[string]bool{},
		svcRevisions: map[string]string{},
		said:         map[string]string{},
		contested:    map[string]string{},
		indexed:      map[string]bool{},
		byFamily:     map[string][]*service{},
		byCluster:    map[string]map[string]*service{},
		rolling:      map[string]*service{},
		clusters:     map[string]string{},
	}
}

// serviceRevision returns the task definition of a service revision.
func (st *state) serviceRevision(arn string) (string, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	td, ok := st.svcRevisions[arn]
	return td, ok
}

func (st *state) putServiceRevision(arn, taskDef string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.svcRevisions[arn] = taskDef
}

func (st *state) servicesOf(family string) []*service {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.byFamily[family])
}

// takeSwept returns the cached services of family when a service sweep read
// every one of them and no reconcile has used that read yet, and marks the
// read used: the first reconcile after a sweep need not describe again what
// the sweep has just described. Any other read of a service (a reconcile's,
// an event's, an UpdateService answer) replaces the cached copy with one
// that is not marked, so a reconcile that follows a rollout or an event
// describes its services itself. false when the family has no service.
func (st *state) takeSwept(family string) ([]*service, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	list := st.byFamily[family]
	if len(list) == 0 {
		return nil, false
	}
	for _, s := range list {
		if !s.swept {
			return nil, false
		}
	}
	for _, s := range list {
		s.swept = false
	}
	return slices.Clone(list), true
}

// putService caches what ECS said of a service; it replaces any
// reservation of a move of it (admit).
func (st *state) putService(s *service) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.setServiceLocked(s)
	delete(st.pending, s.arn)
}

func (st *state) dropService(arn string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.deleteServiceLocked(arn)
	delete(st.moved, arn)
}

// pendingMove is an admitted move of a service to a twin.
type pendingMove struct {
	cluster, family, twin string
}

// pacing is the admission rule of moves to twins.
type pacing struct {
	maxInFlight, perCluster int
	canary                  bool
	rampStart               int // 0: no ramp
}

// windowLocked is the bound on rollouts in flight now: maxInFlight, or the
// ramp's window under it.
func (st *state) windowLocked(p pacing) int {
	if p.rampStart <= 0 {
		return p.maxInFlight
	}
	if st.window == 0 {
		st.window = p.rampStart
	}
	return min(st.window, p.maxInFlight)
}

// rampDone moves the ramp's window after a rollout of a twin ended: one
// place more after a completed one (up to maxInFlight), back to the start
// after a failure. It returns the window before and after.
//
// Known defect (issue 21): the rollouts admitted before a brake widen the
// window again as they complete. Widening only while the rollouts in flight
// fit in the window stalled the ramp at its start in make bench's first
// install once rollouts.poll was scaled like the rollouts, so it is not
// done (the closing note of that stop says what was tried).
func (st *state) rampDone(p pacing, completed bool) (was, now int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	was = st.windowLocked(p)
	if p.rampStart <= 0 {
		return was, was
	}
	if !completed {
		st.window = p.rampStart
		return was, st.window
	}
	st.window = min(was+1, p.maxInFlight)
	return was, st.window
}

// placeFree tells, without taking it, whether pacing has a place for a move
// of s now (the canary rule aside, which admit applies), and if not why.
func (st *state) placeFree(s *service, p pacing) (ok bool, why string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	total, cluster := st.inFlightLocked(s.cluster)
	switch {
	case total >= p.maxInFlight:
		return false, "max_in_flight"
	case total >= st.windowLocked(p):
		return false, "ramp_window"
	case cluster >= p.perCluster:
		return false, "max_in_flight_per_cluster"
	}
	return true, ""
}

// wait adds family to those waiting for a place, once.
func (st *state) wait(family string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.isWaiting[family] {
		st.isWaiting[family] = true
		st.waiting = append(st.waiting, family)
	}
}

// waitingFor tells whether family waits for a place.
func (st *state) waitingFor(family string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.isWaiting[family]
}

// wakeWaiting takes, first come first, as many waiting families as pacing
// has places for now (at least one when any is free), for the caller to
// queue.
func (st *state) wakeWaiting(p pacing) []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	total, _ := st.inFlightLocked("")
	free := min(st.windowLocked(p), p.maxInFlight) - total - len(st.woken)
	if free <= 0 || len(st.waiting) == 0 {
		return nil
	}
	n := min(free, len(st.waiting))
	woken := slices.Clone(st.waiting[:n])
	st.waiting = slices.Delete(st.waiting, 0, n)
	for _, f := range woken {
		delete(st.isWaiting, f)
		st.woken[f] = true
	}
	return woken
}

// doneWaking ends the hold of a woken family on its place: its reconcile
// has ended, whether it took the place or not.
func (st *state) doneWaking(family string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.woken, family)
}

// inFlightLocked counts the rollouts of twins in flight: admitted moves not
// answered yet, and services whose primary deployment rolls out a twin; in
// all, and in cluster.
func (st *state) inFlightLocked(cluster string) (total, inCluster int) {
	total = len(st.pending)
	for _, m := range st.pending {
		if m.cluster == cluster {
			inCluster++
		}
	}
	for arn, o := range st.rolling {
		if _, reserved := st.pending[arn]; !reserved && st.twinInFlightLocked(o) {
			total++
			if o.cluster == cluster {
				inCluster++
			}
		}
	}
	return total, inCluster
}

// admit applies pacing to a move of s to twin: at most maxInFlight
// rollouts of twins in flight in total and perCluster per cluster, and,
// with canary, one service of the family at a time until one completed
// (twins are the family's current twins). An admitted move counts as in
// flight until release is called (the call failed or was not made) or the
// service is cached again. One lock for the count and the reservation, so
// that concurrent workers cannot both take the last place.
func (st *state) admit(s *service, family []*service, twins map[string]bool, p pacing, twin string) (ok bool, why string, release func()) {
	st.mu.Lock()
	defer st.mu.Unlock()
	total, cluster := st.inFlightLocked(s.cluster)
	no := func() {}
	if total >= p.maxInFlight {
		return false, "max_in_flight", no
	}
	if total >= st.windowLocked(p) {
		return false, "ramp_window", no
	}
	if cluster >= p.perCluster {
		return false, "max_in_flight_per_cluster", no
	}
	if p.canary && !st.canaryDoneLocked(family, twins) {
		for _, o := range family {
			if _, reserved := st.pending[o.arn]; reserved {
				return false, "canary_in_flight", no
			}
			if cur := st.services[o.arn]; cur != nil && st.twinInFlightLocked(cur) {
				return false, "canary_in_flight", no
			}
		}
	}
	st.pending[s.arn] = pendingMove{cluster: s.cluster, family: s.family(), twin: twin}
	delete(st.woken, s.family())
	if st.isWaiting[s.family()] {
		delete(st.isWaiting, s.family())
		st.waiting = slices.DeleteFunc(st.waiting, func(f string) bool { return f == s.family() })
	}
	return true, "", func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		delete(st.pending, s.arn)
	}
}

// canaryDoneLocked: a service of the family completed a rollout of one of
// its current twins.
func (st *state) canaryDoneLocked(family []*service, twins map[string]bool) bool {
	for _, o := range family {
		if cur := st.services[o.arn]; cur != nil {
			o = cur // moved by this reconcile: the cache has its new deployment
		}
		if d, ok := primary(o); ok && twins[d.taskDef] && d.rolloutState == types.DeploymentRolloutStateCompleted {
			return true
		}
	}
	return false
}

// twinInFlightLocked reports whether the service's primary deployment is a
// rollout of one of our twins that has no outcome yet.
func (st *state) twinInFlightLocked(s *service) bool {
	d, ok := primary(s)
	if !ok || d.rolloutState != types.DeploymentRolloutStateInProgress {
		return false
	}
	rev := st.revisions[d.taskDef]
	return rev != nil && rev.class.Kind == patch.KindTwin
}

// cachedRevision returns the cached revision of arn, or nil.
func (st *state) cachedRevision(arn string) *revision {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.revisions[arn]
}

// putRevision caches a revision (see putRevisionLocked).
func (st *state) putRevision(r *revision) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.putRevisionLocked(r)
}

// dropRevision forgets a revision (a deregistered duplicate).
func (st *state) dropRevision(arn string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.revisions, arn)
}

// twinsOf returns the cached revisions of family whose markers claim key
// (the cache may hold twins older than the page a reconcile listed).
func (st *state) twinsOf(family string, key twinKey) []*revision {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []*revision
	for _, r := range st.revisions {
		if r.family == family && r.class.Kind == patch.KindTwin && r.class.SourceRevision == key.source && r.class.Spec == key.spec {
			out = append(out, r)
		}
	}
	return out
}

// firstForged reports whether arn is reported as a forged twin for the
// first time by this process (the verdict on an immutable content holds).
func (st *state) firstForged(arn string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.forged[arn] {
		return false
	}
	st.forged[arn] = true
	return true
}

// failedMark returns the failure code AWS holds for a twin, as read or written.
func (st *state) failedMark(arn string) (string, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	code, ok := st.failed[arn]
	return code, ok
}

// setFailed records a failure mark that AWS has (written or read).
func (st *state) setFailed(arn, code string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.failed[arn] = code
}

// movedTo and setMoved: the twin this process moved a service to, so that
// the rollout's outcome is counted once ("" forgets it). Never a reason
// for a decision: rollbacks are read from ECS.
func (st *state) movedTo(service string) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.moved[service]
}

func (st *state) setMoved(service, twin string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if twin == "" {
		delete(st.moved, service)
	} else {
		st.moved[service] = twin
	}
}

// setIndexed and allIndexed: which clusters a service sweep has indexed.
func (st *state) setIndexed(cluster string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.indexed[cluster] = true
}

func (st *state) allIndexed(clusters []string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, c := range clusters {
		if !st.indexed[c] {
			return false
		}
	}
	return true
}

// keepServicesOf drops the cached services of cluster that are not listed.
func (st *state) keepServicesOf(cluster string, listed map[string]bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, s := range st.servicesInClusterLocked(cluster) {
		if !listed[s.arn] {
			st.deleteServiceLocked(s.arn)
		}
	}
}

// cacheView reads the cache for eachService's callback, under its lock.
type cacheView struct{ st *state }

func (v cacheView) revision(arn string) *revision { return v.st.revisions[arn] }

func (v cacheView) family(name string) (*familyState, bool) {
	f, ok := v.st.families[name]
	return f, ok
}

// contested is the twin another writer keeps moving the service off, if any.
func (v cacheView) contested(service string) string { return v.st.contested[service] }

func (v cacheView) failed(arn string) (string, bool) {
	code, ok := v.st.failed[arn]
	return code, ok
}

// eachService calls f for every cached service, with a view of the cache,
// under the cache's lock: f must be quick and must not call the controller.
func (st *state) eachService(f func(*service, cacheView)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	v := cacheView{st}
	for _, s := range st.services {
		f(s, v)
	}
}

// setServiceLocked puts s in the cache and its indexes. st.mu is held.
// Its cluster and task definition ARNs are shared with the cache's copies
// (the same few strings, named by thousands of services).
func (st *state) setServiceLocked(s *service) {
	st.deleteServiceLocked(s.arn)
	if c, ok := st.clusters[s.cluster]; ok {
		s.cluster = c
	} else {
		st.clusters[s.cluster] = s.cluster
	}
	s.taskDef = st.shareArnLocked(s.taskDef)
	for i := range s.deployments {
		if d := &s.deployments[i]; d.taskDef == s.taskDef {
			d.taskDef = s.taskDef
		} else {
			d.taskDef = st.shareArnLocked(d.taskDef)
		}
	}
	st.services[s.arn] = s
	fam := s.family()
	st.byFamily[fam] = append(st.byFamily[fam], s)
	index(st.byCluster, s.cluster, s)
	if d, ok := primary(s); ok && d.rolloutState == types.DeploymentRolloutStateInProgress {
		st.rolling[s.arn] = s
	}
}

// shareArnLocked returns the cache's copy of a task definition ARN: the
// cached revision's, or another service's of the family, or arn.
func (st *state) shareArnLocked(arn string) string {
	if r := st.revisions[arn]; r != nil {
		return r.arn
	}
	for _, o := range st.byFamily[ecsarn.Family(arn)] {
		if o.taskDef == arn {
			return o.taskDef
		}
	}
	return arn
}

// putRevisionLocked caches a revision, and points the services that name it
// at its copy of the ARN (one string for them all). Those services are
// replaced by copies, never edited: a reconcile may be reading them.
func (st *state) putRevisionLocked(r *revision) {
	st.revisions[r.arn] = r
	var names []*service
	for _, s := range st.byFamily[r.family] {
		if s.taskDef == r.arn || slices.ContainsFunc(s.deployments, func(d deployment) bool { return d.taskDef == r.arn }) {
			names = append(names, s)
		}
	}
	for _, s := range names {
		cp := *s
		cp.deployments = slices.Clone(s.deployments)
		st.setServiceLocked(&cp) // shares the ARN with the cached revision
	}
}

// deleteServiceLocked removes a service from the cache and its indexes.
func (st *state) deleteServiceLocked(arn string) {
	old, ok := st.services[arn]
	if !ok {
		return
	}
	delete(st.services, arn)
	fam := old.family()
	if list := st.byFamily[fam]; len(list) > 0 {
		if i := slices.Index(list, old); i >= 0 {
			list = slices.Delete(list, i, i+1)
		}
		if len(list) == 0 {
			delete(st.byFamily, fam)
		} else {
			st.byFamily[fam] = list
		}
	}
	unindex(st.byCluster, old.cluster, arn)
	delete(st.rolling, arn)
	delete(st.pending, arn)
}

// servicesInClusterLocked lists the cached services of a cluster.
func (st *state) servicesInClusterLocked(cluster string) []*service {
	out := make([]*service, 0, len(st.byCluster[cluster]))
	for _, s := range st.byCluster[cluster] {
		out = append(out, s)
	}
	return out
}

func index(m map[string]map[string]*service, key string, s *service) {
	byArn := m[key]
	if byArn == nil {
		byArn = map[string]*service{}
		m[key] = byArn
	}
	byArn[s.arn] = s
}

func unindex(m map[string]map[string]*service, key, arn string) {
	if byArn := m[key]; byArn != nil {
		delete(byArn, arn)
		if len(byArn) == 0 {
			delete(m, key)
		}
	}
}

func (st *state) family(name string) (*familyState, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	f, ok := st.families[name]
	return f, ok
}

func (st *state) setFamily(name string, f *familyState) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.families[name] = f
}

// serviceFromSDK converts what DescribeServices says.
func serviceFromSDK(s types.Service) *service {
	// The SDK's deserializer cuts strings out of shared blocks: each string
	// kept would keep its whole response alive, so the cache keeps copies
	// (or the constants they equal, or parts of other copies).
	arn := strings.Clone(aws.ToString(s.ServiceArn))
	name := aws.ToString(s.ServiceName)
	if strings.HasSuffix(arn, "/"+name) {
		name = arn[len(arn)-len(name):]
	} else {
		name = strings.Clone(name)
	}
	out := &service{
		arn:         arn,
		cluster:     strings.Clone(aws.ToString(s.ClusterArn)),
		name:        name,
		taskDef:     strings.Clone(aws.ToString(s.TaskDefinition)),
		status:      constant(aws.ToString(s.Status)),
		deployments: trimDeployments(s.Deployments),
		controller:  types.DeploymentControllerTypeEcs,
	}
	if s.DeploymentController != nil {
		out.controller = types.DeploymentControllerType(constant(string(s.DeploymentController.Type)))
	}
	// ECS keeps taskDefinition equal to the PRIMARY deployment's; it is
	// read from the service itself, which moto also keeps right.
	return out
}

// deployment is what the controller reads of a service's deployment: a
// types.Deployment is near a kilobyte, times every deployment of every
// service in the account.
type deployment struct {
	status, taskDef string
	rolloutState    types.DeploymentRolloutState
	// reason is the RolloutStateReason of a FAILED rollout (the one logged).
	reason    string
	createdAt time.Time
}

// trimDeployments keeps of each deployment what the controller reads; the
// rest (network configuration, capacity providers, counts) would only
// weigh on the cache of every service in the account.
func trimDeployments(in []types.Deployment) []deployment {
	out := make([]deployment, len(in))
	for i, d := range in {
		out[i] = deployment{
			status:       constant(aws.ToString(d.Status)),
			taskDef:      strings.Clone(aws.ToString(d.TaskDefinition)),
			rolloutState: types.DeploymentRolloutState(constant(string(d.RolloutState))),
			createdAt:    aws.ToTime(d.CreatedAt),
		}
		if d.RolloutState == types.DeploymentRolloutStateFailed {
			out[i].reason = strings.Clone(aws.ToString(d.RolloutStateReason))
		}
	}
	return out
}

// constants are the values of the enumerations the cache keeps for every
// service and deployment.
var constants = func() map[string]string {
	m := map[string]string{}
	for _, v := range []string{"ACTIVE", "DRAINING", "INACTIVE", "PRIMARY"} {
		m[v] = v
	}
	for _, v := range types.DeploymentRolloutState("").Values() {
		m[string(v)] = string(v)
	}
	for _, v := range types.DeploymentControllerType("").Values() {
		m[string(v)] = string(v)
	}
	return m
}()

// constant returns the shared copy of a known enumeration value, or a copy
// of s.
func constant(s string) string {
	if c, ok := constants[s]; ok {
		return c
	}
	return strings.Clone(s)
}

// cloneTags copies tags out of the SDK's shared string blocks, into one
// block of their own.
func cloneTags(in []types.Tag) []types.Tag {
	if len(in) == 0 {
		return nil
	}
	var b strings.Builder
	for _, t := range in {
		b.WriteString(aws.ToString(t.Key))
		b.WriteString(aws.ToString(t.Value))
	}
	block := b.String()
	strs := make([]string, 2*len(in))
	out := make([]types.Tag, len(in))
	for i, t := range in {
		if t.Key != nil {
			strs[2*i], block = block[:len(*t.Key)], block[len(*t.Key):]
			out[i].Key = &strs[2*i]
		}
		if t.Value != nil {
			strs[2*i+1], block = block[:len(*t.Value)], block[len(*t.Value):]
			out[i].Value = &strs[2*i+1]
		}
	}
	return out
}

// revisionNumber returns the revision number of a task definition ARN.
func revisionNumber(arn string) int32 {
	i := strings.LastIndexByte(arn, ':')
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseInt(arn[i+1:], 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// arnOfRevision replaces the revision number of a task definition ARN.
func arnOfRevision(arn string, n int32) string {
	i := strings.LastIndexByte(arn, ':')
	if i < 0 {
		return arn
	}
	return arn[:i+1] + strconv.Itoa(int(n))
}

// revision returns the content of a revision: from the cache, or from
// DescribeTaskDefinition with its tags (the only time a revision is
// described). fresh is true when the tags were read just now.
//
// Callers that want the same uncached revision at once share one
// DescribeTaskDefinition (the restart's prefetch and a reconcile, two
// reconciles of families whose services run it): a revision is described
// once per process.
func (c *Controller) revision(ctx context.Context, arn string) (rev *revision, fresh bool, err error) {
	return c.revisionFor(ctx, arn, false)
}

// revisionFor is revision; prefetch marks a revision described by the
// restart's prefetch (revision.prefetched).
func (c *Controller) revisionFor(ctx context.Context, arn string, prefetch bool) (rev *revision, fresh bool, err error) {
	c.st.mu.Lock()
	rev, ok := c.st.revisions[arn]
	c.st.mu.Unlock()
	if ok {
		return rev, false, nil
	}
	v, err, _ := c.describing.Do(arn, func() (any, error) {
		return c.describeRevision(ctx, arn, prefetch)
	})
	if err != nil {
		return nil, false, err
	}
	return v.(*revision), true, nil
}

// describeRevision describes a revision with its tags and caches it.
func (c *Controller) describeRevision(ctx context.Context, arn string, prefetch bool) (*revision, error) {
	c.st.mu.Lock()
	cached, ok := c.st.revisions[arn]
	c.st.mu.Unlock()
	if ok { // cached between the look and the call
		return cached, nil
	}
	out, err := c.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(arn),
		Include:        []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil {
		return nil, fmt.Errorf("describe task definition %s: %w", arn, err)
	}
	td := out.TaskDefinition
	if td == nil {
		return nil, fmt.Errorf("describe task definition %s: no task definition in the answer", arn)
	}
	tags := cloneTags(out.Tags)
	rev, err := newRevision(td, tags, patch.Classify(td, tags, nil, patch.Options{TagPrefix: c.o.TagPrefix}))
	if err != nil {
		return nil, err
	}
	rev.prefetched = prefetch
	c.st.mu.Lock()
	c.st.putRevisionLocked(rev)
	if code, ok := patch.TagValue(out.Tags, c.o.TagPrefix+patch.KeyFailed); ok && rev.class.Kind == patch.KindTwin {
		c.st.failed[rev.arn] = code
	}
	c.st.mu.Unlock()
	return rev, nil
}

// refreshTags re-reads a revision's tags (they can change) and updates the
// cache.
func (c *Controller) refreshTags(ctx context.Context, rev *revision) ([]types.Tag, error) {
	out, err := c.ecs.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(rev.arn)})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", rev.arn, err)
	}
	tags := cloneTags(out.Tags)
	c.st.mu.Lock()
	rev.tags = tags
	c.st.mu.Unlock()
	return tags, nil
}

// sayOnce records value as what is said of topic for family and reports
// whether it differs from what was said last: the caller logs only then.
func (s *state) sayOnce(family, topic, value string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := family + "\x00" + topic
	if v, ok := s.said[k]; ok && v == value {
		return false
	}
	s.said[k] = value
	return true
}

// setContested records that the service is contested for twin ("": not).
func (s *state) setContested(service, twin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if twin == "" {
		delete(s.contested, service)
		return
	}
	s.contested[service] = twin
}
