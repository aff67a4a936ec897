package soak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/watch"
)

// invariant is one checked property: how many things were checked and the
// ones that broke it.
type invariant struct {
	name       string
	checked    int
	violations []string
}

func (iv *invariant) check(ok bool, format string, a ...any) {
	iv.checked++
	if !ok {
		iv.violations = append(iv.violations, fmt.Sprintf(format, a...))
	}
}

func (iv *invariant) String() string {
	s := fmt.Sprintf("%-72s checked %6d, violations %d", iv.name, iv.checked, len(iv.violations))
	for i, v := range iv.violations {
		if i == 8 {
			s += fmt.Sprintf("\n      ... and %d more", len(iv.violations)-i)
			break
		}
		s += "\n      " + v
	}
	return s
}

// revision is a task definition revision as the final state shows it.
type revision struct {
	arn, family  string
	num          int
	active       bool
	twin         bool
	source       int    // twins: the source revision's number
	spec, failed string // twins
	inject       string // sources: the opt-in tag, if any
	hasInject    bool
	forged       bool // the pipeline put a twin's markers on it (keyForged)
}

// parseRevisionArn splits arn:aws:ecs:r:a:task-definition/family:N.
func parseRevisionArn(arn string) (family string, num int) {
	_, rest, ok := strings.Cut(arn, ":task-definition/")
	if !ok {
		return "", 0
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return rest, 0
	}
	n, _ := strconv.Atoi(rest[i+1:])
	return rest[:i], n
}

type twinKey struct {
	family string
	source int
	spec   string
}

// stateView is the final state, indexed.
type stateView struct {
	revs     map[string]*revision               // by ARN
	byFamily map[string][]*revision             // by number
	services []awssim.ServiceState              // every service of every cluster
	queues   map[string]int                     // messages by queue name
	pending  int                                // rollouts in progress
	twins    map[twinKey][]*revision            // ACTIVE twins by (source, spec), lowest first
	specs    map[string]map[int]map[string]bool // family -> source -> specs of its twins
}

func viewOf(st awssim.State) *stateView {
	v := &stateView{revs: map[string]*revision{}, byFamily: map[string][]*revision{}, queues: map[string]int{},
		pending: st.Pending, twins: map[twinKey][]*revision{}, specs: map[string]map[int]map[string]bool{}}
	for _, f := range st.Families {
		for _, r := range f.Revisions {
			fam, num := parseRevisionArn(r.Arn)
			rv := &revision{arn: r.Arn, family: fam, num: num, active: r.Status == "ACTIVE", forged: r.Tags[keyForged] != ""}
			// A forgery (a twin's markers on content the reconciler did
			// not make) is what it is: a source revision of the pipeline's.
			if src, ok := r.Tags[keySource]; ok && r.Tags[keyForged] == "" {
				rv.twin = true
				rv.source, _ = strconv.Atoi(src)
				rv.spec, rv.failed = r.Tags[keySpec], r.Tags[keyFailed]
				if v.specs[fam] == nil {
					v.specs[fam] = map[int]map[string]bool{}
				}
				if v.specs[fam][rv.source] == nil {
					v.specs[fam][rv.source] = map[string]bool{}
				}
				v.specs[fam][rv.source][rv.spec] = true
				if rv.active {
					k := twinKey{fam, rv.source, rv.spec}
					v.twins[k] = append(v.twins[k], rv)
				}
			} else {
				rv.inject, rv.hasInject = r.Tags[keyInject]
			}
			v.revs[r.Arn] = rv
			v.byFamily[fam] = append(v.byFamily[fam], rv)
		}
	}
	for _, revs := range v.byFamily {
		sort.Slice(revs, func(i, j int) bool { return revs[i].num < revs[j].num })
	}
	for _, ts := range v.twins {
		sort.Slice(ts, func(i, j int) bool { return ts[i].num < ts[j].num })
	}
	for _, c := range st.Clusters {
		v.services = append(v.services, c.Services...)
	}
	for _, q := range st.Queues {
		v.queues[q.URL[strings.LastIndexByte(q.URL, '/')+1:]] = q.Messages
	}
	return v
}

