package soak

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// The tag vocabulary (DESIGN.md, default prefix) and the reconciler's
// SDK app id, which the journal's user agents carry.
const (
	keyInject     = "ecs-sidecar/inject"
	keyProfile    = "ecs-sidecar/profile"
	keySource     = "ecs-sidecar/source"
	keySpec       = "ecs-sidecar/spec"
	keyFailed     = "ecs-sidecar/failed"
	reconcilerApp = "app/ecs-sidecar-reconciler"

	profileSecret    = "lacework"  // token from Secrets Manager
	profilePlaintext = "plaintext" // token as a plain variable (allowPlaintextToken)
	executionRole    = "arn:aws:iam::" + awssim.DefaultAccount + ":role/ecsTaskExecutionRole"
)

// params size one soak.
type params struct {
	families, services, clusters int
	replicas                     int                      // reconciler processes at once
	chaos                        time.Duration            // pipeline, faults and kills
	killMin, killMax             time.Duration            // a process lives this long before its SIGKILL
	chaosMax                     time.Duration            // the chaos goes on past chaos until every kill step was hit, up to this
	armFor                       time.Duration            // a kill aimed at a step waits this long for its call
	pipelineEvery                time.Duration            // one pipeline operation per tick
	visibility                   time.Duration            // the consumer's visibility timeout
	quiet                        time.Duration            // the quiet phase: no reconciler write for this long
	phaseOps                     int                      // registrations in the events-only and sweeps-only phases
	throttleScale                float64                  // ECS's token buckets, refill scaled
	faults                       map[string]awssim.Faults // during the chaos, by SetFaults key
	converge                     time.Duration            // failure guard of the convergence wait
	seed                         uint64
	logLevel                     string
	maxAttempts                  int // the reconciler's aws.maxAttempts
}

type family struct {
	name    string
	kind    string // "" (the demo's task definition), or a hostile shape: unfit, firelens, mesh
	corpus  string // hostile shapes: the corpus case it is registered from
	profile string // the profile tag written with every opt-in tag
	flips   bool   // the pipeline flips its opt-in tag
	optIn   bool   // the pipeline's view
	revs    []string
	svcs    []*service
}

type service struct {
	cluster, name string
	fam           *family
	codeDeploy    bool
}

// world is the simulated account, served on 127.0.0.1, and what the soak
// knows of it.
type world struct {
	t         *testing.T
	p         params
	sim       *awssim.Sim
	handler   http.Handler // the simulator's, which every replica's listener serves through
	endpoint  string
	queueURL  string
	dlqURL    string
	secretArn string
	// The two token values: never printed, searched for in the logs.
	secretValue, plainToken string
	fams                    []*family
	svcs                    []*service
	dir                     string

	mu     sync.Mutex
	forged map[string]bool // revisions the pipeline registered or retagged with a twin's markers
	poison []string        // ids of the poison messages sent
	// hostileDone counts, by kind (hostileKinds), the hostile operations
	// that took place; the chaos runs until each took place once.
	hostileDone [hostileKinds]int
}

// hostileCovered says whether every kind of hostile operation took place.
func (w *world) hostileCovered() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.hostileDone {
		if n == 0 {
			return false
		}
	}
	return true
}

