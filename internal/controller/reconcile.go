package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/ecsarn"
	"github.com/ecs-sidecar/reconciler/internal/patch"
	"github.com/ecs-sidecar/reconciler/internal/policy"
)

// Reasons a service is left alone, as log fields and metric label values.
const (
	SkipDeploymentController = "deployment_controller" // CODE_DEPLOY or EXTERNAL: UpdateService cannot set a task definition
	SkipInactiveService      = "service_inactive"
	SkipTwinFailed           = "twin_failed"
	SkipRolloutInProgress    = "rollout_in_progress"
	SkipRefused              = "refused"
	SkipCovered              = "covered"
	SkipSourceInactive       = "source_inactive"
	SkipContested            = "contested" // another writer keeps moving it back to its source (ContestedAfter)
)

// Failure codes written in the failed tag of a twin (codes, never text).
const (
	FailedRolledBack    = "rolled_back"
	FailedRolloutFailed = "rollout_failed"
)

// maxRevisionsPerList is the page of ListTaskDefinitions a reconcile reads.
const maxRevisionsPerList = 100

// plan is what one reconcile found and decided, for logs and the sweeps.
type plan struct {
	family string
	// skipped are the services left alone on purpose, "cluster/service:
	// reason" (Result.Skipped).
	skipped []string
	revs    []*revision // ACTIVE revisions of the family, newest first, as far as read
	// seen are the revisions carrying twin markers, by the key the markers
	// claim. Markers can be written by anyone with TagResource, so a seen
	// twin is a candidate only: ensureTwin keeps those whose content is what
	// the patch engine makes of the source today.
	seen map[twinKey][]*revision
	// twins is the canonical twin of each (source, spec) among the genuine
	// ones: the lowest revision, so that replicas racing to register agree
	// on it; dups are the other genuine twins of the same key (registered
	// by a race, or twice when a response was lost and the call retried).
	twins map[twinKey]*revision
	dups  map[string]*revision
	// restored are the deregistered sources this reconcile registered
	// again (source ARN -> the new revision): one registration serves
	// every service that returns to that source.
	restored map[string]string
	newest   *revision // newest ACTIVE source revision
	deciding *revision // newest source revision carrying the inject tag
	services []*service
	// reused: services are the service sweep's read, not this reconcile's
	// (refreshServices); a write that depends on them reads them again.
	reused   bool
	decision policy.Decision
	mode     string // the global mode, or the matching rule's
	// listed are the family's ACTIVE revisions as listed, newest first;
	// listedAll is true when the listing was complete; fromListing when
	// they are an account-wide listing's (takeListing).
	listed      []string
	listedAll   bool
	fromListing bool
	// registered are the twins this reconcile registered.
	registered map[string]bool
	// actions are the writes this reconcile made or (audit mode) planned.
	actions []Action
	// fence is the family's lease as the reconcile started (with leases).
	fence Fence
}

type twinKey struct {
	source int32
	spec   string
}

// Reconcile brings one family to the invariant. It reads state from AWS
// (through the cache for immutable revisions), never from an event. Its
// Result says when to look again; its error is one a retry may fix, or a
// *TerminalError that none can. A task definition that cannot be
// instrumented is a decision, logged and kept, not an error.
func (c *Controller) Reconcile(ctx context.Context, family string) (Result, error) {
	log := c.log.With("family", family)
	defer c.st.doneWaking(family)
	fence, err := c.leaseFence(family)
	if err != nil {
		return Result{}, err
	}
	services, reused, err := c.refreshServices(ctx, family)
	if err != nil {
		return Result{}, err
	}
	p := &plan{family: family, fence: fence, services: services, reused: reused, seen: map[twinKey][]*revision{}, twins: map[twinKey]*revision{}, dups: map[string]*revision{}, restored: map[string]string{}, registered: map[string]bool{}}
	if err := c.readRevisions(ctx, p); err != nil {
		return Result{}, err
	}
	p.decision = c.decide(p)
	st := &familyState{instrument: p.decision.Instrument, reason: string(p.decision.Reason), profile: p.decision.Profile, owner: OwnerNone}
	if len(p.revs) > 0 {
		st.newest = p.revs[0].arn
		st.owner = ownerOf(p.revs[0].tags, c.o.OwnerTag)
	}
	if p.newest != nil {
		st.newestSource = p.newest.arn
		st.owner = ownerOf(p.newest.tags, c.o.OwnerTag)
	}
	switch {
	case p.deciding != nil:
		st.deciding = p.deciding.arn
		st.decidingTags = c.optInTags(p.deciding.tags)
	case p.newest != nil:
		// No revision carries the inject tag: the sweep watches the newest
		// source's tags (read fresh by the walk), against what they are now.
		// Left "", they never matched, and every family without the tag was
		// queued again at every family sweep.
		st.decidingTags = c.optInTags(p.newest.tags)
	}
	// One line per change of the family's decision, in every mode: what
	// a reconcile that reaches the same answer again would repeat is not
	// said again (the metrics count every reconcile).
	if c.st.sayOnce(family, "decision", fmt.Sprint(p.decision.Instrument, p.decision.Reason, p.decision.Profile, p.mode, st.owner)) {
		log.Info("decision", "instrument", p.decision.Instrument, "reason", p.decision.Reason, "profile", p.decision.Profile,
			"mode", string(p.mode), "owner", st.owner, "services", len(p.services))
	}
	var res Result
	if !p.decision.Instrument {
		err = c.optedOut(ctx, log, p, st)
	} else {
		res, err = c.instrument(ctx, log, p, st)
	}
	c.st.setFamily(family, st)
	if err == nil {
		err = c.cleanUp(ctx, log, p)
	}
	res.Actions, res.Skipped = p.actions, p.skipped
	return res, err
}