// optedIn: the newest source revision (not a twin) that carries the
// inject tag decides (no policies are configured). The unfit families
// (dependency cycles, EC2-only, Windows) count as opted out: whatever
// their tags say, they must stay on their sources.
func (v *stateView) optedIn(family string) bool {
	if unfit(family) {
		return false
	}
	revs := v.byFamily[family]
	for i := len(revs) - 1; i >= 0; i-- {
		if r := revs[i]; !r.twin && r.hasInject {
			return r.inject == "true"
		}
	}
	return false
}

// newestSource is the family's newest ACTIVE source revision.
func (v *stateView) newestSource(family string) *revision {
	revs := v.byFamily[family]
	for i := len(revs) - 1; i >= 0; i-- {
		if r := revs[i]; !r.twin && r.active && !r.forged {
			return r
		}
	}
	return nil
}

// stateInvariants are the invariants of the final state; the convergence
// wait polls them.
func stateInvariants(v *stateView) []*invariant {
	onTwin := &invariant{name: "opted-in services run the current twin of their source"}
	onSource := &invariant{name: "services of opted-out families run a source revision"}
	dupsInUse := &invariant{name: "(source, spec) with more than one twin in use"}
	newest := &invariant{name: "opted-in families' newest source revision has an ACTIVE twin"}
	inUse := map[twinKey]map[string]bool{}
	for _, s := range v.services {
		if s.Status != "ACTIVE" || s.Controller != "ECS" {
			continue
		}
		rv := v.revs[s.TaskDefinition]
		if rv == nil {
			onTwin.check(false, "%s runs %s, which the state does not list", s.Arn, s.TaskDefinition)
			continue
		}
		if rv.twin {
			k := twinKey{rv.family, rv.source, rv.spec}
			if inUse[k] == nil {
				inUse[k] = map[string]bool{}
			}
			inUse[k][rv.arn] = true
		}
		if !v.optedIn(rv.family) {
			onSource.check(!rv.twin, "%s runs the twin %s:%d of an opted-out family", s.Arn, rv.family, rv.num)
			continue
		}
		switch {
		case !rv.twin && v.failedTwinOf(rv.family, rv.num):
			onTwin.check(true, "") // its twin failed its rollout and is marked: the source is right
		case !rv.twin:
			onTwin.check(false, "%s runs the source %s:%d", s.Arn, rv.family, rv.num)
		case !rv.active:
			onTwin.check(false, "%s runs the INACTIVE twin %s:%d", s.Arn, rv.family, rv.num)
		case rv.failed != "":
			onTwin.check(false, "%s runs the twin %s:%d marked failed (%s)", s.Arn, rv.family, rv.num, rv.failed)
		case len(v.specs[rv.family][rv.source]) != 1:
			onTwin.check(false, "%s runs %s:%d, and source %d has twins of %d specs", s.Arn, rv.family, rv.num, rv.source, len(v.specs[rv.family][rv.source]))
		default:
			canonical := v.twins[twinKey{rv.family, rv.source, rv.spec}][0]
			onTwin.check(canonical == rv, "%s runs the twin %s:%d, not the lowest ACTIVE twin %d of (source %d, spec %s)", s.Arn, rv.family, rv.num, canonical.num, rv.source, rv.spec)
		}
	}
	// Of the twins of sources a service runs or that are their family's
	// newest: a duplicate of a superseded source older than the revision
	// that decides opt-in is not seen by the reconcile's walk (a known
	// limit, issue 18's note).
	current := map[string]bool{}
	for _, s := range v.services {
		if rv := v.revs[s.TaskDefinition]; rv != nil && s.Status == "ACTIVE" {
			current[fmt.Sprintf("%s:%d", rv.family, rv.num)] = true
			if rv.twin {
				current[fmt.Sprintf("%s:%d", rv.family, rv.source)] = true
			}
		}
	}
	for fam := range v.byFamily {
		if src := v.newestSource(fam); src != nil {
			current[fmt.Sprintf("%s:%d", fam, src.num)] = true
		}
	}
	dupsActive := &invariant{name: "no (source, spec) with more than one ACTIVE twin (sources in use or newest)"}
	for _, k := range sortedKeys(v.twins) {
		if !current[fmt.Sprintf("%s:%d", k.family, k.source)] {
			continue
		}
		dupsActive.check(len(v.twins[k]) == 1, "%s source %d spec %s: %d ACTIVE twins", k.family, k.source, k.spec, len(v.twins[k]))
	}
	fragileOff := &invariant{name: "services of fragile families (their twins fail) end on a source"}
	for _, s := range v.services {
		if rv := v.revs[s.TaskDefinition]; rv != nil && s.Status == "ACTIVE" && fragile(rv.family) {
			fragileOff.check(!rv.twin, "%s runs the twin %s:%d, whose rollouts fail", s.Arn, rv.family, rv.num)
		}
	}
	for _, k := range sortedKeys(inUse) {
		dupsInUse.check(len(inUse[k]) == 1, "%s source %d spec %s: %d twins in use: %s", k.family, k.source, k.spec, len(inUse[k]), strings.Join(sortedKeys(inUse[k]), " "))
	}
	for _, fam := range sortedKeys(v.byFamily) {
		if !v.optedIn(fam) {
			continue
		}
		src := v.newestSource(fam)
		if src == nil {
			continue
		}
		// A forgery newer than the newest source makes "newest" a matter
		// of which revision the reconciler took for the source (its
		// markers or its content): hostileInvariants judge forgeries.
		if slices.ContainsFunc(v.byFamily[fam], func(r *revision) bool { return r.forged && r.num > src.num }) {
			continue
		}
		found := false
		for k := range v.twins {
			if k.family == fam && k.source == src.num {
				found = true
			}
		}
		newest.check(found, "%s: no ACTIVE twin of its newest source %d", fam, src.num)
	}
	queue := &invariant{name: "event queue drained, no rollout pending"}
	queue.check(v.queues[awssim.DemoQueue] == 0, "%d messages left in %s", v.queues[awssim.DemoQueue], awssim.DemoQueue)
	queue.check(v.pending == 0, "%d rollouts pending", v.pending)
	return []*invariant{onTwin, onSource, dupsInUse, dupsActive, fragileOff, newest, queue}
}

