package soak

// Mutation tests of the soak's invariant checkers (issue 18): each checker
// passes on a clean input that exercises it (checked > 0, no violation),
// and each seeded violation makes precisely the invariant that names it
// fail, with a violation that names the seeded thing. A zero of the soak
// can then be trusted. The inputs are a real awssim served on 127.0.0.1
// and driven by SDK clients: the pipeline's without an app id, the
// reconciler's with the reconciler's (the journal tells them apart by
// user agent). They need no reconciler binary and run with -short.

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/watch"
)

// The checkers' invariants, by name.
const (
	ivOnTwin     = "opted-in services run the current twin of their source"
	ivOnSource   = "services of opted-out families run a source revision"
	ivDupsInUse  = "(source, spec) with more than one twin in use"
	ivNewest     = "opted-in families' newest source revision has an ACTIVE twin"
	ivQueue      = "event queue drained, no rollout pending"
	ivNonOpted   = "no write of the reconciler to a never-opted-in family or its services"
	ivCodeDeploy = "no write of the reconciler to a service of another deployment controller"
	ivPointed    = "reconciler's UpdateService only to a twin of the service's own source, or that source"
	ivDereg      = "twins deregistered only as duplicates (a lower twin of the (source, spec)) that no service runs"
	ivSecrets    = "token secret's value and plaintext token absent from the logs"

	// Added by a change under way (the hostile soak): covered when
	// the checker has them.
	ivDupsActive = "no (source, spec) with more than one ACTIVE twin (sources in use or newest)"
	ivFragileOff = "services of fragile families (their twins fail) end on a source"
)

// briefed are the invariants a clean input must exercise (checked > 0).
// The DLQ checker's is its only one, whatever its name.
var briefed = []string{ivOnTwin, ivOnSource, ivDupsInUse, ivNewest, ivQueue, ivNonOpted, ivCodeDeploy, ivPointed, ivDereg, ivSecrets, ivDupsActive}

const mutCluster = "mut-c1"

// mutEnv is an awssim on a fake clock served on 127.0.0.1, with the
// pipeline's and the reconciler's ECS clients.
type mutEnv struct {
	sim                  *awssim.Sim
	clock                *awssim.FakeClock
	url                  string
	pipeline, reconciler *ecs.Client
	sqs                  *sqs.Client // the pipeline's
	builds               int
}

func newMutEnv(t *testing.T) *mutEnv {
	t.Helper()
	clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	sim := awssim.New(awssim.Options{Clock: clock, RolloutDelay: time.Minute})
	srv := httptest.NewServer(sim.Handler()) // 127.0.0.1
	t.Cleanup(srv.Close)
	cfg := mutConfig
	endpoint := func(o *ecs.Options) { o.BaseEndpoint = aws.String(srv.URL) }
	e := &mutEnv{sim: sim, clock: clock, url: srv.URL,
		pipeline:   ecs.NewFromConfig(cfg(""), endpoint),
		reconciler: ecs.NewFromConfig(cfg("ecs-sidecar-reconciler"), endpoint),
		sqs:        sqs.NewFromConfig(cfg(""), func(o *sqs.Options) { o.BaseEndpoint = aws.String(srv.URL) }),
	}
	if _, err := e.pipeline.CreateCluster(mutCtx(t), &ecs.CreateClusterInput{ClusterName: aws.String(mutCluster)}); err != nil {
		t.Fatal(err)
	}
	return e
}

