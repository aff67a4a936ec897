package soak

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// The hostile checkers' invariants, by name.
const (
	ivUnfit  = "no twin of a dependency-cycle, EC2-only or Windows task definition"
	ivRoles  = "FireLens and App Mesh twins leave router, proxy and agents as they were"
	ivForged = "no reconciler write to a forged or retagged twin, no service moved to one"
	ivRolled = "a twin ECS rolled back is never re-applied to that service, nor to any after its failure mark"
	ivRaces  = "re-applications of a rolled-back twin by a racing replica stay within replicas-1 a twin and service"
	ivMarked = "a twin ECS rolled back whose source still runs (opted in) is marked failed"
)

// hostileBase is a clean hostile history: a FireLens family and its twin as
// the reconciler makes it, an unfit family left alone, a forgery next to a
// genuine twin in use, and a fragile family's twin rolled back by ECS and
// marked failed.
type hostileBase struct {
	w                       *world
	flSource                *ecs.RegisterTaskDefinitionInput
	flArn                   string
	forged                  string
	fragileTwin, genuineTwn string
}

// sidecarTwin is the input of a twin of src: src's containers, then the
// sidecar; the app waits for it (and for the log router, if any).
func sidecarTwin(src *ecs.RegisterTaskDefinitionInput, srcArn, router string) *ecs.RegisterTaskDefinitionInput {
	in := *src
	in.ContainerDefinitions = slices.Clone(src.ContainerDefinitions)
	for i := range in.ContainerDefinitions {
		c := &in.ContainerDefinitions[i]
		if aws.ToString(c.Name) == "app" {
			c.DependsOn = append(slices.Clone(c.DependsOn), types.ContainerDependency{ContainerName: aws.String(sidecarName), Condition: types.ContainerConditionSuccess})
			if router != "" {
				c.DependsOn = append(c.DependsOn, types.ContainerDependency{ContainerName: aws.String(router), Condition: types.ContainerConditionStart})
			}
		}
	}
	in.ContainerDefinitions = append(in.ContainerDefinitions, types.ContainerDefinition{Name: aws.String(sidecarName), Image: aws.String("lacework/datacollector:latest-sidecar"), Essential: aws.Bool(false)})
	_, num := parseRevisionArn(srcArn)
	in.Tags = twinTags(num, "spec1")
	return &in
}