// failedTwinOf: a twin of the family's source revision carries the failure
// mark.
func (v *stateView) failedTwinOf(family string, source int) bool {
	for _, r := range v.byFamily[family] {
		if r.twin && r.source == source && r.failed != "" {
			return true
		}
	}
	return false
}

// caller classifies a journaled call by its user agent.
func caller(c *awssim.Call) string {
	switch {
	case strings.Contains(c.UserAgent, reconcilerApp):
		return "reconciler"
	case c.UserAgent == "":
		return "seed"
	default:
		return "pipeline"
	}
}

// journalReport is what the history says.
type journalReport struct {
	writes          map[string]map[string]int // caller -> operation -> successful calls
	attempts        map[string]map[string]int // caller -> operation -> calls, failed ones included
	twinsRegistered int
	dupsRegistered  int // twins registered for a (source, spec) that had one already
	maxPerKey       int // the most twins registered for one (source, spec)
	maxKey          twinKey
	twinsDeregister int
	plaintextTwins  int // twins carrying the plaintext token (the secret check is not vacuous)
	secretTwins     int // twins naming the token secret
	dedupRaces      int // duplicates deregistered while another replica moved a service to them
	raceOverwrites  int // reconciler writes that replaced a pipeline deploy made after the reconciler's read
	staleWrites     int // reconciler moves valid only against the state before another writer's change
	everOptedIn     map[string]bool
	invariants      []*invariant
}

// serviceKey names a service by cluster and service name.
func serviceKey(cluster, svc string) string {
	if strings.HasPrefix(svc, "arn:") {
		// arn:aws:ecs:r:a:service/cluster/name
		_, rest, _ := strings.Cut(svc, ":service/")
		if c, n, ok := strings.Cut(rest, "/"); ok {
			return c + "/" + n
		}
	}
	if strings.HasPrefix(cluster, "arn:") {
		_, cluster, _ = strings.Cut(cluster, ":cluster/")
	}
	if cluster == "" {
		cluster = "default"
	}
	return cluster + "/" + svc
}