// newWorld serves an awssim on 127.0.0.1 (rollouts stepped on the wall
// clock) seeded with the demo account (its queue, DLQ and rule are the
// event path) and p.families families and p.services services.
func newWorld(t *testing.T, p params) *world {
	t.Helper()
	// Twins of fragile families fail their rollouts (the wrapped
	// entrypoint breaks that app): ECS's circuit breaker rolls them back
	// and the reconciler must mark them failed, never re-apply them.
	sim := awssim.New(awssim.Options{RolloutDelay: 300 * time.Millisecond, Seed: int64(p.seed), RolloutRule: fragileRule})
	srv := httptest.NewServer(sim.Handler()) // 127.0.0.1
	t.Cleanup(srv.Close)
	t.Cleanup(sim.StepEvery(100 * time.Millisecond))

	w := &world{t: t, p: p, sim: sim, handler: sim.Handler(), endpoint: srv.URL, dir: t.TempDir(), forged: map[string]bool{},
		queueURL:    awssim.DemoQueueURL(srv.URL),
		dlqURL:      sim.QueueURL(srv.URL, awssim.DemoDLQ),
		secretValue: "soak-secret-" + crand.Text(),
		plainToken:  "soak-plain-" + crand.Text(),
	}
	ctx := context.Background()
	if err := sim.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := sim.SecretsManager().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("soak/lacework-token"), SecretString: aws.String(w.secretValue)})
	if err != nil {
		t.Fatal(err)
	}
	w.secretArn = aws.ToString(out.ARN)

	rng := rand.New(rand.NewPCG(p.seed, 1))
	e := sim.ECS()
	clusters := make([]string, p.clusters)
	for i := range clusters {
		clusters[i] = fmt.Sprintf("soak-c%02d", i)
		if _, err := e.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(clusters[i])}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range p.families {
		f := &family{name: fmt.Sprintf("soak-f%03d", i), profile: profileSecret}
		if rng.IntN(5) == 0 {
			f.profile = profilePlaintext
		}
		var tags []types.Tag
		switch r := rng.IntN(20); {
		case r < 5: // a quarter never opts in: untagged or tagged false
			if r < 2 {
				tags = tag(keyInject, "false")
			}
		default:
			f.flips = true
			switch {
			case r < 14:
				f.optIn = true
				tags = append(tag(keyInject, "true"), tag(keyProfile, f.profile)...)
			case r < 17:
				tags = append(tag(keyInject, "false"), tag(keyProfile, f.profile)...)
			}
		}
		arn, err := registerRevision(ctx, e, f.name, 1, tags)
		if err != nil {
			t.Fatal(err)
		}
		f.revs = append(f.revs, arn)
		w.fams = append(w.fams, f)
	}
	for i := range p.services {
		f := w.fams[rng.IntN(len(w.fams))]
		s := &service{cluster: clusters[rng.IntN(len(clusters))], name: fmt.Sprintf("soak-s%04d", i), fam: f, codeDeploy: rng.IntN(50) == 0}
		controller := types.DeploymentControllerTypeEcs
		if s.codeDeploy {
			controller = types.DeploymentControllerTypeCodeDeploy
		}
		if _, err := e.CreateService(ctx, fargateService(s.cluster, s.name, f.revs[0], controller)); err != nil {
			t.Fatal(err)
		}
		f.svcs = append(f.svcs, s)
		w.svcs = append(w.svcs, s)
	}
	w.addHostile(ctx, clusters[0])
	return w
}

// fargateService is a Fargate service of one task on td, with the circuit
// breaker's rollback on.
func fargateService(cluster, name, td string, controller types.DeploymentControllerType) *ecs.CreateServiceInput {
	return &ecs.CreateServiceInput{
		Cluster: aws.String(cluster), ServiceName: aws.String(name), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: []string{"subnet-0soak000000000000"}, SecurityGroups: []string{"sg-0soak000000000000"}}},
		DeploymentController: &types.DeploymentController{Type: controller},
		DeploymentConfiguration: &types.DeploymentConfiguration{
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
	}
}

func tag(k, v string) []types.Tag { return []types.Tag{{Key: aws.String(k), Value: aws.String(v)}} }

type registrar interface {
	RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput, optFns ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error)
}

// registerRevision registers a revision of family that states its command
// (the images are fake: the reconciler runs with images.resolve false).
func registerRevision(ctx context.Context, e registrar, family string, build int, tags []types.Tag) (string, error) {
	td := registerInputOf(family, build)
	td.Tags = tags
	out, err := e.RegisterTaskDefinition(ctx, td)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
}

// registerInputOf is the demo's task definition of family at build, its
// command stated.
func registerInputOf(family string, build int) *ecs.RegisterTaskDefinitionInput {
	td := awssim.DemoTaskDefinition(family, fmt.Sprintf("registry.invalid/soak/%s:build-%d", family, build), nil)
	td.ContainerDefinitions[0].EntryPoint = []string{"/bin/app"}
	td.ContainerDefinitions[0].Command = []string{"serve", "--port", "8080"}
	return td
}

// phaseConfig is what a phase changes in the reconciler's configuration.
type phaseConfig struct {
	name                     string
	servicesEvery, famsEvery time.Duration
	queueURL                 string // instead of the event queue
}