func (e *mutEnv) registerInput(t *testing.T, c *ecs.Client, in *ecs.RegisterTaskDefinitionInput) string {
	t.Helper()
	out, err := c.RegisterTaskDefinition(mutCtx(t), in)
	if err != nil {
		t.Fatalf("registering %s: %v", aws.ToString(in.Family), err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// newHostileBase writes the clean history; unmarked leaves the rolled-back
// twin without its failure mark.
func newHostileBase(t *testing.T, e *mutEnv, unmarked bool) *hostileBase {
	t.Helper()
	e.sim.SetRollout(0, fragileRule)
	b := &hostileBase{w: &world{forged: map[string]bool{}}}
	// An unfit family, opted in, that the reconciler leaves alone.
	cycle, err := corpusInput("dependency-cycle", "soak-unfit-cycle", 1, tag(keyInject, "true"))
	if err != nil {
		t.Fatal(err)
	}
	e.registerInput(t, e.pipeline, cycle)
	// FireLens: the reconciler's twin keeps the router as it was.
	if b.flSource, err = corpusInput("firelens-cloudwatch-awsvpc", "soak-fl", 1, tag(keyInject, "true")); err != nil {
		t.Fatal(err)
	}
	b.flArn = e.registerInput(t, e.pipeline, b.flSource)
	e.registerInput(t, e.reconciler, sidecarTwin(b.flSource, b.flArn, "log_router"))
	// A genuine twin in use, and a forgery of its markers.
	src := e.register(t, e.pipeline, "soak-f001", tag(keyInject, "true"))
	e.createService(t, "svc-f", src, types.DeploymentControllerTypeEcs)
	b.genuineTwn = e.registerInput(t, e.reconciler, sidecarTwin(registerInputOf("soak-f001", 1), src, ""))
	e.deploy(t, e.reconciler, "svc-f", b.genuineTwn)
	_, n := parseRevisionArn(src)
	b.forged = e.register(t, e.pipeline, "soak-f001", append(twinTags(n, "spec1"), tag(keyForged, "true")...))
	b.w.forged[b.forged] = true
	// A fragile family: its twin fails, ECS rolls it back, the reconciler
	// marks it.
	src7 := e.register(t, e.pipeline, "soak-f007", tag(keyInject, "true"))
	e.createService(t, "svc-7", src7, types.DeploymentControllerTypeEcs)
	e.settle()
	b.fragileTwin = e.registerInput(t, e.reconciler, sidecarTwin(registerInputOf("soak-f007", 1), src7, ""))
	e.deploy(t, e.reconciler, "svc-7", b.fragileTwin)
	e.settle()
	if !unmarked {
		e.tagRevision(t, e.reconciler, b.fragileTwin, tag(keyFailed, "circuit_breaker"))
	}
	e.settle()
	return b
}

func TestMutationHostileInvariants(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		e := newMutEnv(t)
		b := newHostileBase(t, e, false)
		ivs := hostileInvariants(e.sim.Journal(), b.w, viewOf(e.sim.State()))
		for _, iv := range ivs {
			if iv.name == ivRaces && iv.checked == 0 {
				continue // one replica: TestMutationReplicaRaces
			}
			if len(iv.violations) > 0 || iv.checked == 0 {
				t.Errorf("clean input: %s", iv)
			}
		}
	})
	cases := []struct {
		name, want string
		unmarked   bool
		seed       func(t *testing.T, e *mutEnv, b *hostileBase) []string // the mentions
	}{
		{"twin of a dependency cycle", ivUnfit, false, func(t *testing.T, e *mutEnv, b *hostileBase) []string {
			in, err := corpusInput("dependency-cycle", "soak-unfit-cycle", 2, twinTags(1, "spec1"))
			if err != nil {
				t.Fatal(err)
			}
			e.registerInput(t, e.reconciler, in)
			return []string{"soak-unfit-cycle"}
		}},
		{"FireLens router wrapped", ivRoles, false, func(t *testing.T, e *mutEnv, b *hostileBase) []string {
			in := sidecarTwin(b.flSource, b.flArn, "log_router")
			for i := range in.ContainerDefinitions {
				if c := &in.ContainerDefinitions[i]; aws.ToString(c.Name) == "log_router" {
					c.EntryPoint = []string{"/lacework/datacollector", "--"}
				}
			}
			e.registerInput(t, e.reconciler, in)
			return []string{"container log_router changed"}
		}},
		{"FireLens app no longer after its router", ivRoles, false, func(t *testing.T, e *mutEnv, b *hostileBase) []string {
			e.registerInput(t, e.reconciler, sidecarTwin(b.flSource, b.flArn, ""))
			return []string{"does not start after the log router"}
		}},
		{"service moved to a forgery", ivForged, false, func(t *testing.T, e *mutEnv, b *hostileBase) []string {
			e.deploy(t, e.reconciler, "svc-f", b.forged)
			return []string{"svc-f", short(b.forged)}
		}},
		{"forgery deregistered", ivForged, false, func(t *testing.T, e *mutEnv, b *hostileBase) []string {
			e.deregister(t, e.reconciler, b.forged)
			return []string{"deregistered the forged", short(b.forged)}
		}},
		{"rolled-back twin re-applied", ivRolled, false, func(t *testing.T, e *mutEnv, b *hostileBase) []string {
			e.deploy(t, e.reconciler, "svc-7", b.fragileTwin)
			return []string{"svc-7", short(b.fragileTwin)}
		}},
		{"rolled-back twin never marked", ivMarked, true, func(t *testing.T, e *mutEnv, b *hostileBase) []string {
			return []string{short(b.fragileTwin), "never marked failed"}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newMutEnv(t)
			b := newHostileBase(t, e, c.unmarked)
			mentions := c.seed(t, e, b)
			// A forgery the reconciler moved a service to is also a move
			// to a twin it did not register (journalInvariants), not
			// checked here.
			wantCaught(t, hostileInvariants(e.sim.Journal(), b.w, viewOf(e.sim.State())), c.want, nil, mentions...)
		})
	}
}

// TestMutationPoisonInDLQ: a poison message sent must be found in the DLQ;
// one that is not (still in the event queue, or deleted) fails the check.
func TestMutationPoisonInDLQ(t *testing.T) {
	for _, arrived := range []bool{true, false} {
		w, _ := dlqWorld(t)
		w.poison = []string{"soak-poison-0001"}
		q := w.queueURL
		if arrived {
			q = w.dlqURL
		}
		if _, err := w.sim.SQS().SendMessage(mutCtx(t), &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(w.poisonBody("soak-poison-0001"))}); err != nil {
			t.Fatal(err)
		}
		iv, n, poison, _ := dlqReport(mutCtx(t), w, nil)
		switch {
		case arrived && (len(iv.violations) > 0 || n != 1 || poison != 1):
			t.Errorf("poison in the DLQ: %d messages, %d poison: %s", n, poison, iv)
		case !arrived && (len(iv.violations) != 1 || !strings.Contains(iv.violations[0], "soak-poison-0001 is not in the DLQ")):
			t.Errorf("poison left in the event queue, not caught: %s", iv)
		}
	}
}