// journalInvariants replays the journal.
func journalInvariants(entries []awssim.Entry, w *world) *journalReport {
	r := &journalReport{writes: map[string]map[string]int{}, attempts: map[string]map[string]int{}, everOptedIn: map[string]bool{}}
	nonOpted := &invariant{name: "no write of the reconciler to a never-opted-in family or its services"}
	codeDeploy := &invariant{name: "no write of the reconciler to a service of another deployment controller"}
	pointed := &invariant{name: "reconciler's UpdateService only to a twin of the service's own source, or that source"}
	dereg := &invariant{name: "twins deregistered only as duplicates (a lower twin of the (source, spec)) that no service runs"}
	racedDereg := &invariant{name: "duplicates deregistered while a racing replica moved a service to them stay within the duplicates"}
	deregistered := map[string]bool{}
	type revInfo struct {
		family     string
		num        int
		twin       bool
		source     int
		spec       string
		reconciler bool
	}
	revs := map[string]*revInfo{}
	inputs := map[string]*ecs.RegisterTaskDefinitionInput{} // ARN -> what was registered
	current := map[string]string{}                          // service -> task definition ARN
	setBy := map[string]string{}                            // service -> caller of the last task definition change
	movedBy := map[string]string{}                          // service -> the replica that made the last change (replicaOf)
	before := map[string]string{}                           // service -> its task definition before the last change
	sources := map[string]map[string]bool{}                 // service -> sources it was ever pointed at by others
	controllers := map[string]string{}                      // service -> deployment controller
	familyWrites := map[string][]string{}                   // family -> the reconciler's writes (attempts)
	keys := map[twinKey]int{}
	for _, e := range entries {
		c := e.Call
		if d := e.Deployment; d != nil && d.State == types.DeploymentRolloutStateInProgress && strings.Contains(d.Reason, "rolling back to deploymentId") {
			// ECS's circuit breaker moved the service back to the revision
			// of its last completed deployment: no call did.
			key := serviceKey("", d.ServiceArn)
			if current[key] != d.TaskDefinition {
				before[key] = current[key]
				current[key], setBy[key], movedBy[key] = d.TaskDefinition, "ecs", ""
			}
			continue
		}
		if c == nil {
			continue
		}
		who := caller(c)
		if r.attempts[who] == nil {
			r.attempts[who], r.writes[who] = map[string]int{}, map[string]int{}
		}
		r.attempts[who][c.Operation]++
		ok := c.Err == nil
		if ok {
			r.writes[who][c.Operation]++
		}
		note := func(family, what string) {
			if who == "reconciler" && family != "" {
				familyWrites[family] = append(familyWrites[family], fmt.Sprintf("#%d %s %s", c.Seq, c.Operation, what))
			}
		}
		switch in := c.Input.(type) {
		case *ecs.RegisterTaskDefinitionInput:
			note(aws.ToString(in.Family), "")
			tags := map[string]string{}
			for _, t := range in.Tags {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			if who != "reconciler" && tags[keyInject] == "true" {
				r.everOptedIn[aws.ToString(in.Family)] = true
			}
			if !ok {
				continue
			}
			arn := aws.ToString(c.Output.(*ecs.RegisterTaskDefinitionOutput).TaskDefinition.TaskDefinitionArn)
			fam, num := parseRevisionArn(arn)
			ri := &revInfo{family: fam, num: num, reconciler: who == "reconciler"}
			if src, isTwin := tags[keySource]; isTwin {
				ri.twin, ri.spec = true, tags[keySpec]
				ri.source, _ = strconv.Atoi(src)
			}
			// The reconciler's twins: the counts and the duplicates' bound
			// are of its registrations, not of the pipeline's forgeries,
			// which carry a genuine twin's markers (a run counted 9
			// registrations of one key, against a bound of 6, with the
			// forgeries of that twin among them).
			if ri.twin && ri.reconciler {
				r.twinsRegistered++
				k := twinKey{fam, ri.source, ri.spec}
				if keys[k] > 0 {
					r.dupsRegistered++
				}
				keys[k]++
				if keys[k] > r.maxPerKey {
					r.maxPerKey, r.maxKey = keys[k], k
				}
				for _, cd := range in.ContainerDefinitions {
					for _, kv := range cd.Environment {
						if aws.ToString(kv.Value) == w.plainToken {
							r.plaintextTwins++
						}
					}
					for _, s := range cd.Secrets {
						if aws.ToString(s.ValueFrom) == w.secretArn {
							r.secretTwins++
						}
					}
				}
			}
			revs[arn] = ri
			inputs[arn] = in
		case *ecs.DeregisterTaskDefinitionInput:
			fam, _ := parseRevisionArn(aws.ToString(in.TaskDefinition))
			if fam == "" {
				fam, _, _ = strings.Cut(aws.ToString(in.TaskDefinition), ":")
			}
			note(fam, aws.ToString(in.TaskDefinition))
			if ok && who == "reconciler" {
				arn := aws.ToString(c.Output.(*ecs.DeregisterTaskDefinitionOutput).TaskDefinition.TaskDefinitionArn)
				ri := revs[arn]
				if ri == nil || !ri.twin || deregistered[arn] {
					dereg.check(ri != nil && ri.twin, "#%d deregistered %s, not a twin", c.Seq, short(arn))
					continue
				}
				deregistered[arn] = true
				r.twinsDeregister++
				lower := false
				for a, o := range revs {
					if o.twin && o.family == ri.family && o.source == ri.source && o.spec == ri.spec && o.num < ri.num && !deregistered[a] {
						lower = true
					}
				}
				var on []string
				byOther := 0 // services another replica moved there
				for svc, td := range current {
					if td == arn {
						on = append(on, svc)
						if w.p.replicas > 1 && movedBy[svc] != replicaOf(c) {
							byOther++
						}
					}
				}
				sort.Strings(on)
				if lower && len(on) > 0 && byOther == len(on) {
					// Replicas at once (no single writer yet): this one
					// found the twin unused while another moved a service
					// to it. Counted and bounded by the duplicates.
					r.dedupRaces++
					racedDereg.check(r.dedupRaces <= r.dupsRegistered, "#%d deregistered the twin %s that another replica moved %v to: %d such races, %d duplicates", c.Seq, short(arn), on, r.dedupRaces, r.dupsRegistered)
					continue
				}
				dereg.check(lower && len(on) == 0, "#%d deregistered the twin %s (a lower ACTIVE twin of its (source, spec): %v; services on it: %v)", c.Seq, short(arn), lower, on)
			}
		case *ecs.TagResourceInput:
			fam, _ := parseRevisionArn(aws.ToString(in.ResourceArn))
			note(fam, aws.ToString(in.ResourceArn))
			for _, t := range in.Tags {
				if who != "reconciler" && aws.ToString(t.Key) == keyInject && aws.ToString(t.Value) == "true" && fam != "" {
					r.everOptedIn[fam] = true
				}
			}
		case *ecs.UntagResourceInput:
			fam, _ := parseRevisionArn(aws.ToString(in.ResourceArn))
			note(fam, aws.ToString(in.ResourceArn))
		case *ecs.CreateServiceInput:
			key := serviceKey(aws.ToString(in.Cluster), aws.ToString(in.ServiceName))
			if who == "reconciler" {
				fam, _ := parseRevisionArn(aws.ToString(in.TaskDefinition))
				note(fam, key)
			}
			if !ok {
				continue
			}
			svc := c.Output.(*ecs.CreateServiceOutput).Service
			td := aws.ToString(svc.TaskDefinition)
			current[key], setBy[key], movedBy[key] = td, who, replicaOf(c)
			sources[key] = map[string]bool{td: true}
			controllers[key] = "ECS"
			if svc.DeploymentController != nil {
				controllers[key] = string(svc.DeploymentController.Type)
			}
		case *ecs.UpdateServiceInput:
			key := serviceKey(aws.ToString(in.Cluster), aws.ToString(in.Service))
			prev := current[key]
			prevFam, _ := parseRevisionArn(prev)
			if who == "reconciler" {
				note(prevFam, key)
				if in.TaskDefinition != nil {
					if fam, _ := parseRevisionArn(aws.ToString(in.TaskDefinition)); fam != "" && fam != prevFam {
						note(fam, key)
					}
				}
				codeDeploy.check(controllers[key] == "ECS" || controllers[key] == "", "#%d UpdateService of %s (%s controller)", c.Seq, key, controllers[key])
			}
			if !ok {
				continue
			}
			td := aws.ToString(c.Output.(*ecs.UpdateServiceOutput).Service.TaskDefinition)
			if td == prev {
				continue
			}
			if who != "reconciler" {
				before[key] = prev
				current[key], setBy[key], movedBy[key] = td, who, replicaOf(c)
				if ri := revs[td]; ri == nil || !ri.twin {
					sources[key][td] = true
				}
				continue
			}
			// judge says whether moving the service from prev to td keeps
			// the invariant, and why not.
			judge := func(prev string) (ok bool, why string) {
				ri := revs[td]
				fam, _ := parseRevisionArn(td)
				if ri != nil && ri.twin {
					src := revisionArn(td, ri.source)
					return ri.reconciler && sources[key][src], fmt.Sprintf("#%d %s moved from %s to the twin %s:%d of source %d (registered by the reconciler: %v; the service's sources: %s)",
						c.Seq, key, short(prev), fam, ri.num, ri.source, ri.reconciler, shortKeys(sources[key]))
				}
				// A deregistered source the reconciler registered again,
				// rebuilt from the twin the service leaves (restoreSource):
				// the source's containers, as the pipeline registered them.
				if pr := revs[prev]; ri != nil && ri.reconciler && !ri.twin && pr != nil && pr.twin {
					src := revisionArn(prev, pr.source)
					return sources[key][src] && sameContainers(inputs[src], inputs[td]), fmt.Sprintf("#%d %s moved from the twin %s to %s, registered by the reconciler, which is not its source %s as it was (a source of the service: %v)", c.Seq, key, short(prev), short(td), short(src), sources[key][src])
				}
				return sources[key][td], fmt.Sprintf("#%d %s moved from %s to %s, neither a twin nor one of its sources (%s)", c.Seq, key, short(prev), short(td), shortKeys(sources[key]))
			}
			valid, why := judge(prev)
			if !valid && before[key] != "" && (setBy[key] != "reconciler" || movedBy[key] != replicaOf(c)) {
				// ECS has no conditional update: another writer (the
				// pipeline, another replica) changed the service after this
				// one read it. The write is judged against what it read,
				// the state before that change.
				var staleWhy string
				if valid, staleWhy = judge(before[key]); valid {
					r.staleWrites++
				} else {
					why = staleWhy + fmt.Sprintf(" (judged against the state before another writer moved it to %s)", short(prev))
				}
			}
			pointed.check(valid, "%s", why)
			if ri := revs[td]; valid && ri != nil && ri.reconciler && !ri.twin {
				sources[key][td] = true // a restored source
			}
			if ri, pr := revs[td], revs[prev]; ri != nil && ri.twin && setBy[key] == "pipeline" && (pr == nil || !pr.twin) &&
				revisionArn(td, ri.source) != prev {
				r.raceOverwrites++
			}
			before[key] = prev
			current[key], setBy[key], movedBy[key] = td, who, replicaOf(c)
		}
	}
	for _, f := range allFamilies(entries) {
		if r.everOptedIn[f] {
			continue
		}
		ws := familyWrites[f]
		nonOpted.check(len(ws) == 0, "%s (never opted in): %d writes, first %s", f, len(ws), first(ws))
	}
	r.invariants = []*invariant{nonOpted, codeDeploy, pointed, dereg, racedDereg}
	return r
}

// revisionArn is revision n of the family of the revision ARN arn.
func revisionArn(arn string, n int) string {
	return arn[:strings.LastIndexByte(arn, ':')+1] + strconv.Itoa(n)
}

// sameContainers: the same containers by name, image, entry point and
// command (what a rebuilt source must give back).
func sameContainers(a, b *ecs.RegisterTaskDefinitionInput) bool {
	if a == nil || b == nil || len(a.ContainerDefinitions) != len(b.ContainerDefinitions) {
		return false
	}
	for i, ca := range a.ContainerDefinitions {
		cb := b.ContainerDefinitions[i]
		if aws.ToString(ca.Name) != aws.ToString(cb.Name) || aws.ToString(ca.Image) != aws.ToString(cb.Image) ||
			!slices.Equal(ca.EntryPoint, cb.EntryPoint) || !slices.Equal(ca.Command, cb.Command) {
			return false
		}
	}
	return true
}

// allFamilies lists the families registered in the journal.
func allFamilies(entries []awssim.Entry) []string {
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Call == nil {
			continue
		}
		if in, ok := e.Call.Input.(*ecs.RegisterTaskDefinitionInput); ok && caller(e.Call) != "reconciler" {
			seen[aws.ToString(in.Family)] = true
		}
	}
	return sortedKeys(seen)
}