// mutConfig is the SDK configuration of the mutation tests' clients: one
// attempt a call (one journal entry per call); appID "ecs-sidecar-reconciler"
// makes the reconciler's.
func mutConfig(appID string) aws.Config {
	return aws.Config{
		Region:      awssim.DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		AppID:       appID,
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
}

func mutCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// settle lets every rollout under way complete.
func (e *mutEnv) settle() { e.clock.Advance(10 * time.Minute); e.sim.Step() }

func twinTags(source int, spec string) []types.Tag {
	return append(tag(keySource, strconv.Itoa(source)), tag(keySpec, spec)...)
}

// register registers a revision of family through c and returns its ARN.
func (e *mutEnv) register(t *testing.T, c *ecs.Client, family string, tags []types.Tag) string {
	t.Helper()
	e.builds++
	arn, err := registerRevision(mutCtx(t), c, family, e.builds, tags)
	if err != nil {
		t.Fatalf("registering %s: %v", family, err)
	}
	return arn
}

// twin registers a twin of the source revision src through c.
func (e *mutEnv) twin(t *testing.T, c *ecs.Client, src, spec string) string {
	t.Helper()
	fam, num := parseRevisionArn(src)
	return e.register(t, c, fam, twinTags(num, spec))
}

func (e *mutEnv) createService(t *testing.T, name, td string, controller types.DeploymentControllerType) {
	t.Helper()
	if _, err := e.pipeline.CreateService(mutCtx(t), fargateService(mutCluster, name, td, controller)); err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
}

// deploy points a service at td through c.
func (e *mutEnv) deploy(t *testing.T, c *ecs.Client, svc, td string) {
	t.Helper()
	if _, err := c.UpdateService(mutCtx(t), &ecs.UpdateServiceInput{Cluster: aws.String(mutCluster), Service: aws.String(svc), TaskDefinition: aws.String(td)}); err != nil {
		t.Fatalf("deploying %s to %s: %v", short(td), svc, err)
	}
}

func (e *mutEnv) scale(t *testing.T, c *ecs.Client, svc string, n int32) {
	t.Helper()
	if _, err := c.UpdateService(mutCtx(t), &ecs.UpdateServiceInput{Cluster: aws.String(mutCluster), Service: aws.String(svc), DesiredCount: aws.Int32(n)}); err != nil {
		t.Fatalf("scaling %s: %v", svc, err)
	}
}

func (e *mutEnv) deregister(t *testing.T, c *ecs.Client, td string) {
	t.Helper()
	if _, err := c.DeregisterTaskDefinition(mutCtx(t), &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(td)}); err != nil {
		t.Fatalf("deregistering %s: %v", short(td), err)
	}
}

func (e *mutEnv) tagRevision(t *testing.T, c *ecs.Client, td string, tags []types.Tag) {
	t.Helper()
	if _, err := c.TagResource(mutCtx(t), &ecs.TagResourceInput{ResourceArn: aws.String(td), Tags: tags}); err != nil {
		t.Fatalf("tagging %s: %v", short(td), err)
	}
}

// wantClean fails unless no invariant broke and every invariant of
// briefed (or the only one) checked something.
func wantClean(t *testing.T, ivs []*invariant) {
	t.Helper()
	for _, iv := range ivs {
		switch {
		case len(iv.violations) > 0:
			t.Errorf("clean input: %s", iv)
		case iv.checked > 0:
		case len(ivs) == 1 || slices.Contains(briefed, iv.name):
			t.Errorf("clean input checks nothing: %s", iv)
		default:
			t.Logf("not exercised by this clean input: %s", iv)
		}
	}
}

// present fails the test unless the checker has the invariant.
func present(t *testing.T, ivs []*invariant, name string) {
	t.Helper()
	for _, iv := range ivs {
		if iv.name == name {
			return
		}
	}
	t.Fatalf("the checker has no invariant %q", name)
}

// wantCaught fails unless the invariant named want reports a violation
// that mentions every string of mentions, and every other invariant, but
// those named in also, reports none.
func wantCaught(t *testing.T, ivs []*invariant, want string, also []string, mentions ...string) {
	t.Helper()
	var found *invariant
	for _, iv := range ivs {
		switch {
		case iv.name == want:
			found = iv
		case slices.Contains(also, iv.name):
			if len(iv.violations) > 0 {
				t.Logf("also broken, as expected: %s", iv)
			}
		case len(iv.violations) > 0:
			t.Errorf("an invariant the mutation does not break failed: %s", iv)
		}
	}
	if found == nil {
		t.Fatalf("no invariant named %q", want)
	}
	for _, v := range found.violations {
		ok := true
		for _, m := range mentions {
			ok = ok && strings.Contains(v, m)
		}
		if ok {
			t.Logf("caught: %s", v)
			return
		}
	}
	t.Errorf("the seeded violation was missed or not named (want a violation mentioning %q): %s", mentions, found)
}