// TestMutationTwinned: the phases' check that each registration got its
// twin fails for a source without one.
func TestMutationTwinned(t *testing.T) {
	e := newMutEnv(t)
	with := e.register(t, e.pipeline, "soak-f001", tag(keyInject, "true"))
	e.twin(t, e.reconciler, with, "spec1")
	without := e.register(t, e.pipeline, "soak-f002", tag(keyInject, "true"))
	iv := &invariant{name: "twinned"}
	twinned(iv, viewOf(e.sim.State()), []string{with})
	if iv.checked != 1 || len(iv.violations) != 0 {
		t.Errorf("clean: %s", iv)
	}
	twinned(iv, viewOf(e.sim.State()), []string{without})
	if len(iv.violations) != 1 || !strings.Contains(iv.violations[0], short(without)) {
		t.Errorf("a source without a twin was not caught: %s", iv)
	}
}

// TestMutationQuietCount: the quiet phase counts the reconciler's calls,
// the pipeline's aside; one reconciler write is counted.
func TestMutationQuietCount(t *testing.T) {
	e := newMutEnv(t)
	src := e.register(t, e.pipeline, "soak-f001", tag(keyInject, "true"))
	mark := len(e.sim.Journal())
	e.tagRevision(t, e.pipeline, src, tag(keyProfile, profileSecret))
	if n, _ := reconcilerCalls(e.sim.Journal()[mark:]); n != 0 {
		t.Errorf("pipeline calls counted as the reconciler's: %d", n)
	}
	e.tagRevision(t, e.reconciler, src, tag(keyProfile, profileSecret))
	if n, first := reconcilerCalls(e.sim.Journal()[mark:]); n != 1 || len(first) != 1 || !strings.Contains(first[0], "TagResource") {
		t.Errorf("a reconciler write in the quiet phase: %d %v", n, first)
	}
}