// config writes the reconciler's configuration file for a replica's
// endpoint: the simulator's queue, the phase's sweeps, both profiles.
func (w *world) config(endpoint string, ph phaseConfig, id int) string {
	url := w.queueURL
	if ph.queueURL != "" {
		url = ph.queueURL
	}
	queue := fmt.Sprintf("queue: {url: %q, waitTimeSeconds: 1, visibilityTimeout: %ds, maxMessages: 10}\n", url, int(w.p.visibility/time.Second))
	doc := fmt.Sprintf(`aws:
  region: us-east-1
  endpoint: %s
  maxAttempts: %d
  apiBudget: {share: 0.5, bucketScale: %g}
%ssweeps:
  services: {interval: %s, jitter: 0.2}
  families: {interval: %s, jitter: 0.2, maxCallsPerSecond: 20}
workers: 8
# contestedAfter 0: the soak's pipeline rolls services back to their source
# at random, and its invariant wants every opted-in service on its twin; a
# contested service (left on its source on purpose) is the controller
# tests' subject (TestIaCThatRevertsEveryApplyEndsContested). rampStart 0:
# the fragile families fail a rollout every few seconds, and the ramp would
# hold the window at its start the whole chaos; the ramp is the rollout
# tests' and the bench's subject.
rollouts: {maxInFlight: 100, maxInFlightPerCluster: 50, rampStart: 0, deadline: 5m, contestedAfter: 0}
images: {resolve: false}
metrics: {listen: "127.0.0.1:0"}
log: {format: json, level: %s}
defaultProfile: %s
# Tags pick the plaintext profile on purpose: the soak checks its token
# never leaks. Without this list a tag may not pick it (issue 17).
tagProfiles: [%s, %s]
profiles:
  %s:
    tokenSecretArn: %s
    defaultExecutionRoleArn: %s
  %s:
    tokenPlaintext: %q
    allowPlaintextToken: true
    defaultExecutionRoleArn: %s
`, endpoint, w.p.maxAttempts, w.p.throttleScale, queue, ph.servicesEvery, ph.famsEvery, w.p.logLevel, profileSecret, profileSecret, profilePlaintext,
		profileSecret, w.secretArn, executionRole, profilePlaintext, w.plainToken, executionRole)
	path := filepath.Join(w.dir, fmt.Sprintf("reconciler-%d-%s.yaml", id, ph.name))
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// The steps a kill can interrupt, in the order the report prints them.
// startup: before the process was ready; idle: ready, at a random moment;
// register: the reconciler's RegisterTaskDefinition served, its answer
// never delivered, so the UpdateService that follows it never made; update
// and tag: during UpdateService and TagResource (the call served or not, at
// random); held: while the consumer holds messages (its DeleteMessageBatch
// never served, so they come back after the visibility timeout).
var killSteps = []string{"startup", "idle", "register", "update", "tag", "held"}

// stepOps are the calls that fire an armed step, and whether the call is
// served before the kill (a coin decides for update and tag).
var stepOps = map[string]string{"register": "RegisterTaskDefinition", "update": "UpdateService", "tag": "TagResource", "held": "DeleteMessageBatch"}

// life is one reconciler process.
type life struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	err      error         // its exit, once done is closed
	logStart int64         // the log's size when it started
	started  time.Time     // just before the process started

	mu        sync.Mutex
	killedFor string    // the step a kill interrupted; "" while nobody killed it
	endAt     time.Time // when its SIGKILL or SIGTERM was sent, or it exited by itself
}

// ended is when the life stopped holding messages: its SIGKILL or SIGTERM
// was sent, or it exited by itself; zero while it runs.
func (l *life) ended() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.endAt
}

// signalledLocked records the end of the life (the first signal sent).
func (l *life) signalledLocked() {
	if l.endAt.IsZero() {
		l.endAt = time.Now()
	}
}

// kill sends SIGKILL (once) and waits for the exit.
func (l *life) kill(step string) bool {
	l.mu.Lock()
	if l.killedFor != "" {
		l.mu.Unlock()
		<-l.done
		return false
	}
	l.killedFor = step
	l.signalledLocked()
	l.mu.Unlock()
	_ = l.cmd.Process.Kill()
	<-l.done
	return true
}

func (l *life) killed() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.killedFor
}

// replica is one reconciler slot: a process at a time, its output appended
// to one log file, its calls through its own listener (srv) so that the
// soak knows whose call it serves.
type replica struct {
	id  int
	bin string
	log string
	w   *world
	srv *httptest.Server

	mu       sync.Mutex
	cfg      string
	cur      *life
	lives    []*life        // every life, oldest first
	armed    string         // the step whose call kills the process
	killsBy  map[string]int // kills by the step they interrupted
	aimed    map[string]int // kills aimed at a step
	starts   int
	crashes  []string // exits nobody asked for
	coin     *rand.Rand
	phaseTag string // counted kills are per phase
	byPhase  map[string]map[string]int
}