// journalBase is the clean history: the pipeline's families and services,
// the reconciler's twins, deploys and one duplicate's cleanup.
type journalBase struct {
	opted1, opted2, opted4, opted5 string // fam-opted: source, twin, later source, its twin
	plain1                         string // fam-plain: never opted in
	other1, other2                 string // fam-other: source, twin
}

func newJournalBase(t *testing.T, e *mutEnv) *journalBase {
	t.Helper()
	b := &journalBase{}
	p, r := e.pipeline, e.reconciler
	b.opted1 = e.register(t, p, "fam-opted", tag(keyInject, "true"))
	b.plain1 = e.register(t, p, "fam-plain", nil)
	b.other1 = e.register(t, p, "fam-other", append(tag(keyInject, "true"), tag(keyProfile, profileSecret)...))
	e.createService(t, "svc-opted", b.opted1, types.DeploymentControllerTypeEcs)
	e.createService(t, "svc-cd", b.opted1, types.DeploymentControllerTypeCodeDeploy)
	e.createService(t, "svc-plain", b.plain1, types.DeploymentControllerTypeEcs)
	e.createService(t, "svc-other", b.other1, types.DeploymentControllerTypeEcs)

	b.opted2 = e.twin(t, r, b.opted1, "spec-a")
	e.deploy(t, r, "svc-opted", b.opted2)
	dup := e.twin(t, r, b.opted1, "spec-a") // a retried registration: a duplicate nobody runs
	e.deregister(t, r, dup)
	b.other2 = e.twin(t, r, b.other1, "spec-a")
	e.deploy(t, r, "svc-other", b.other2)
	// The pipeline deploys a new source; the reconciler follows.
	b.opted4 = e.register(t, p, "fam-opted", nil)
	e.deploy(t, p, "svc-opted", b.opted4)
	b.opted5 = e.twin(t, r, b.opted4, "spec-a")
	e.deploy(t, r, "svc-opted", b.opted5)
	e.scale(t, p, "svc-plain", 2) // the pipeline may write anywhere
	e.settle()
	return b
}