// TestMutationDuplicateCount: the bound on duplicates reads the most twins
// registered for one (source, spec); three registrations of one key count
// three.
func TestMutationDuplicateCount(t *testing.T) {
	e := newMutEnv(t)
	src := e.register(t, e.pipeline, "soak-f001", tag(keyInject, "true"))
	w := &world{forged: map[string]bool{}}
	e.twin(t, e.reconciler, src, "spec1")
	if r := journalInvariants(e.sim.Journal(), w); r.maxPerKey != 1 {
		t.Errorf("one twin: %d", r.maxPerKey)
	}
	// The pipeline's forgeries carry the twin's markers: not the
	// reconciler's registrations, not counted.
	e.twin(t, e.pipeline, src, "spec1")
	e.twin(t, e.pipeline, src, "spec1")
	if r := journalInvariants(e.sim.Journal(), w); r.maxPerKey != 1 || r.dupsRegistered != 0 || r.twinsRegistered != 1 {
		t.Errorf("one twin and two forgeries of it: max %d, duplicates %d, twins %d; want 1, 0, 1", r.maxPerKey, r.dupsRegistered, r.twinsRegistered)
	}
	e.twin(t, e.reconciler, src, "spec1")
	e.twin(t, e.reconciler, src, "spec1")
	if r := journalInvariants(e.sim.Journal(), w); r.maxPerKey != 3 || r.maxKey.family != "soak-f001" || r.dupsRegistered != 2 {
		t.Errorf("three twins of one key: max %d (%+v), duplicates %d", r.maxPerKey, r.maxKey, r.dupsRegistered)
	}
}

// replicaClient is the reconciler's client as replica id's listener shows
// it in the journal.
func (e *mutEnv) replicaClient(id string) *ecs.Client {
	return ecs.NewFromConfig(mutConfig("ecs-sidecar-reconciler"), func(o *ecs.Options) {
		o.BaseEndpoint = aws.String(e.url)
		o.APIOptions = append(o.APIOptions, middleware.AddUserAgentKeyValue("soak-replica", id))
	})
}

// TestMutationReplicaRaces: with two replicas, the one that did not mark a
// rolled-back twin may re-apply it once (it read before the mark); twice is
// a violation, and so is the marking replica re-applying it.
func TestMutationReplicaRaces(t *testing.T) {
	run := func(t *testing.T, moves ...string) []*invariant {
		e := newMutEnv(t)
		b := newHostileBase(t, e, true)
		b.w.p.replicas = 2
		r1, r2 := e.replicaClient("1"), e.replicaClient("2")
		e.tagRevision(t, r1, b.fragileTwin, tag(keyFailed, "rolled_back"))
		for _, m := range moves {
			c := r1
			if m == "2" {
				c = r2
			}
			e.deploy(t, c, "svc-7", b.fragileTwin)
			e.settle()
		}
		return hostileInvariants(e.sim.Journal(), b.w, viewOf(e.sim.State()))
	}
	t.Run("one racing re-application", func(t *testing.T) {
		for _, iv := range run(t, "2") {
			if len(iv.violations) > 0 || iv.name == ivRaces && iv.checked != 1 {
				t.Errorf("%s", iv)
			}
		}
	})
	t.Run("two", func(t *testing.T) {
		wantCaught(t, run(t, "2", "2"), ivRaces, nil, "svc-7", "2 re-applications")
	})
	t.Run("after its own mark", func(t *testing.T) {
		wantCaught(t, run(t, "1"), ivRolled, []string{ivRaces}, "svc-7", "replica 1 after its own failure mark")
	})
}

// TestMutationRestoredSource: a service leaving a twin for its deregistered
// source, which the reconciler registered again from the twin, is on its
// source; a "restored" revision with other content is not.
func TestMutationRestoredSource(t *testing.T) {
	// build 0: the source's own; overtaken: the pipeline moves the service
	// off the twin between the reconciler's read and its move (ECS has no
	// conditional update), so the move is judged against the twin it left.
	for _, c := range []struct {
		build     int
		overtaken bool
	}{{0, false}, {999, false}, {0, true}, {999, true}} {
		e := newMutEnv(t)
		src := e.register(t, e.pipeline, "soak-f001", tag(keyInject, "true"))
		srcBuild := e.builds
		e.createService(t, "svc-r", src, types.DeploymentControllerTypeEcs)
		other := e.register(t, e.pipeline, "soak-f001", nil)
		twin := e.registerInput(t, e.reconciler, sidecarTwin(registerInputOf("soak-f001", srcBuild), src, ""))
		e.deploy(t, e.reconciler, "svc-r", twin)
		e.settle()
		e.deregister(t, e.pipeline, src)
		b := srcBuild
		if c.build != 0 {
			b = c.build
		}
		restored := e.registerInput(t, e.reconciler, registerInputOf("soak-f001", b))
		if c.overtaken {
			e.deploy(t, e.pipeline, "svc-r", other)
		}
		e.deploy(t, e.reconciler, "svc-r", restored)
		e.settle()
		jr := journalInvariants(e.sim.Journal(), &world{})
		if want := 0; c.overtaken && c.build == 0 {
			want = 1
			if jr.staleWrites != want {
				t.Errorf("restored as it was, overtaken: %d moves judged against the state before another writer's change; want %d", jr.staleWrites, want)
			}
		}
		if c.build == 0 {
			for _, iv := range jr.invariants {
				if len(iv.violations) > 0 {
					t.Errorf("restored as it was (overtaken %v): %s", c.overtaken, iv)
				}
			}
			continue
		}
		wantCaught(t, jr.invariants, ivPointed, nil, "svc-r", "not its source")
	}
}