// cleanUp deregisters what deregistrations lists. Which twins are unused
// is what the services say: when they are the sweep's read, they are read
// again first, and the list made again from that.
func (c *Controller) cleanUp(ctx context.Context, log *slog.Logger, p *plan) error {
	list := deregistrations(p, c.o.DeregisterUnusedTwins, c.st.cachedRevision)
	if len(list) > 0 && p.reused && p.mode != policy.ModeAudit {
		services, err := c.describeFamily(ctx, p.family)
		if err != nil {
			return err
		}
		p.services, p.reused = services, false
		list = deregistrations(p, c.o.DeregisterUnusedTwins, c.st.cachedRevision)
	}
	var errs []error
	for _, a := range list {
		_, err := c.write(ctx, p, log, a, func(ctx context.Context, _ *Action) error {
			log.Info("deregistering a twin", "twin", revisionNumber(a.Twin), "source", revisionNumber(a.Source), "reason", a.Reason)
			_, err := c.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(a.Twin)})
			if err != nil && !(a.Reason == ReasonDuplicate && cloud.IsInvalidInput(err)) {
				return fmt.Errorf("deregister twin %s: %w", a.Twin, err)
			}
			if a.Reason == ReasonDuplicate {
				c.st.dropRevision(a.Twin)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deregistrations lists, from what a reconcile observed, the twins to
// deregister: the duplicate twins (a race or a retried registration made
// them) that no service runs or rolls to or from, since their canonical
// twin is identical; and, with unused, the twins of deregistered sources
// that no service runs (only when the family's listing was complete).
// cached reads a revision from the cache.
func deregistrations(p *plan, unused bool, cached func(string) *revision) []Action {
	used := map[string]bool{}
	for _, s := range p.services {
		for _, d := range s.deployments {
			used[d.taskDef] = true
		}
		used[s.taskDef] = true
	}
	var out []Action
	for _, arn := range slices.Sorted(maps.Keys(p.dups)) {
		dup := p.dups[arn]
		canonical := p.twins[twinKey{dup.class.SourceRevision, dup.class.Spec}]
		if used[arn] || canonical == nil || dup.inactive() {
			continue
		}
		out = append(out, Action{Kind: ActionDeregisterTwin, Family: p.family, Source: arnOfRevision(arn, dup.class.SourceRevision), Twin: arn, Reason: ReasonDuplicate})
	}
	out = append(out, supersededDuplicates(p, used)...)
	if !unused || !p.listedAll {
		return out
	}
	active := make(map[string]bool, len(p.listed))
	for _, arn := range p.listed {
		active[arn] = true
	}
	planned := make(map[string]bool, len(out))
	for _, a := range out {
		planned[a.Twin] = true
	}
	for _, arn := range p.listed {
		rev := cached(arn)
		if rev == nil || rev.class.Kind != patch.KindTwin || used[arn] || planned[arn] {
			continue
		}
		if source := arnOfRevision(arn, rev.class.SourceRevision); !active[source] {
			out = append(out, Action{Kind: ActionDeregisterTwin, Family: p.family, Source: source, Twin: arn})
		}
	}
	return out
}

// refreshServices describes the services known to run a revision of the
// family, by ten per cluster, and updates the index. When a service sweep
// has just described every one of them (and no reconcile used that read
// yet), it takes the sweep's read instead (reused true): the restart's
// first reconciles cost no DescribeServices. The writes that change what
// those reads say re-read first: a move re-reads its service (moveService),
// so does a return to the source, and deregistrations re-read the family's
// services (cleanUp).
func (c *Controller) refreshServices(ctx context.Context, family string) (services []*service, reused bool, err error) {
	if cached, ok := c.st.takeSwept(family); ok {
		out := slices.DeleteFunc(cached, func(s *service) bool { return s.family() != family })
		sort.Slice(out, func(i, j int) bool { return out[i].arn < out[j].arn })
		return out, true, nil
	}
	out, err := c.describeFamily(ctx, family)
	return out, false, err
}

// describeFamily describes the cached services of family, by ten per
// cluster.
func (c *Controller) describeFamily(ctx context.Context, family string) ([]*service, error) {
	known := c.st.servicesOf(family)
	byCluster := map[string][]string{}
	for _, s := range known {
		byCluster[s.cluster] = append(byCluster[s.cluster], s.arn)
	}
	var out []*service
	for _, cluster := range slices.Sorted(maps.Keys(byCluster)) {
		fresh, err := c.describeServices(ctx, cluster, byCluster[cluster], false)
		if err != nil {
			return nil, err
		}
		for _, s := range fresh {
			if s.family() == family {
				out = append(out, s)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].arn < out[j].arn })
	return out, nil
}

// describeServices describes services of one cluster by ten, updating the
// index: services that are gone are dropped from it. swept marks the reads
// as a service sweep's (see takeSwept).
func (c *Controller) describeServices(ctx context.Context, cluster string, arns []string, swept bool) ([]*service, error) {
	var out []*service
	for start := 0; start < len(arns); start += 10 {
		batch := arns[start:min(start+10, len(arns))]
		resp, err := c.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: batch})
		if err != nil {
			return nil, fmt.Errorf("describe services of %s: %w", cluster, err)
		}
		for _, f := range resp.Failures {
			if aws.ToString(f.Reason) == "MISSING" {
				c.st.dropService(aws.ToString(f.Arn))
			}
		}
		for _, s := range resp.Services {
			svc := serviceFromSDK(s)
			if svc.status != "ACTIVE" {
				c.st.dropService(svc.arn)
				continue
			}
			svc.swept = swept
			c.st.putService(svc)
			out = append(out, svc)
		}
	}
	return out, nil
}

// readRevisions lists the family's ACTIVE revisions newest first and reads
// as many as the decision needs: down to the newest source revision that
// carries the inject tag, and to every source revision a service runs.
//
// The first reconcile of a family takes its revisions from the account-wide
// listing the family sweep made, when it kept them (takeListing): no
// ListTaskDefinitions per family at a restart. An event of the family since
// that listing began made it list afresh (Enqueue); a revision registered
// later, whose event was lost, is found by the next family sweep (a newer
// newest revision), as for any reconcile.
func (c *Controller) readRevisions(ctx context.Context, p *plan) error {
	if l, ok := c.st.takeListing(p.family); ok {
		p.listed, p.listedAll, p.fromListing = slices.Clone(l.arns), l.all, true
	} else {
		out, err := c.ecs.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{
			FamilyPrefix: aws.String(p.family),
			Status:       types.TaskDefinitionStatusActive,
			Sort:         types.SortOrderDesc,
			MaxResults:   aws.Int32(maxRevisionsPerList),
		})
		if err != nil {
			return fmt.Errorf("list revisions of %s: %w", p.family, err)
		}
		p.listedAll = out.NextToken == nil
		for _, arn := range out.TaskDefinitionArns {
			if ecsarn.Family(arn) == p.family {
				p.listed = append(p.listed, arn)
			}
		}
	}
	// Newest first, whatever order the listing used.
	sort.SliceStable(p.listed, func(i, j int) bool { return revisionNumber(p.listed[i]) > revisionNumber(p.listed[j]) })
	// The sources the services run must be reached by the walk, so that
	// their twins (always newer than their source) are seen too.
	need := map[int32]bool{}
	fresh := map[string]bool{} // revisions whose tags this reconcile read
	for _, s := range p.services {
		rev, described, err := c.revision(ctx, s.taskDef)
		if err != nil {
			return err
		}
		fresh[rev.arn] = fresh[rev.arn] || described || p.fromListing && rev.prefetched
		if rev.class.Kind == patch.KindTwin {
			need[rev.class.SourceRevision] = true
			p.twinSeen(rev)
		} else {
			need[rev.number] = true
		}
	}
	injectKey := c.o.TagPrefix + patch.KeyInject
	for _, arn := range p.listed { // the prefix matched longer names too: filtered
		rev, described, err := c.revision(ctx, arn)
		if err != nil {
			return err
		}
		fresh[rev.arn] = fresh[rev.arn] || described || p.fromListing && rev.prefetched
		p.revs = append(p.revs, rev)
		if rev.class.Kind == patch.KindTwin {
			p.twinSeen(rev)
			continue
		}
		delete(need, rev.number)
		if p.newest == nil {
			p.newest = rev
		}
		if p.deciding == nil {
			tags := rev.tags
			if !fresh[rev.arn] {
				if tags, err = c.refreshTags(ctx, rev); err != nil {
					return err
				}
				fresh[rev.arn] = true
			}
			if _, ok := patch.TagValue(tags, injectKey); ok {
				p.deciding = rev
			}
		}
		if p.deciding != nil && len(need) == 0 {
			break
		}
	}
	return nil
}