func TestMutationJournalInvariants(t *testing.T) {
	w := &world{plainToken: "mut-plain-" + crand.Text(), secretArn: "arn:aws:secretsmanager:us-east-1:" + awssim.DefaultAccount + ":secret:mut"}
	t.Run("clean", func(t *testing.T) {
		e := newMutEnv(t)
		newJournalBase(t, e)
		jr := journalInvariants(e.sim.Journal(), w)
		wantClean(t, jr.invariants)
		if jr.twinsDeregister != 1 || jr.dupsRegistered != 1 {
			t.Errorf("clean history: %d twins deregistered, %d duplicates registered; want 1 and 1", jr.twinsDeregister, jr.dupsRegistered)
		}
	})
	r := func(e *mutEnv) *ecs.Client { return e.reconciler }
	cases := []struct {
		name string
		want string
		seed func(t *testing.T, e *mutEnv, b *journalBase) (mentions []string)
	}{
		{"reconciler registers a twin in a never-opted-in family", ivNonOpted, func(t *testing.T, e *mutEnv, b *journalBase) []string {
			e.twin(t, r(e), b.plain1, "spec-a")
			return []string{"fam-plain (never opted in)", "RegisterTaskDefinition"}
		}},
		{"reconciler updates a service of a never-opted-in family", ivNonOpted, func(t *testing.T, e *mutEnv, b *journalBase) []string {
			e.scale(t, r(e), "svc-plain", 3)
			return []string{"fam-plain (never opted in)", "UpdateService " + mutCluster + "/svc-plain"}
		}},
		{"reconciler tags a never-opted-in family's revision", ivNonOpted, func(t *testing.T, e *mutEnv, b *journalBase) []string {
			e.tagRevision(t, r(e), b.plain1, tag(keyFailed, "mutation"))
			return []string{"fam-plain (never opted in)", "TagResource"}
		}},
		{"reconciler scales a CODE_DEPLOY service", ivCodeDeploy, func(t *testing.T, e *mutEnv, b *journalBase) []string {
			e.scale(t, r(e), "svc-cd", 3)
			return []string{mutCluster + "/svc-cd", "CODE_DEPLOY"}
		}},
		{"reconciler tries to deploy a twin to a CODE_DEPLOY service", ivCodeDeploy, func(t *testing.T, e *mutEnv, b *journalBase) []string {
			_, err := r(e).UpdateService(mutCtx(t), &ecs.UpdateServiceInput{Cluster: aws.String(mutCluster), Service: aws.String("svc-cd"), TaskDefinition: aws.String(b.opted2)})
			if err == nil {
				t.Fatal("ECS deployed a task definition to a CODE_DEPLOY service")
			}
			return []string{mutCluster + "/svc-cd", "CODE_DEPLOY"}
		}},
		{"reconciler points a service at a twin of another family's source", ivPointed, func(t *testing.T, e *mutEnv, b *journalBase) []string {
			e.deploy(t, r(e), "svc-opted", b.other2)
			return []string{mutCluster + "/svc-opted", "to the twin " + short(b.other2)}
		}},
		{"reconciler points a service at a twin of a source it never ran", ivPointed, func(t *testing.T, e *mutEnv, b *journalBase) []string {
			src := e.register(t, e.pipeline, "fam-opted", nil) // registered, not deployed
			twin := e.twin(t, r(e), src, "spec-a")
			e.deploy(t, r(e), "svc-opted", twin)
			return []string{mutCluster + "/svc-opted", "to the twin " + short(twin)}
		}},
		{"reconciler points a service at another family's source", ivPointed, func(t *testing.T, e *mutEnv, b *journalBase) []string {
			e.deploy(t, r(e), "svc-opted", b.other1)
			return []string{mutCluster + "/svc-opted", "to " + short(b.other1) + ", neither a twin"}
		}},
		{"reconciler deregisters a duplicate twin a service runs", ivDereg, func(t *testing.T, e *mutEnv, b *journalBase) []string {
			dup := e.twin(t, r(e), b.opted4, "spec-a") // a duplicate of opted5
			e.deploy(t, r(e), "svc-opted", dup)
			e.deregister(t, r(e), dup)
			return []string{"the twin " + short(dup), "services on it: [" + mutCluster + "/svc-opted]"}
		}},
		{"reconciler deregisters the twin a service runs after a rollback to it", ivDereg, func(t *testing.T, e *mutEnv, b *journalBase) []string {
			e.deploy(t, e.pipeline, "svc-opted", b.opted1) // the pipeline rolls back
			e.deploy(t, r(e), "svc-opted", b.opted2)       // the reconciler moves it to its twin
			e.deregister(t, r(e), b.opted2)
			return []string{"the twin " + short(b.opted2), mutCluster + "/svc-opted"}
		}},
		{"reconciler deregisters the only twin of a (source, spec)", ivDereg, func(t *testing.T, e *mutEnv, b *journalBase) []string {
			twin := e.twin(t, r(e), b.other1, "spec-b")
			e.deregister(t, r(e), twin)
			return []string{"the twin " + short(twin), "(source, spec): false"}
		}},
		{"reconciler deregisters a source revision", ivDereg, func(t *testing.T, e *mutEnv, b *journalBase) []string {
			e.deregister(t, r(e), b.opted1)
			return []string{"deregistered " + short(b.opted1) + ", not a twin"}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newMutEnv(t)
			b := newJournalBase(t, e)
			mentions := c.seed(t, e, b)
			e.settle()
			wantCaught(t, journalInvariants(e.sim.Journal(), w).invariants, c.want, nil, mentions...)
		})
	}
}

// stateBase is the clean final state: an opted-in family's service on the
// twin of its source, an opted-out family's on its source, a CODE_DEPLOY
// service (ignored) on a source, the event queue empty.
type stateBase struct {
	in1, in2, out1 string
}