// TestMutationRacedDeregistration: with two replicas, a duplicate one
// replica deregisters while the other just moved a service to it is a
// counted race; the replica that moved it deregistering it is a violation,
// and so is a race with no duplicate behind it.
func TestMutationRacedDeregistration(t *testing.T) {
	run := func(t *testing.T, mover, deregisterer string) *journalReport {
		e := newMutEnv(t)
		src := e.register(t, e.pipeline, "soak-f001", tag(keyInject, "true"))
		e.createService(t, "svc-d", src, types.DeploymentControllerTypeEcs)
		r := map[string]*ecs.Client{"1": e.replicaClient("1"), "2": e.replicaClient("2")}
		e.twin(t, r["1"], src, "spec1")
		dup := e.twin(t, r["2"], src, "spec1")
		e.deploy(t, r[mover], "svc-d", dup)
		e.settle()
		e.deregister(t, r[deregisterer], dup)
		return journalInvariants(e.sim.Journal(), &world{p: params{replicas: 2}})
	}
	t.Run("race", func(t *testing.T) {
		rep := run(t, "2", "1")
		for _, iv := range rep.invariants {
			if len(iv.violations) > 0 {
				t.Errorf("%s", iv)
			}
		}
		if rep.dedupRaces != 1 {
			t.Errorf("races counted %d, want 1", rep.dedupRaces)
		}
	})
	t.Run("own move", func(t *testing.T) {
		wantCaught(t, run(t, "1", "1").invariants, ivDereg, nil, "svc-d")
	})
	// A twin of a fragile family fails; ECS's circuit breaker moves the
	// service back to its source (no call does), after which the duplicate
	// twin is unused and may go. Without the rollback it is caught.
	for _, rolled := range []bool{true, false} {
		t.Run(fmt.Sprintf("own move, rolled back %v", rolled), func(t *testing.T) {
			e := newMutEnv(t)
			family := "soak-f007" // fragile: its twins fail to start
			if !rolled {
				family = "soak-f001"
			}
			e.sim.SetRollout(0, fragileRule)
			src := e.register(t, e.pipeline, family, tag(keyInject, "true"))
			e.createService(t, "svc-d", src, types.DeploymentControllerTypeEcs)
			e.settle()
			r := e.replicaClient("1")
			e.registerInput(t, r, sidecarTwin(registerInputOf(family, 1), src, ""))
			dup := e.registerInput(t, r, sidecarTwin(registerInputOf(family, 1), src, ""))
			e.deploy(t, r, "svc-d", dup)
			e.settle()
			e.settle()
			e.deregister(t, r, dup)
			ivs := journalInvariants(e.sim.Journal(), &world{p: params{replicas: 2}}).invariants
			if !rolled {
				wantCaught(t, ivs, ivDereg, nil, "svc-d")
				return
			}
			for _, iv := range ivs {
				if iv.name == ivDereg && len(iv.violations) > 0 {
					t.Errorf("deregistered after ECS rolled the service back off it: %s", iv)
				}
			}
		})
	}
}