func newReplica(w *world, id int, bin string, seed uint64) *replica {
	r := &replica{id: id, bin: bin, w: w, log: filepath.Join(w.dir, fmt.Sprintf("reconciler-%d.log", id)),
		killsBy: map[string]int{}, aimed: map[string]int{}, byPhase: map[string]map[string]int{}, coin: rand.New(rand.NewPCG(seed, uint64(200+id)))}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve)) // 127.0.0.1
	return r
}

// serve passes the replica's calls to the simulator. It answers the poison
// service's DescribeServices with AccessDenied (a cluster outside the
// reconciler's scope), and it kills the process when the call is the one
// of the armed step.
func (r *replica) serve(rw http.ResponseWriter, req *http.Request) {
	_, op, _ := strings.Cut(req.Header.Get("X-Amz-Target"), ".")
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	// The journal's user agent names the replica (replicaOf).
	req.Header.Set("User-Agent", req.Header.Get("User-Agent")+fmt.Sprintf(" soak-replica/%d", r.id))
	if op == "DescribeServices" && bytes.Contains(body, []byte(poisonService)) {
		rw.Header().Set("Content-Type", "application/x-amz-json-1.1")
		rw.Header().Set("X-Amzn-ErrorType", "AccessDeniedException")
		rw.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(rw, `{"__type":"AccessDeniedException","message":"soak: %s is outside the reconciler's scope"}`, poisonService)
		return
	}
	r.mu.Lock()
	step, l := r.armed, r.cur
	fire := step != "" && stepOps[step] == op && l != nil && (op != "DeleteMessageBatch" || bytes.Contains(body, []byte(awssim.DemoQueue+`"`)))
	served := step == "register" || (step == "update" || step == "tag") && r.coin.IntN(2) == 0
	if fire {
		r.armed = ""
	}
	r.mu.Unlock()
	if !fire {
		r.w.handler.ServeHTTP(rw, req)
		return
	}
	if served {
		r.w.handler.ServeHTTP(httptest.NewRecorder(), req)
	}
	l.kill(step)
	panic(http.ErrAbortHandler) // the connection is closed without an answer
}

func (r *replica) start() (*life, error) {
	f, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r.mu.Lock()
	cfg := r.cfg
	r.mu.Unlock()
	cmd := exec.Command(r.bin, "run", "--config", cfg)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = []string{
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"HOME=" + filepath.Dir(r.log), "PATH=/usr/bin:/bin",
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	l := &life{cmd: cmd, done: make(chan struct{}), logStart: st.Size(), started: started}
	go func() {
		l.err = cmd.Wait()
		l.mu.Lock()
		l.signalledLocked() // an exit nobody asked for ends it too
		l.mu.Unlock()
		f.Close()
		close(l.done)
	}()
	r.mu.Lock()
	r.cur = l
	r.lives = append(r.lives, l)
	r.starts++
	r.mu.Unlock()
	return l, nil
}

// ended records how a life ended: the step its kill interrupted, or a
// crash.
func (r *replica) ended(l *life) {
	<-l.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == l {
		r.cur, r.armed = nil, ""
	}
	step := l.killed()
	if step == "" {
		r.crashes = append(r.crashes, fmt.Sprintf("replica %d exited by itself: %v", r.id, l.err))
		return
	}
	if step == "stop" {
		return
	}
	r.killsBy[step]++
	if r.byPhase[r.phaseTag] == nil {
		r.byPhase[r.phaseTag] = map[string]int{}
	}
	r.byPhase[r.phaseTag][step]++
}

// kill kills the running process, if any (the end of a test).
func (r *replica) kill() {
	r.mu.Lock()
	l := r.cur
	r.mu.Unlock()
	if l != nil {
		l.kill("stop")
		r.ended(l)
	}
}

// stop sends SIGTERM and waits up to 30 s for a graceful exit (then SIGKILL).
func (r *replica) stop() (graceful bool) {
	r.mu.Lock()
	l := r.cur
	r.mu.Unlock()
	if l == nil {
		return true
	}
	l.mu.Lock()
	l.killedFor = "stop"
	l.signalledLocked()
	l.mu.Unlock()
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.done:
		graceful = l.err == nil
	case <-time.After(30 * time.Second):
		_ = l.cmd.Process.Kill()
		<-l.done
	}
	r.ended(l)
	return graceful
}