func first(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return xs[0]
}

func short(arn string) string {
	if _, rest, ok := strings.Cut(arn, ":task-definition/"); ok {
		return rest
	}
	return arn
}

func shortKeys(m map[string]bool) string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, short(k))
	}
	return strings.Join(out, ",")
}

func sortedKeys[K interface {
	comparable
}, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	return keys
}

// dlqInvariant drains the dead-letter queue: every message in it must be
// one the reconciler cannot parse or a poison message (an event whose
// service it may not describe), and every poison message sent must be
// there. It returns the number of messages found.
func dlqInvariant(ctx context.Context, w *world) (*invariant, int) {
	iv, n, _, _ := dlqReport(ctx, w, nil)
	return iv, n
}

// receiveHistory is awssim's record of a message's counted receives
// (Sim.ReceiveHistory).
type receiveHistory func(messageID string) (history []awssim.ReceiveRecord, deadLettered time.Time, ok bool)

// holderOf names the process life that made a receive: the latest life of
// the replica the User-Agent names ("soak-replica/N") started at or before
// at, when it stopped holding messages (its SIGKILL or SIGTERM was sent;
// zero while it runs), and a description for messages. ok is false when no
// replica's life made it.
type holderOf func(userAgent string, at time.Time) (end time.Time, who string, ok bool)