// supersededDuplicates are the duplicates among the twins the walk saw of
// keys this reconcile instrumented no source for (twins of superseded
// sources, which no service runs: a retried registration, a kill or a
// second replica made them while the source was current). With no source
// instrumented there is no expected digest; the same markers and the same
// content make them duplicates, so any one will do and the best is kept.
// A forgery's content differs: it is grouped apart and left alone.
func supersededDuplicates(p *plan, used map[string]bool) []Action {
	keys := make([]twinKey, 0, len(p.seen))
	for k := range p.seen {
		if _, handled := p.twins[k]; !handled && len(p.seen[k]) > 1 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b twinKey) int {
		if a.source != b.source {
			return int(a.source - b.source)
		}
		return strings.Compare(a.spec, b.spec)
	})
	var out []Action
	for _, k := range keys {
		byDigest := map[string][]*revision{}
		for _, r := range p.seen[k] {
			if r.digest != "" && !r.inactive() {
				byDigest[r.digest] = append(byDigest[r.digest], r)
			}
		}
		for _, d := range slices.Sorted(maps.Keys(byDigest)) {
			group := byDigest[d]
			best := group[0]
			for _, r := range group[1:] {
				if better(r, best) {
					best = r
				}
			}
			slices.SortFunc(group, func(a, b *revision) int { return int(a.number - b.number) })
			for _, r := range group {
				if r != best && !used[r.arn] {
					out = append(out, Action{Kind: ActionDeregisterTwin, Family: p.family, Source: arnOfRevision(r.arn, k.source), Twin: r.arn, Reason: ReasonDuplicate})
				}
			}
		}
	}
	return out
}

func (p *plan) twinSeen(rev *revision) {
	key := twinKey{rev.class.SourceRevision, rev.class.Spec}
	if !slices.ContainsFunc(p.seen[key], func(r *revision) bool { return r.arn == rev.arn }) {
		p.seen[key] = append(p.seen[key], rev)
	}
}