func newStateBase(t *testing.T, e *mutEnv) *stateBase {
	t.Helper()
	b := &stateBase{}
	p, r := e.pipeline, e.reconciler
	if _, err := e.sqs.CreateQueue(mutCtx(t), &sqs.CreateQueueInput{QueueName: aws.String(awssim.DemoQueue)}); err != nil {
		t.Fatal(err)
	}
	b.in1 = e.register(t, p, "fam-in", tag(keyInject, "true"))
	b.out1 = e.register(t, p, "fam-out", tag(keyInject, "false"))
	e.createService(t, "svc-in", b.in1, types.DeploymentControllerTypeEcs)
	e.createService(t, "svc-out", b.out1, types.DeploymentControllerTypeEcs)
	e.createService(t, "svc-cd", b.in1, types.DeploymentControllerTypeCodeDeploy)
	b.in2 = e.twin(t, r, b.in1, "spec-a")
	e.deploy(t, r, "svc-in", b.in2)
	e.settle()
	return b
}

func TestMutationStateInvariants(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		e := newMutEnv(t)
		newStateBase(t, e)
		wantClean(t, stateInvariants(viewOf(e.sim.State())))
	})
	svcIn := "service/" + mutCluster + "/svc-in"
	cases := []struct {
		name string
		want string
		also []string // invariants the mutation cannot help breaking too
		seed func(t *testing.T, e *mutEnv, b *stateBase) (mentions []string)
	}{
		{"opted-in service left on its source after a rollback", ivOnTwin, nil, func(t *testing.T, e *mutEnv, b *stateBase) []string {
			e.deploy(t, e.pipeline, "svc-in", b.in1)
			return []string{svcIn, "runs the source " + short(b.in1)}
		}},
		{"opted-in service on an INACTIVE twin", ivOnTwin, nil, func(t *testing.T, e *mutEnv, b *stateBase) []string {
			e.twin(t, e.reconciler, b.in1, "spec-a") // an ACTIVE twin of the newest source remains
			e.deregister(t, e.reconciler, b.in2)
			return []string{svcIn, "runs the INACTIVE twin " + short(b.in2)}
		}},
		{"opted-in service on a failed-marked twin", ivOnTwin, nil, func(t *testing.T, e *mutEnv, b *stateBase) []string {
			e.tagRevision(t, e.reconciler, b.in2, tag(keyFailed, "circuit-breaker"))
			return []string{svcIn, "runs the twin " + short(b.in2) + " marked failed (circuit-breaker)"}
		}},
		{"opted-in service on a twin whose source has twins of two specs", ivOnTwin, nil, func(t *testing.T, e *mutEnv, b *stateBase) []string {
			e.twin(t, e.reconciler, b.in1, "spec-b")
			return []string{svcIn, "runs " + short(b.in2) + ", and source 1 has twins of 2 specs"}
		}},
		{"opted-in service on a higher duplicate twin", ivOnTwin, []string{ivDupsActive}, func(t *testing.T, e *mutEnv, b *stateBase) []string {
			dup := e.twin(t, e.reconciler, b.in1, "spec-a")
			e.deploy(t, e.reconciler, "svc-in", dup)
			return []string{svcIn, "runs the twin " + short(dup) + ", not the lowest ACTIVE twin"}
		}},
		{"opted-out family's service on a twin", ivOnSource, nil, func(t *testing.T, e *mutEnv, b *stateBase) []string {
			twin := e.twin(t, e.reconciler, b.out1, "spec-a")
			e.deploy(t, e.reconciler, "svc-out", twin)
			return []string{"service/" + mutCluster + "/svc-out", "runs the twin " + short(twin) + " of an opted-out family"}
		}},
		{"twin left in use after the family opts out", ivOnSource, nil, func(t *testing.T, e *mutEnv, b *stateBase) []string {
			e.tagRevision(t, e.pipeline, b.in1, tag(keyInject, "false"))
			return []string{svcIn, "runs the twin " + short(b.in2) + " of an opted-out family"}
		}},
		// Two twins of one (source, spec) in use: one of them is not the
		// lowest ACTIVE twin, so onTwin breaks too (dupsInUse cannot fail
		// alone while onTwin and onSource hold), and both are ACTIVE.
		{"two twins of one (source, spec) in use", ivDupsInUse, []string{ivOnTwin, ivDupsActive}, func(t *testing.T, e *mutEnv, b *stateBase) []string {
			dup := e.twin(t, e.reconciler, b.in1, "spec-a")
			e.createService(t, "svc-in2", dup, types.DeploymentControllerTypeEcs)
			return []string{"fam-in source 1 spec spec-a: 2 twins in use", short(b.in2), short(dup)}
		}},
		{"opted-in family's newest source without a twin", ivNewest, nil, func(t *testing.T, e *mutEnv, b *stateBase) []string {
			src := e.register(t, e.pipeline, "fam-in", nil) // inherits the opt-in, not deployed
			_, num := parseRevisionArn(src)
			return []string{"fam-in: no ACTIVE twin of its newest source " + strconv.Itoa(num)}
		}},
		{"a message left in the event queue", ivQueue, nil, func(t *testing.T, e *mutEnv, b *stateBase) []string {
			if _, err := e.sqs.SendMessage(mutCtx(t), &sqs.SendMessageInput{QueueUrl: aws.String(awssim.DemoQueueURL(e.url)), MessageBody: aws.String("left behind")}); err != nil {
				t.Fatal(err)
			}
			return []string{"1 messages left in " + awssim.DemoQueue}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newMutEnv(t)
			b := newStateBase(t, e)
			mentions := c.seed(t, e, b)
			e.settle()
			wantCaught(t, stateInvariants(viewOf(e.sim.State())), c.want, c.also, mentions...)
		})
	}
	t.Run("two ACTIVE twins of one (source, spec), one in use", func(t *testing.T) {
		e := newMutEnv(t)
		b := newStateBase(t, e)
		present(t, stateInvariants(viewOf(e.sim.State())), ivDupsActive)
		e.twin(t, e.reconciler, b.in1, "spec-a") // a duplicate nobody runs, not cleaned up
		e.settle()
		wantCaught(t, stateInvariants(viewOf(e.sim.State())), ivDupsActive, nil, "fam-in source 1 spec spec-a: 2 ACTIVE twins")
	})
	t.Run("a fragile family's service left on a twin", func(t *testing.T) {
		e := newMutEnv(t)
		newStateBase(t, e)
		present(t, stateInvariants(viewOf(e.sim.State())), ivFragileOff)
		// soak-f007 is fragile by name (its twins' rollouts fail in the soak).
		src := e.register(t, e.pipeline, "soak-f007", tag(keyInject, "true"))
		e.createService(t, "svc-fragile", src, types.DeploymentControllerTypeEcs)
		twin := e.twin(t, e.reconciler, src, "spec-a")
		e.deploy(t, e.reconciler, "svc-fragile", twin)
		e.settle()
		wantCaught(t, stateInvariants(viewOf(e.sim.State())), ivFragileOff, nil, "service/"+mutCluster+"/svc-fragile", "runs the twin "+short(twin))
	})
	t.Run("a rollout left pending", func(t *testing.T) {
		e := newMutEnv(t)
		newStateBase(t, e)
		if _, err := e.pipeline.UpdateService(mutCtx(t), &ecs.UpdateServiceInput{Cluster: aws.String(mutCluster), Service: aws.String("svc-out"), ForceNewDeployment: true}); err != nil {
			t.Fatal(err)
		}
		// No settle: the deployment is under way.
		wantCaught(t, stateInvariants(viewOf(e.sim.State())), ivQueue, nil, "1 rollouts pending")
	})
}