// livesHolder is holderOf over the soak's replicas.
func livesHolder(reps []*replica) holderOf {
	return func(ua string, at time.Time) (time.Time, string, bool) {
		id := replicaOf(&awssim.Call{UserAgent: ua})
		for _, r := range reps {
			if id == "" || fmt.Sprintf("replica %d", r.id) != id {
				continue
			}
			r.mu.Lock()
			lives := slices.Clone(r.lives)
			r.mu.Unlock()
			for i := len(lives) - 1; i >= 0; i-- {
				if l := lives[i]; !l.started.After(at) {
					end := l.ended()
					return end, fmt.Sprintf("replica %d's life %d (started %s, ended %s)", r.id, i+1, clock(l.started), clock(end)), true
				}
			}
		}
		return time.Time{}, "", false
	}
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("15:04:05.000")
}

// dlqReport is dlqInvariant, the number of poison messages found, and the
// number of valid events in the DLQ that the chaos accounts for (see
// dlqReportWith), from the simulator's receive history and the replicas'
// lives.
func dlqReport(ctx context.Context, w *world, reps []*replica) (iv *invariant, n, poison, outlived int) {
	return dlqReportWith(ctx, w, w.sim.ReceiveHistory, livesHolder(reps))
}

// dlqReportWith is dlqReport with the receive history and the lives given.
// A valid event in the DLQ is accounted for when every receive SQS counted
// (maxReceiveCount of them) has a cause for the message to have come back:
// the simulator dropped the receive's response (the client never saw it),
// or refused its holder's visibility extension (the holder lived on, and
// SQS handed the message out again), or the process life that received it
// was killed or stopped before the message's next receive (or its move to
// the DLQ): it died holding it. A holder that lived on past the message's
// return with no refused extension let a message it held lapse: a
// violation, as is a receive no replica's life made.
func dlqReportWith(ctx context.Context, w *world, history receiveHistory, holder holderOf) (iv *invariant, n, poison, outlived int) {
	iv = &invariant{name: "dead-letter queue holds the poison messages, all of them, and nothing parseable else (but events each of whose receives a kill or an injected fault explains)"}
	q := w.sim.SQS()
	found := map[string]bool{}
	defer func() {
		w.mu.Lock()
		sent := slices.Clone(w.poison)
		w.mu.Unlock()
		for _, id := range sent {
			iv.check(found[id], "poison message %s is not in the DLQ", id)
		}
		poison = len(found)
	}()
	for {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.dlqURL), MaxNumberOfMessages: 10, VisibilityTimeout: 3600})
		if err != nil {
			iv.check(false, "receiving from the DLQ: %v", err)
			return iv, n, 0, outlived
		}
		if len(out.Messages) == 0 {
			return iv, n, 0, outlived
		}
		for _, m := range out.Messages {
			n++
			body := aws.ToString(m.Body)
			ev, err := watch.Parse([]byte(body))
			if err == nil && strings.Contains(ev.Service, poisonService) {
				found[ev.ID] = true
				continue
			}
			if err != nil {
				if len(body) > 160 {
					body = body[:160] + "..."
				}
				iv.check(errors.Is(err, watch.ErrUnparseable), "a message in the DLQ that is neither an event nor unparseable (parse: %v): %s", err, body)
				continue
			}
			recs, dead, _ := history(aws.ToString(m.MessageId))
			// Receives from the DLQ (this drain's own) are not the event
			// queue's: they follow the move.
			recs = slices.DeleteFunc(recs, func(r awssim.ReceiveRecord) bool { return !dead.IsZero() && r.At.After(dead) })
			unexplained := explainReceives(recs, dead, holder)
			if len(recs) >= awssim.DemoMaxReceiveCount && len(unexplained) == 0 {
				iv.checked++
				outlived++
				continue
			}
			iv.check(false, "a parseable event in the DLQ, %d of %d receives (maxReceiveCount) recorded, %d of them unexplained: %s %s (family %q, service %q, event time %s), moved to the DLQ %s: %s",
				len(recs), awssim.DemoMaxReceiveCount, len(unexplained), ev.Kind, ev.ID, ev.Family, ev.Service, clock(ev.Time), clock(dead), strings.Join(unexplained, "; "))
		}
	}
}