// chooseTwin keeps, of the candidates for key, the genuine twins (content
// digest as expected): the canonical one by better, the others as
// duplicates. It returns the candidates that carry the markers but not the
// content: forged (or retagged), never deployed, never canonical, never a
// reason to deregister anything.
func (p *plan) chooseTwin(key twinKey, candidates []*revision, expected string) (forged []*revision) {
	for _, r := range candidates {
		if r.digest != expected {
			forged = append(forged, r)
			continue
		}
		have, ok := p.twins[key]
		switch {
		case !ok:
			p.twins[key] = r
		case have.arn == r.arn:
		case better(r, have):
			p.twins[key] = r
			p.dups[have.arn] = have
			delete(p.dups, r.arn)
		default:
			p.dups[r.arn] = r
		}
	}
	return forged
}

// better says whether twin a is preferred to b as the canonical twin of
// their key: an ACTIVE one (a deregistered revision cannot be deployed),
// then the lowest revision.
func better(a, b *revision) bool {
	ia, ib := a.inactive(), b.inactive()
	if ia != ib {
		return ib
	}
	return a.number < b.number
}

// optInTags renders the tags that decide opt-in, to notice their change.
func (c *Controller) optInTags(tags []types.Tag) string {
	inject, _ := patch.TagValue(tags, c.o.TagPrefix+patch.KeyInject)
	profile, _ := patch.TagValue(tags, c.o.TagPrefix+patch.KeyProfile)
	return inject + "\x00" + profile
}

// decide applies the policy to what was read.
func (c *Controller) decide(p *plan) policy.Decision {
	in := policy.Input{Family: p.family, TagPrefix: c.o.TagPrefix, Rules: c.o.Rules, TagProfiles: c.o.TagProfiles}
	// The revisions read, newest first, down to the deciding one: their
	// tags were read by this reconcile.
	for _, r := range p.revs {
		in.Revisions = append(in.Revisions, policy.Revision{Number: r.number, Tags: tagMap(r.tags), Twin: r.class.Kind == patch.KindTwin})
		if r == p.deciding {
			break
		}
	}
	for _, s := range p.services {
		in.Clusters = append(in.Clusters, clusterName(s.cluster))
	}
	d := policy.Decide(in)
	if d.Profile == "" {
		d.Profile = c.o.DefaultProfile
	}
	if d.RefusedProfile != "" {
		// Whoever may tag a revision must not choose, say, a plaintext-token
		// profile: said once, when the decision changes.
		lvl := slog.LevelDebug
		if prev, ok := c.st.family(p.family); !ok || prev.reason != string(d.Reason) {
			lvl = slog.LevelWarn
		}
		c.log.Log(context.Background(), lvl, "profile tag names a profile that tags may not pick; using the policy's or the default profile",
			"family", p.family, "tag_profile", d.RefusedProfile, "profile", d.Profile, "rule", d.Rule, "revision", d.Revision)
	}
	p.mode = c.o.Mode
	if d.Mode != "" {
		p.mode = d.Mode
	}
	if p.mode == policy.ModeRemove {
		// Uninstalling: every family goes back to its sources.
		d.Instrument, d.Reason = false, ReasonModeRemove
	}
	if c.o.DryRun {
		p.mode = policy.ModeAudit
	}
	return d
}