// dlqWorld is the demo account (its queue, DLQ and rule) and the part of a
// world dlqInvariant reads.
func dlqWorld(t *testing.T) (*world, string) {
	t.Helper()
	sim := awssim.New(awssim.Options{})
	srv := httptest.NewServer(sim.Handler()) // 127.0.0.1
	t.Cleanup(srv.Close)
	if err := sim.SeedDemo(mutCtx(t)); err != nil {
		t.Fatal(err)
	}
	return &world{sim: sim, endpoint: srv.URL, queueURL: awssim.DemoQueueURL(srv.URL), dlqURL: sim.QueueURL(srv.URL, awssim.DemoDLQ)}, srv.URL
}

func TestMutationDLQInvariant(t *testing.T) {
	send := func(t *testing.T, w *world, body string) {
		t.Helper()
		if _, err := w.sim.SQS().SendMessage(mutCtx(t), &sqs.SendMessageInput{QueueUrl: aws.String(w.dlqURL), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	garbage := func(t *testing.T, w *world) {
		for _, body := range []string{"not json {", `{"hello":"world"}`} { // what the pipeline puts on the queue
			send(t, w, body)
		}
	}
	t.Run("clean", func(t *testing.T) {
		w, _ := dlqWorld(t)
		garbage(t, w)
		iv, n := dlqInvariant(mutCtx(t), w)
		wantClean(t, []*invariant{iv})
		if n != 2 {
			t.Errorf("drained %d messages, want 2", n)
		}
	})
	// The lives of two replicas, in seconds from t0: replica 0 is killed
	// every 10 s (lives 1-5) and its sixth life runs on; replica 1's one
	// life runs on.
	t0 := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }
	r0 := &replica{id: 0}
	for i := range 6 {
		l := &life{started: at(float64(10 * i))}
		if i < 5 {
			l.endAt = at(float64(10*i + 10))
		}
		r0.lives = append(r0.lives, l)
	}
	r1 := &replica{id: 1, lives: []*life{{started: t0}}}
	holder := livesHolder([]*replica{r0, r1})
	by := func(id int, sec float64) awssim.ReceiveRecord {
		return awssim.ReceiveRecord{At: at(sec), UserAgent: fmt.Sprintf("aws-sdk-go-v2/1.41.0 app/ecs-sidecar-reconciler soak-replica/%d", id)}
	}
	dropped := func(r awssim.ReceiveRecord) awssim.ReceiveRecord { r.Dropped = true; return r }
	refused := func(r awssim.ReceiveRecord) awssim.ReceiveRecord { r.ExtensionRefused = true; return r }
	for _, tc := range []struct {
		name     string
		receives []awssim.ReceiveRecord
		dead     float64
		want     string // "" when the event is accounted for, else part of the violation
	}{
		{name: "five holders killed holding it",
			receives: []awssim.ReceiveRecord{by(0, 1), by(0, 11), by(0, 21), by(0, 31), by(0, 41)}, dead: 51},
		{name: "dropped and refused receives, then three holders killed",
			receives: []awssim.ReceiveRecord{dropped(by(1, 1)), refused(by(1, 2)), by(0, 11), by(0, 21), by(0, 31)}, dead: 45},
		{name: "the last holder lives on",
			receives: []awssim.ReceiveRecord{by(0, 1), by(0, 11), by(0, 21), by(0, 31), by(1, 41)}, dead: 51,
			want: "receive 5 at 12:00:41.000 by replica 1's life 1 (started 12:00:00.000, ended never), which still ran when the message came back at 12:00:51.000"},
		{name: "a holder let it lapse before it was killed",
			receives: []awssim.ReceiveRecord{by(0, 1), by(0, 5), by(0, 21), by(0, 31), by(0, 41)}, dead: 51,
			want: "receive 1 at 12:00:01.000 by replica 0's life 1 (started 12:00:00.000, ended 12:00:10.000), which still ran when the message came back at 12:00:05.000"},
		{name: "a receive by no replica",
			receives: []awssim.ReceiveRecord{by(0, 1), by(0, 11), by(0, 21), by(0, 31), {At: at(41), UserAgent: "aws-cli/2.15"}}, dead: 51,
			want: `receive 5 at 12:00:41.000 by no replica's process (User-Agent "aws-cli/2.15")`},
		{name: "the DLQ drain's own receive is not counted",
			receives: []awssim.ReceiveRecord{by(0, 1), by(0, 11), by(0, 21), by(0, 31), by(0, 41), {At: at(60)}}, dead: 51},
		{name: "fewer receives than maxReceiveCount",
			receives: []awssim.ReceiveRecord{by(0, 1), by(0, 11)}, dead: 21,
			want: "2 of 5 receives (maxReceiveCount) recorded, 0 of them unexplained"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, url := dlqWorld(t)
			garbage(t, w)
			// A real event: the rule delivers the CloudTrail event of a call
			// to the event queue; it is moved to the DLQ.
			pipeline := ecs.NewFromConfig(aws.Config{Region: awssim.DefaultRegion, Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")},
				func(o *ecs.Options) { o.BaseEndpoint = aws.String(url) })
			if _, err := pipeline.UpdateService(mutCtx(t), &ecs.UpdateServiceInput{Cluster: aws.String(awssim.DemoCluster), Service: aws.String("web"), DesiredCount: aws.Int32(3)}); err != nil {
				t.Fatal(err)
			}
			var body string
			for body == "" {
				out, err := w.sim.SQS().ReceiveMessage(mutCtx(t), &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.queueURL), MaxNumberOfMessages: 10})
				if err != nil {
					t.Fatal(err)
				}
				if len(out.Messages) == 0 {
					t.Fatal("the UpdateService call put no CloudTrail event on the event queue")
				}
				for _, m := range out.Messages {
					if b := aws.ToString(m.Body); strings.Contains(b, `"eventName":"UpdateService"`) {
						body = b
					}
				}
			}
			send(t, w, body)
			ev, err := watch.Parse([]byte(body))
			if err != nil {
				t.Fatalf("the seeded event does not parse: %v", err)
			}
			// The event was sent to the DLQ directly: its real history is
			// the checker's own receive there (a Go caller, no User-Agent);
			// the case's history stands for the receives.
			history := func(id string) ([]awssim.ReceiveRecord, time.Time, bool) {
				recs, dead, ok := w.sim.ReceiveHistory(id)
				if !ok || len(recs) != 1 || recs[0].UserAgent != "" || !dead.IsZero() {
					t.Errorf("ReceiveHistory(%s) = %+v, dead-lettered %s, known %v; want the checker's receive only, zero, true", id, recs, dead, ok)
				}
				return tc.receives, at(tc.dead), ok
			}
			iv, _, _, outlived := dlqReportWith(mutCtx(t), w, history, holder)
			if tc.want == "" {
				if len(iv.violations) != 0 || outlived != 1 || iv.checked != 3 {
					t.Errorf("want it counted (outlived %d), not flagged: %s", outlived, iv)
				}
				return
			}
			wantCaught(t, []*invariant{iv}, iv.name, nil, "a parseable event in the DLQ", tc.want, ev.ID)
			if len(iv.violations) != 1 || iv.checked != 3 || outlived != 0 {
				t.Errorf("want the one parseable message of 3 flagged: %s", iv)
			}
		})
	}
}