// waitReady waits for the life's "ready" log line; false if the process
// exited first or ctx ended.
func (r *replica) waitReady(ctx context.Context, l *life) bool {
	return r.waitLog(ctx, l, `"msg":"ready: `)
}

// firstSweepsDone are the log lines of a life's first complete service and
// family sweeps (a failed sweep is retried sooner than its interval, and
// readiness can come from a partial one).
var firstSweepsDone = []string{`"msg":"sweep done","sweep":"services"`, `"msg":"sweep done","sweep":"families"`}

// waitLog waits until the life's log holds every one of the texts (each
// within a line); false if the process exited first or ctx ended.
func (r *replica) waitLog(ctx context.Context, l *life, texts ...string) bool {
	off := l.logStart
	var carry []byte
	seen := make([]bool, len(texts))
	for {
		if f, err := os.Open(r.log); err == nil {
			if _, err := f.Seek(off, io.SeekStart); err == nil {
				b, _ := io.ReadAll(f)
				off += int64(len(b))
				carry = append(carry, b...)
				all := true
				for i, text := range texts {
					seen[i] = seen[i] || bytes.Contains(carry, []byte(text))
					all = all && seen[i]
				}
				if all {
					f.Close()
					return true
				}
				if i := bytes.LastIndexByte(carry, '\n'); i >= 0 {
					carry = carry[i+1:]
				}
			}
			f.Close()
		}
		select {
		case <-ctx.Done():
			return false
		case <-l.done:
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// doneCtx is an ended context: waitReady reads the log once.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// pick is the next step to aim a kill at: the least hit so far over
// every replica (total), then the least aimed at by this replica, ties
// to the first in killSteps; startup aside (it happens on its own).
func (r *replica) pick(total func(string) int) string {
	best := ""
	for _, s := range killSteps[1:] {
		if best == "" || total(s) < total(best) || total(s) == total(best) && r.aimed[s] < r.aimed[best] {
			best = s
		}
	}
	r.aimed[best]++
	return best
}

// superviseChaos keeps the replica running until ctx ends. Each process
// lives until a kill: one in six before it is ready (startup), the others
// once it is ready, by the call of the step aimed at (the least hit so
// far, over every replica: total), or after armFor at an idle moment. The
// process running when ctx ends is left running.
func (r *replica) superviseChaos(ctx context.Context, rng *rand.Rand, total func(string) int, armFor time.Duration) error {
	for {
		l, err := r.start()
		if err != nil {
			return err
		}
		if rng.IntN(6) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-l.done:
			case <-time.After(time.Duration(500+rng.IntN(2500)) * time.Millisecond):
				if r.waitReady(doneCtx, l) {
					l.kill("idle") // it was ready already
				} else {
					l.kill("startup")
				}
			}
		} else if r.waitReady(ctx, l) {
			step := r.pick(total)
			wait := armFor
			switch step {
			case "tag": // the rarest call: only a rolled-back twin is marked
				wait = 5 * armFor
			case "held":
				wait = 3 * armFor // rarer calls
			}
			if step == "idle" {
				wait = time.Duration(200+rng.IntN(3000)) * time.Millisecond
			} else {
				r.mu.Lock()
				r.armed = step
				r.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				r.mu.Lock()
				r.armed = ""
				r.mu.Unlock()
				return nil
			case <-l.done:
			case <-time.After(wait):
				r.mu.Lock()
				r.armed = ""
				r.mu.Unlock()
				l.kill("idle")
			}
		} else if ctx.Err() != nil {
			return nil
		} else {
			// Exited before it was ready.
		}
		r.ended(l)
		select {
		case <-ctx.Done():
			_, err := r.start()
			return err
		case <-time.After(time.Duration(rng.Int64N(int64(300 * time.Millisecond)))):
		}
	}
}

// pipelineStats counts what the pipeline did (attempted operations).
type pipelineStats struct {
	registered, deployed, flips, rollbacks, scales, garbage, failed int
	hostile                                                         map[string]int // hostile operations by kind
}

// sdkConfig is the pipeline's client: the SDK's standard retryer (more
// attempts, no retry quota: the chaos would exhaust it), no app id.
func (w *world) sdkConfig() aws.Config {
	return aws.Config{
		Region:      awssim.DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider("pipeline", "pipeline", ""),
		HTTPClient:  &http.Client{Timeout: 15 * time.Second},
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 8
				o.MaxBackoff = 500 * time.Millisecond
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

// runPipeline is a CI/CD system sharing the account: it registers
// revisions without tags and deploys them, rolls services back, scales
// them, flips opt-in tags and puts garbage on the queue, until ctx ends.
func (w *world) runPipeline(ctx context.Context, rng *rand.Rand) pipelineStats {
	cfg := w.sdkConfig()
	ecsc := ecs.NewFromConfig(cfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String(w.endpoint) })
	sqsc := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(w.endpoint) })
	st := pipelineStats{hostile: map[string]int{}}
	var flippers, normal []*family
	for _, f := range w.fams {
		if f.kind == "" {
			normal = append(normal, f)
		}
		if f.flips {
			flippers = append(flippers, f)
		}
	}
	tick := time.NewTicker(w.p.pipelineEvery)
	defer tick.Stop()
	build := 1
	ops, hostileNext := 0, 0
	for {
		select {
		case <-ctx.Done():
			return st
		case <-tick.C:
		}
		octx, cancel := context.WithTimeout(ctx, 20*time.Second)
		fail := func(err error) {
			if err != nil && ctx.Err() == nil {
				st.failed++
			}
		}
		ops++
		if ops%hostileEvery == 0 {
			// Hostile input on a schedule, its kinds in turn, so that every
			// run meets each of them (hostile_test.go).
			k := hostileNext % hostileKinds
			hostileNext++
			kind, did, err := w.hostileOp(octx, ecsc, sqsc, rng, normal, &build, k)
			st.hostile[kind]++
			if did && err == nil {
				w.mu.Lock()
				w.hostileDone[k]++
				w.mu.Unlock()
			}
			fail(err)
			cancel()
			continue
		}
		switch r := rng.IntN(95); {
		case r < 45: // a new revision, deployed to (most of) its services
			f := normal[rng.IntN(len(normal))]
			build++
			arn, err := registerRevision(octx, ecsc, f.name, build, nil)
			st.registered++
			if err != nil {
				fail(err)
				break
			}
			f.revs = append(f.revs, arn)
			for _, s := range f.svcs {
				if s.codeDeploy || rng.IntN(5) == 0 {
					continue
				}
				_, err := ecsc.UpdateService(octx, &ecs.UpdateServiceInput{Cluster: aws.String(s.cluster), Service: aws.String(s.name), TaskDefinition: aws.String(arn)})
				st.deployed++
				fail(err)
			}
		case r < 68: // flip a family's opt-in on its newest revision
			if len(flippers) == 0 {
				break
			}
			f := flippers[rng.IntN(len(flippers))]
			v := "true"
			if f.optIn {
				v = "false"
			}
			_, err := ecsc.TagResource(octx, &ecs.TagResourceInput{ResourceArn: aws.String(f.revs[len(f.revs)-1]),
				Tags: append(tag(keyInject, v), tag(keyProfile, f.profile)...)})
			st.flips++
			if err == nil {
				f.optIn = !f.optIn
			}
			fail(err)
		case r < 78: // roll a service back to an older revision
			s := w.svcs[rng.IntN(len(w.svcs))]
			if s.codeDeploy || len(s.fam.revs) < 2 {
				break
			}
			arn := s.fam.revs[rng.IntN(len(s.fam.revs)-1)]
			_, err := ecsc.UpdateService(octx, &ecs.UpdateServiceInput{Cluster: aws.String(s.cluster), Service: aws.String(s.name), TaskDefinition: aws.String(arn)})
			st.rollbacks++
			fail(err)
		case r < 85: // scale a service (no task definition change)
			s := w.svcs[rng.IntN(len(w.svcs))]
			_, err := ecsc.UpdateService(octx, &ecs.UpdateServiceInput{Cluster: aws.String(s.cluster), Service: aws.String(s.name), DesiredCount: aws.Int32(int32(1 + rng.IntN(3)))})
			st.scales++
			fail(err)
		default: // a message that is not an EventBridge event
			bodies := []string{"not json {", `{"hello":"world"}`, `[]`, strings.Repeat("x", 100)}
			_, err := sqsc.SendMessage(octx, &sqs.SendMessageInput{QueueUrl: aws.String(w.queueURL), MessageBody: aws.String(bodies[rng.IntN(len(bodies))])})
			st.garbage++
			fail(err)
		}
		cancel()
	}
}