// instrument registers the twins the family needs and moves its services.
func (c *Controller) instrument(ctx context.Context, log *slog.Logger, p *plan, st *familyState) (Result, error) {
	profile, ok := c.o.Profile(p.decision.Profile)
	if !ok {
		// Config validation prevents this; a tag naming an unknown profile does not.
		log.Warn("family opts in with an unknown profile; nothing done", "profile", p.decision.Profile, "reason", p.decision.Reason)
		st.instrument = false
		st.reason = "unknown_profile"
		return Result{}, nil
	}
	// The sources to instrument: each one a service runs, and the newest
	// (so that RunTask by family name runs instrumented). The newest goes
	// last, so that its twin ends up as the family's latest revision.
	sources := map[int32]*revision{}
	for _, s := range p.services {
		src, err := c.sourceOf(ctx, p, s)
		if err != nil {
			return Result{}, err
		}
		if src != nil {
			sources[src.number] = src
		}
	}
	if p.newest != nil {
		sources[p.newest.number] = p.newest
	}
	nums := make([]int32, 0, len(sources))
	for n := range sources {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	if p.newest != nil {
		nums = slices.DeleteFunc(nums, func(n int32) bool { return n == p.newest.number })
		nums = append(nums, p.newest.number)
	}

	twinOf := map[int32]*revision{}
	var errs []error
	for _, n := range nums {
		src := sources[n]
		twin, refused, err := c.ensureTwin(ctx, log, p, profile, src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if refused != "" {
			st.ok.add(src.arn) // services may stay on it
			st.refused.set(src.arn, refused)
			continue
		}
		twinOf[n] = twin
		if !twin.planned {
			st.twinOf.set(src.arn, twin.arn)
			st.ok.add(twin.arn)
			if twin.number > revisionNumber(st.newest) {
				st.newest = twin.arn // registered now: the family sweep will list it newest
			}
		}
	}
	current := map[string]bool{}
	for _, t := range twinOf {
		current[t.arn] = true
	}
	again := false   // a rollout is under way or a move was deferred: look again later
	rolling := false // a rollout of the family is under way
	for _, s := range p.services {
		slog := log.With("cluster", clusterName(s.cluster), "service", s.name)
		f, err := c.observeService(ctx, p, s, twinOf)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		next := decideService(f)
		if next.kind == stepReadHistory {
			if f.history, f.reversions, err = c.readHistory(ctx, s, f.target); err != nil {
				errs = append(errs, err)
				continue
			}
			next = decideService(f)
		}
		m, err := c.applyStep(ctx, slog, p, s, next, current)
		if err != nil {
			errs = append(errs, err)
		}
		if next.kind == stepLeave && next.reason != "" && next.reason != SkipCovered && next.reason != SkipRefused {
			p.skipped = append(p.skipped, clusterName(s.cluster)+"/"+s.name+": "+next.reason)
		}
		switch m {
		case moveLeft:
			// Left where it is on purpose: the sweeps need not queue it again.
			st.ok.add(s.taskDef)
		case moveStarted:
			again, rolling = true, true
		case moveDeferred:
			again = true
		}
	}
	// Places a rollout freed that no rollout's end has handed out (a
	// rollout the process did not start, a service deleted mid-rollout).
	for _, f := range c.st.wakeWaiting(c.pacing()) {
		if f != p.family {
			c.enqueue(f)
		}
	}
	if again && len(errs) == 0 {
		if !rolling && c.st.waitingFor(p.family) {
			// Only waiting for a place: a rollout's end queues the
			// family (wakeWaiting); this is the fallback.
			return Result{RequeueAfter: waitingPollFactor * c.o.RolloutPoll}, nil
		}
		return Result{RequeueAfter: c.o.RolloutPoll}, nil
	}
	return Result{}, errors.Join(errs...)
}

// sourceOf returns the source revision a service runs: the revision itself,
// or the source of the twin it runs. nil for revisions that are not to be
// instrumented (covered by hand, Windows).
func (c *Controller) sourceOf(ctx context.Context, p *plan, s *service) (*revision, error) {
	rev, _, err := c.revision(ctx, s.taskDef)
	if err != nil {
		return nil, err
	}
	switch rev.class.Kind {
	case patch.KindPlain:
		return rev, nil
	case patch.KindTwin:
		src, _, err := c.revision(ctx, arnOfRevision(rev.arn, rev.class.SourceRevision))
		if err != nil {
			return nil, err
		}
		return src, nil
	default:
		return nil, nil
	}
}

// ensureTwin returns the current twin of src, registering it if it does not
// exist. When src cannot be instrumented it returns the first refusal code
// (the reasons are logged); in audit mode, where nothing is registered, it
// returns no twin and no code.
func (c *Controller) ensureTwin(ctx context.Context, log *slog.Logger, p *plan, profile patch.Profile, src *revision) (twin *revision, refused patch.Code, err error) {
	td, err := src.content()
	if err != nil {
		return nil, "", err
	}
	opts := patch.Options{TagPrefix: c.o.TagPrefix, SourceRevision: src.number}
	var images map[string]patch.Image
	if c.o.Images != nil {
		var ierrs []error
		images, ierrs = c.o.Images.Images(ctx, patch.ImageCandidates(td, profile, opts))
		if len(ierrs) > 0 && c.st.sayOnce(src.family, "image_unknown", fmt.Sprint(src.number, ierrs)) {
			for _, e := range ierrs {
				log.Info("image config unknown", "revision", src.number, "err", e)
			}
		}
	}
	res, err := patch.Instrument(td, src.tags, profile, images, opts)
	var refusal *patch.Refusal
	if errors.As(err, &refusal) {
		if c.st.sayOnce(src.family, "refusal", fmt.Sprint(src.number, refusal.Error())) {
			log.Info("revision not instrumented", "revision", src.number, "reasons", refusal.Error())
		}
		c.o.Observer.Refused(refusal)
		code := patch.Code("refused")
		if len(refusal.Reasons) > 0 {
			code = refusal.Reasons[0].Code
		}
		return nil, code, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("instrument %s: %w", src.arn, err)
	}
	if c.st.sayOnce(src.family, "warnings", fmt.Sprint(src.number, res.Warnings)) {
		for _, w := range res.Warnings {
			log.Info("instrumented with a warning", "revision", src.number, "code", w.Code, "container", w.Container, "detail", w.Detail)
		}
	}

	key := twinKey{src.number, res.Spec}
	if twin, ok := p.twins[key]; ok {
		return twin, "", nil
	}
	// A twin is trusted for its content only: the candidates the listing
	// and the cache hold for key are compared with what the patch engine
	// makes of the source today.
	// The cache (twins older than the page listed) is read only when the
	// listing holds no genuine one, as it scans every cached revision.
	expected := patch.Digest(res.Input)
	for _, candidates := range []func() []*revision{
		func() []*revision { return p.seen[key] },
		func() []*revision { return c.st.twinsOf(p.family, key) },
	} {
		for _, f := range p.chooseTwin(key, candidates(), expected) {
			c.forgedTwin(log, p, f, src)
		}
		if twin, ok := p.twins[key]; ok {
			return twin, "", nil
		}
	}
	a := Action{Kind: ActionRegisterTwin, Family: p.family, Source: src.arn, Spec: res.Spec, Containers: res.Instrumented, Skipped: skippedList(res.Skipped)}
	applied, err := c.write(ctx, p, log, a, func(ctx context.Context, a *Action) error {
		log.Info("registering twin", "revision", src.number, "spec", res.Spec, "containers", res.Instrumented, "skipped", a.Skipped)
		out, err := c.ecs.RegisterTaskDefinition(ctx, res.Input)
		if err != nil {
			err = fmt.Errorf("register twin of %s: %w", src.arn, err)
			if cloud.IsInvalidInput(err) {
				// The same content gets the same answer: no retry can fix it.
				err = terminal(TerminalTwinRejected, err)
			}
			return err
		}
		if out.TaskDefinition == nil {
			return fmt.Errorf("register twin of %s: no task definition in the answer", src.arn)
		}
		if twin, err = newRevision(out.TaskDefinition, cloneTags(res.Input.Tags), patch.Class{Kind: patch.KindTwin, SourceRevision: src.number, Spec: res.Spec}); err != nil {
			return err
		}
		c.st.putRevision(twin)
		log.Info("registered twin", "revision", src.number, "twin", twin.number, "spec", res.Spec)
		a.Twin = twin.arn
		c.o.Observer.TwinRegistered()
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if !applied {
		// A stand-in, so that the plan shows the services that would move.
		twin = &revision{arn: plannedTwinArn(src.arn), family: p.family, planned: true,
			class: patch.Class{Kind: patch.KindTwin, SourceRevision: src.number, Spec: res.Spec}}
	}
	p.twins[key] = twin
	p.registered[twin.arn] = true
	return twin, "", nil
}

// skippedList renders the containers a patch left alone as
// "name=code" items, for the log lines that explain a twin.
func skippedList(skipped []patch.Reason) []string {
	if len(skipped) == 0 {
		return nil
	}
	out := make([]string, len(skipped))
	for i, r := range skipped {
		out[i] = r.Container + "=" + string(r.Code)
	}
	return out
}

// observeService gathers what decideService reads of s, from the cache of
// what AWS said.
func (c *Controller) observeService(ctx context.Context, p *plan, s *service, twinOf map[int32]*revision) (serviceFacts, error) {
	f := serviceFacts{ecsController: s.controller == types.DeploymentControllerTypeEcs, runsArn: s.taskDef,
		now: c.o.Now(), deadline: c.o.RolloutDeadline, contestedAfter: c.o.ContestedAfter}
	rev, _, err := c.revision(ctx, s.taskDef)
	if err != nil {
		return f, err
	}
	f.runs = rev.class.Kind
	if d, ok := primary(s); ok {
		if r := c.st.cachedRevision(d.taskDef); r != nil && r.class.Kind == patch.KindTwin {
			if _, failed := c.st.failedMark(d.taskDef); !failed {
				f.rollout = &d
			}
		}
	}
	source := rev.number
	if rev.class.Kind == patch.KindTwin {
		source = rev.class.SourceRevision
	}
	if twin := twinOf[source]; twin != nil && (rev.class.Kind == patch.KindPlain || rev.class.Kind == patch.KindTwin) {
		f.target = twin.arn
		f.targetFailed, _ = c.st.failedMark(twin.arn)
		f.targetNew = p.registered[twin.arn] || twin.planned
		f.targetFailedOn = failedRollout(s, twin)
		f.targetRolling = inProgress(s, twin.arn)
	}
	return f, nil
}

// readHistory asks ECS whether a deployment of twin on s failed, and how
// often another writer moved s from twin back to its source.
func (c *Controller) readHistory(ctx context.Context, s *service, twin string) (history, int, error) {
	rev := c.st.cachedRevision(twin)
	if rev == nil {
		return historyUnknown, 0, fmt.Errorf("twin %s is not cached", twin)
	}
	return c.twinHistory(ctx, s, rev)
}

// applyStep carries out what decideService decided for s.
func (c *Controller) applyStep(ctx context.Context, log *slog.Logger, p *plan, s *service, next step, current map[string]bool) (move, error) {
	if next.completed {
		if d, ok := primary(s); ok && c.st.movedTo(s.arn) == d.taskDef {
			c.st.setMoved(s.arn, "")
			log.Info("rollout of twin completed", "twin", revisionNumber(d.taskDef))
			c.o.Observer.RolloutDone(RolloutCompleted)
			c.rolloutEnded(log, true)
		}
	}
	twin := c.st.cachedRevision(next.twin)
	for _, t := range p.twins {
		if twin == nil && t.arn == next.twin {
			twin = t // audit mode's stand-in: not in AWS, so not cached
		}
	}
	switch next.kind {
	case stepWait:
		return moveStarted, nil
	case stepMarkFailed:
		if next.code == FailedRolledBack {
			log.Warn("ECS rolled back a deployment of this twin on the service; not moving it there again", "twin", twin.number)
			c.o.Observer.RolloutDone(RolloutRolledBk)
		} else {
			c.o.Observer.RolloutDone(RolloutFailed)
		}
		c.rolloutEnded(log, false)
		return moveLeft, c.markFailed(ctx, log, p, twin, next.code)
	case stepAbandon:
		if next.code == FailedDeadline {
			log.Warn("rollout of twin has no outcome by the deadline", "twin", twin.number, "deadline", c.o.RolloutDeadline.String())
			c.o.Observer.RolloutDone(RolloutDeadline)
		} else {
			log.Warn("rollout of twin failed and ECS did not roll it back", "twin", twin.number)
			c.o.Observer.RolloutDone(RolloutFailed)
		}
		c.rolloutEnded(log, false)
		if err := c.markFailed(ctx, log, p, twin, next.code); err != nil {
			return moveLeft, err
		}
		return moveLeft, c.returnToSource(ctx, log, p, s, twin, next.code)
	case stepMove:
		c.st.setContested(s.arn, "")
		return c.moveService(ctx, log, p, s, twin, current)
	}
	if next.reason == SkipContested {
		c.contested(log, p, s, twin)
	} else {
		c.st.setContested(s.arn, "")
	}
	if next.reason != "" && next.reason != SkipRefused && next.reason != SkipCovered {
		if c.st.sayOnce(s.arn, "skipped", next.reason) {
			log.Info("service skipped", "reason", next.reason)
		}
		c.o.Observer.ServiceSkipped(next.reason)
	}
	return moveLeft, nil
}

// contested records that another writer keeps moving s from twin back to
// its source: the service is left there (coverage state contested), and the
// first time, per process, it is logged and sent to the audit trail. The
// record itself is ECS's service deployments, read again each time.
func (c *Controller) contested(log *slog.Logger, p *plan, s *service, twin *revision) {
	c.st.setContested(s.arn, twin.arn)
	if !c.st.sayOnce(s.arn, "contested", twin.arn) {
		return
	}
	log.Warn("service contested: another writer moved it back from its twin to its source repeatedly; leaving it on the source until the source or the twin's spec changes",
		"twin", twin.number, "source", s.taskDef, "after", c.o.ContestedAfter, "window", c.o.ContestedWindow.String(), "owner", c.familyOwner(p.family))
	c.act(p, Action{Kind: ActionServiceContested, Family: p.family, Cluster: s.cluster, Service: s.arn,
		From: s.taskDef, Twin: twin.arn, Reason: SkipContested})
}

// waitingPollFactor: a family whose moves wait for a place is looked at
// again after this many RolloutPolls if no rollout's end queued it first.
const waitingPollFactor = 8

// errNotNow stops a write that must wait (pacing, a changed service).
var errNotNow = errors.New("not now")

// errChanged fails a reconcile whose write found the service changed since
// the sweep's read it decided on: the retry reads it afresh.
var errChanged = errors.New("the service changed since it was read; reconciling again")

// moveService points s at twin, unless the service changed meanwhile or
// pacing defers it.
func (c *Controller) moveService(ctx context.Context, log *slog.Logger, p *plan, s *service, twin *revision, current map[string]bool) (move, error) {
	a := Action{Kind: ActionUpdateService, Family: twin.family, Cluster: s.cluster, Service: s.arn, From: s.taskDef, To: twin.arn}
	if p.mode != policy.ModeAudit {
		// No place: say so before reading the service again (the read
		// would only be thrown away), and wait for a rollout to end.
		if ok, why := c.st.placeFree(s, c.pacing()); !ok {
			log.Info("service move deferred", "reason", why, "to", twin.arn)
			if why != "max_in_flight_per_cluster" {
				c.st.wait(p.family)
			}
			return moveDeferred, nil
		}
	}
	applied, err := c.write(ctx, p, log, a, func(ctx context.Context, _ *Action) error {
		// The service was read at the start of the reconcile; a pipeline
		// may have deployed since. Moving it now would undo that deploy, so
		// read it again (ECS has no conditional update) and leave a changed
		// service to the next reconcile.
		now, err := c.describeServices(ctx, s.cluster, []string{s.arn}, false)
		if err != nil {
			return err
		}
		if len(now) != 1 || now[0].taskDef != s.taskDef {
			log.Info("service changed during the reconcile; looking again", "was", s.taskDef)
			return errNotNow
		}
		ok, why, release := c.st.admit(s, p.services, current, c.pacing(), twin.arn)
		if !ok {
			log.Info("service move deferred", "reason", why, "to", twin.arn)
			if why == "max_in_flight" || why == "ramp_window" {
				c.st.wait(p.family)
			}
			return errNotNow
		}
		log.Info("updating service", "from", s.taskDef, "to", twin.arn)
		out, err := c.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{
			Cluster: aws.String(s.cluster), Service: aws.String(s.arn), TaskDefinition: aws.String(twin.arn),
		})
		if err != nil {
			release() // give the place back
			return fmt.Errorf("update service %s: %w", s.arn, err)
		}
		c.st.setMoved(s.arn, twin.arn)
		if out.Service != nil {
			c.st.putService(serviceFromSDK(*out.Service))
		}
		log.Info("updated service", "to", twin.arn)
		c.o.Observer.ServiceUpdated()
		return nil
	})
	switch {
	case errors.Is(err, errNotNow):
		return moveDeferred, nil
	case err != nil:
		return moveLeft, err
	case !applied:
		return moveLeft, nil // planned
	}
	return moveStarted, nil
}

// failedRollout tells whether DescribeServices still lists a FAILED
// deployment of twin on service s (the circuit breaker's verdict, while the
// rollback runs or when rollback is off). A rollback that has completed is
// no longer listed there; twinHistory reads it from ECS's service
// deployments.
func failedRollout(s *service, twin *revision) bool {
	for _, d := range s.deployments {
		if d.taskDef == twin.arn && d.rolloutState == types.DeploymentRolloutStateFailed {
			return true
		}
	}
	return false
}

// inProgress reports whether a deployment of arn is still rolling out.
func inProgress(s *service, arn string) bool {
	for _, d := range s.deployments {
		if d.taskDef == arn && d.rolloutState == types.DeploymentRolloutStateInProgress {
			return true
		}
	}
	return false
}

// markFailed tags the twin so that its spec is not tried again, even after
// a restart. The mark is written to AWS first and believed (cached) only
// once AWS has it: a TagResource that fails leaves the twin unmarked, so
// the retry that the error causes writes it again.
func (c *Controller) markFailed(ctx context.Context, log *slog.Logger, p *plan, twin *revision, code string) error {
	_, err := c.write(ctx, p, log, Action{Kind: ActionMarkFailed, Family: twin.family, Twin: twin.arn, Reason: code}, func(ctx context.Context, _ *Action) error {
		log.Warn("rollout of twin failed; marking it and not retrying this spec", "twin", twin.number, "code", code)
		_, err := c.ecs.TagResource(ctx, &ecs.TagResourceInput{
			ResourceArn: aws.String(twin.arn),
			Tags:        []types.Tag{{Key: aws.String(c.o.TagPrefix + patch.KeyFailed), Value: aws.String(code)}},
		})
		if err != nil {
			return fmt.Errorf("mark twin %s failed: %w", twin.arn, err)
		}
		c.st.setFailed(twin.arn, code)
		c.o.Observer.RolloutFailed(code)
		return nil
	})
	return err
}

// optedOut handles a family that is not (or no longer) opted in: services on
// a twin go back to its source when so configured (always in remove mode);
// nothing new is made.
func (c *Controller) optedOut(ctx context.Context, log *slog.Logger, p *plan, st *familyState) error {
	log.Debug("family not instrumented", "reason", p.decision.Reason)
	revert := c.o.RevertOnOptOut || p.mode == policy.ModeRemove
	var errs []error
	for _, s := range p.services {
		rev, _, err := c.revision(ctx, s.taskDef)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if rev.class.Kind != patch.KindTwin || !revert || s.controller != types.DeploymentControllerTypeEcs {
			st.ok.add(rev.arn)
			continue
		}
		if err := c.returnToSource(ctx, log.With("service", s.name), p, s, rev, string(p.decision.Reason)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// returnToSource points a service running twin back at the twin's source
// revision. A source that has been deregistered (INACTIVE revisions cannot
// be deployed) is first registered again, its content rebuilt from the twin.
func (c *Controller) returnToSource(ctx context.Context, log *slog.Logger, p *plan, s *service, twin *revision, reason string) error {
	source := arnOfRevision(twin.arn, twin.class.SourceRevision)
	src, _, err := c.revision(ctx, source)
	if err != nil && !cloud.IsNotFound(err) {
		return err
	}
	original := source
	restore := func(ctx context.Context, a *Action) error {
		restored, err := c.restoreSource(ctx, log, twin)
		if err != nil {
			return err
		}
		source, a.Source = restored, restored
		p.restored[original] = restored
		return nil
	}
	switch r, done := p.restored[original]; {
	case done:
		source = r // restored for another service of this reconcile
	case src == nil || src.status != types.TaskDefinitionStatusActive:
		if _, err := c.write(ctx, p, log, Action{Kind: ActionRestoreSource, Family: twin.family, Source: source, Twin: twin.arn}, restore); err != nil {
			return err
		}
	}
	a := Action{Kind: ActionReturnToSource, Family: twin.family, Cluster: s.cluster, Service: s.arn, From: s.taskDef, To: source, Reason: reason}
	_, err = c.write(ctx, p, log, a, func(ctx context.Context, a *Action) error {
		if p.reused {
			// The service is the sweep's read: read it again before
			// changing it, as moveService does, and leave a changed
			// service to the next reconcile.
			now, err := c.describeServices(ctx, s.cluster, []string{s.arn}, false)
			if err != nil {
				return err
			}
			if len(now) != 1 || now[0].taskDef != s.taskDef {
				log.Info("service changed since the sweep read it; looking again", "was", s.taskDef)
				return fmt.Errorf("return service %s to its source: %w", s.arn, errChanged)
			}
		}
		log.Info("returning service to its source", "from", s.taskDef, "to", source, "reason", reason)
		out, err := c.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{
			Cluster: aws.String(s.cluster), Service: aws.String(s.arn), TaskDefinition: aws.String(source),
		})
		if err != nil && cloud.IsInactive(err) && src != nil {
			// Deregistered since it was cached (the status is the one part
			// of a revision that changes): restore it, then move.
			r := Action{Kind: ActionRestoreSource, Family: twin.family, Twin: twin.arn}
			if err := restore(ctx, &r); err != nil {
				return err
			}
			c.act(p, r)
			out, err = c.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{
				Cluster: aws.String(s.cluster), Service: aws.String(s.arn), TaskDefinition: aws.String(source),
			})
		}
		if err != nil {
			return fmt.Errorf("return service %s to its source: %w", s.arn, err)
		}
		if out.Service != nil {
			c.st.putService(serviceFromSDK(*out.Service))
		}
		a.To = source
		c.o.Observer.ServiceUpdated()
		return nil
	})
	return err
}

// restoreSource registers the source of twin again, rebuilt from the twin's
// content, and returns the new revision's ARN. The new revision is a
// source: it carries the source's tags, not our markers.
func (c *Controller) restoreSource(ctx context.Context, log *slog.Logger, twin *revision) (string, error) {
	// A twin's content is not kept in the cache: read it again.
	desc, err := c.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(twin.arn)})
	if err != nil {
		return "", fmt.Errorf("describe twin %s: %w", twin.arn, err)
	}
	if desc.TaskDefinition == nil {
		return "", fmt.Errorf("describe twin %s: no task definition in the answer", twin.arn)
	}
	in, err := patch.Source(desc.TaskDefinition, twin.tags, patch.Options{TagPrefix: c.o.TagPrefix})
	if err != nil {
		return "", fmt.Errorf("rebuild the source of %s: %w", twin.arn, err)
	}
	log.Info("registering the deregistered source again, rebuilt from its twin", "twin", twin.arn, "source", twin.class.SourceRevision)
	out, err := c.ecs.RegisterTaskDefinition(ctx, in)
	if err != nil {
		return "", fmt.Errorf("register the source of %s again: %w", twin.arn, err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// clusterName returns the name of a cluster ARN (or the name itself).
func clusterName(cluster string) string {
	return cluster[strings.LastIndexByte(cluster, '/')+1:]
}

// familyOwner is the owner the last reconcile of family found.
func (c *Controller) familyOwner(family string) string {
	if st, ok := c.st.family(family); ok && st != nil {
		return st.owner
	}
	return OwnerNone
}