func TestMutationSecretsInvariant(t *testing.T) {
	w := &world{secretValue: "mut-secret-" + crand.Text(), plainToken: "mut-plain-" + crand.Text()}
	dir := t.TempDir()
	clean := `{"time":"2026-06-01T12:00:00Z","level":"INFO","msg":"registered twin","family":"soak-f001","tokenSecretArn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:soak/lacework-token"}
{"time":"2026-06-01T12:00:01Z","level":"DEBUG","msg":"deployed","service":"soak-c00/soak-s0001"}
`
	write := func(t *testing.T, name, text string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cleanLog := write(t, "replica-0.log", clean)
	t.Run("clean", func(t *testing.T) {
		iv := secretsInvariant(w, []string{cleanLog})
		wantClean(t, []*invariant{iv})
		if iv.checked != 2 {
			t.Errorf("checked %d values, want 2 (two tokens, one log)", iv.checked)
		}
	})
	cases := []struct {
		name, what, value string
	}{
		{"the token secret's value in a log line", "the token secret's value", w.secretValue},
		{"the plaintext token in a log line", "the plaintext token", w.plainToken},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			leak := write(t, "replica-leak-"+strconv.Itoa(i+1)+".log", clean+`{"level":"DEBUG","msg":"container environment","LACEWORK_ACCESS_TOKEN":"`+c.value+`"}`+"\n")
			iv := secretsInvariant(w, []string{cleanLog, leak})
			wantCaught(t, []*invariant{iv}, ivSecrets, nil, c.what+" is in "+leak+" (1 times)")
			if len(iv.violations) != 1 {
				t.Errorf("want only the leaking log and value flagged: %s", iv)
			}
		})
	}
}