// explainReceives returns, for each receive of a dead-lettered message that
// nothing explains, what is known of it (see dlqReportWith).
func explainReceives(recs []awssim.ReceiveRecord, dead time.Time, holder holderOf) (unexplained []string) {
	for i, r := range recs {
		next := dead
		if i+1 < len(recs) {
			next = recs[i+1].At
		}
		if r.Dropped || r.ExtensionRefused {
			continue
		}
		end, who, ok := holder(r.UserAgent, r.At)
		switch {
		case !ok:
			unexplained = append(unexplained, fmt.Sprintf("receive %d at %s by no replica's process (User-Agent %q)", i+1, clock(r.At), r.UserAgent))
		case end.IsZero() || end.After(next):
			unexplained = append(unexplained, fmt.Sprintf("receive %d at %s by %s, which still ran when the message came back at %s", i+1, clock(r.At), who, clock(next)))
		}
	}
	return unexplained
}

// secretsInvariant searches the reconcilers' logs for the token values.
func secretsInvariant(w *world, logs []string) *invariant {
	iv := &invariant{name: "token secret's value and plaintext token absent from the logs"}
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			iv.check(false, "reading %s: %v", path, err)
			continue
		}
		for _, tok := range []struct{ what, value string }{{"the token secret's value", w.secretValue}, {"the plaintext token", w.plainToken}} {
			iv.check(!bytes.Contains(b, []byte(tok.value)), "%s is in %s (%d times)", tok.what, path, bytes.Count(b, []byte(tok.value)))
		}
	}
	return iv
}
