package soak

import (
	"context"
	crand "crypto/rand"
	"fmt"
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
	pipelineEvery                time.Duration            // one pipeline operation per tick
	throttleScale                float64                  // ECS's token buckets, refill scaled
	faults                       map[string]awssim.Faults // during the chaos, by SetFaults key
	converge                     time.Duration            // failure guard of the convergence wait
	seed                         uint64
	logLevel                     string
	maxAttempts                  int // the reconciler's aws.maxAttempts
}

type family struct {
	name    string
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
	endpoint  string
	queueURL  string
	dlqURL    string
	secretArn string
	// The two token values: never printed, searched for in the logs.
	secretValue, plainToken string
	fams                    []*family
	svcs                    []*service
	dir                     string
}

// newWorld serves an awssim on 127.0.0.1 (rollouts stepped on the wall
// clock) seeded with the demo account (its queue, DLQ and rule are the
// event path) and p.families families and p.services services.
func newWorld(t *testing.T, p params) *world {
	t.Helper()
	sim := awssim.New(awssim.Options{RolloutDelay: 300 * time.Millisecond, Seed: int64(p.seed)})
	srv := httptest.NewServer(sim.Handler()) // 127.0.0.1
	t.Cleanup(srv.Close)
	t.Cleanup(sim.StepEvery(100 * time.Millisecond))

	w := &world{t: t, p: p, sim: sim, endpoint: srv.URL, dir: t.TempDir(),
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
		if _, err := e.CreateService(ctx, &ecs.CreateServiceInput{
			Cluster: aws.String(s.cluster), ServiceName: aws.String(s.name), TaskDefinition: aws.String(f.revs[0]),
			DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeFargate,
			NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
				Subnets: []string{"subnet-0soak000000000000"}, SecurityGroups: []string{"sg-0soak000000000000"}}},
			DeploymentController: &types.DeploymentController{Type: controller},
			DeploymentConfiguration: &types.DeploymentConfiguration{
				DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
		}); err != nil {
			t.Fatal(err)
		}
		f.svcs = append(f.svcs, s)
		w.svcs = append(w.svcs, s)
	}
	return w
}

func tag(k, v string) []types.Tag { return []types.Tag{{Key: aws.String(k), Value: aws.String(v)}} }

type registrar interface {
	RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput, optFns ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error)
}

// registerRevision registers a revision of family that states its command
// (the images are fake: the reconciler runs with images.resolve false).
func registerRevision(ctx context.Context, e registrar, family string, build int, tags []types.Tag) (string, error) {
	td := awssim.DemoTaskDefinition(family, fmt.Sprintf("registry.invalid/soak/%s:build-%d", family, build), tags)
	td.ContainerDefinitions[0].EntryPoint = []string{"/bin/app"}
	td.ContainerDefinitions[0].Command = []string{"serve", "--port", "8080"}
	out, err := e.RegisterTaskDefinition(ctx, td)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
}

// config is the reconciler's configuration file: the simulator's endpoint
// and queue, fast sweeps, both profiles.
func (w *world) config() string {
	doc := fmt.Sprintf(`aws:
  region: us-east-1
  endpoint: %s
  maxAttempts: %d
  apiBudget: {share: 0.5, bucketScale: %g}
queue: {url: %q, waitTimeSeconds: 1, visibilityTimeout: 10s, maxMessages: 10}
sweeps:
  services: {interval: 3s, jitter: 0.2}
  families: {interval: 5s, jitter: 0.2, maxCallsPerSecond: 20}
workers: 8
rollouts: {maxInFlight: 100, maxInFlightPerCluster: 50, deadline: 5m}
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
`, w.endpoint, w.p.maxAttempts, w.p.throttleScale, w.queueURL, w.p.logLevel, profileSecret, profileSecret, profilePlaintext,
		profileSecret, w.secretArn, executionRole, profilePlaintext, w.plainToken, executionRole)
	path := filepath.Join(w.dir, "reconciler.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// replica is one reconciler slot: a process at a time, its output appended
// to one log file.
type replica struct {
	id       int
	bin, cfg string
	log      string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan error
	starts   int
	kills    int
	crashes  []string // exits nobody asked for
	stopping bool
}

func (r *replica) start() error {
	f, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(r.bin, "run", "--config", r.cfg)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = []string{
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"HOME=" + filepath.Dir(r.log), "PATH=/usr/bin:/bin",
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); f.Close() }()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.starts++
	r.mu.Unlock()
	return nil
}

// kill sends SIGKILL and waits for the exit.
func (r *replica) kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case err := <-exited:
		r.mu.Lock()
		r.crashes = append(r.crashes, fmt.Sprintf("replica %d exited by itself: %v", r.id, err))
		r.mu.Unlock()
	default:
		_ = cmd.Process.Kill() // SIGKILL
		<-exited
		r.mu.Lock()
		r.kills++
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.cmd = nil
	r.mu.Unlock()
}

// stop sends SIGTERM and waits up to 30 s for a graceful exit (then SIGKILL).
func (r *replica) stop() (graceful bool) {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		return err == nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return false
	}
}

// superviseChaos keeps the replica running until ctx ends, each process
// killed with SIGKILL after a random lifetime and restarted; the process
// running when ctx ends is left running.
func (r *replica) superviseChaos(ctx context.Context, rng *rand.Rand, killMin, killMax time.Duration) error {
	for {
		if err := r.start(); err != nil {
			return err
		}
		life := killMin + time.Duration(rng.Int64N(int64(killMax-killMin)+1))
		r.mu.Lock()
		exited := r.exited
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case err := <-exited:
			// Exited by itself: record it and restart.
			r.mu.Lock()
			r.crashes = append(r.crashes, fmt.Sprintf("replica %d exited by itself: %v", r.id, err))
			r.cmd = nil
			r.mu.Unlock()
		case <-time.After(life):
			r.kill()
		}
		// Restart at once, or after a short pause.
		select {
		case <-ctx.Done():
			return r.start()
		case <-time.After(time.Duration(rng.Int64N(int64(300 * time.Millisecond)))):
		}
	}
}

// pipelineStats counts what the pipeline did (attempted operations).
type pipelineStats struct {
	registered, deployed, flips, rollbacks, scales, garbage, failed int
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
	var st pipelineStats
	var flippers []*family
	for _, f := range w.fams {
		if f.flips {
			flippers = append(flippers, f)
		}
	}
	tick := time.NewTicker(w.p.pipelineEvery)
	defer tick.Stop()
	build := 1
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
		switch r := rng.IntN(100); {
		case r < 50: // a new revision, deployed to (most of) its services
			f := w.fams[rng.IntN(len(w.fams))]
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
		case r < 75: // flip a family's opt-in on its newest revision
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
		case r < 85: // roll a service back to an older revision
			s := w.svcs[rng.IntN(len(w.svcs))]
			if s.codeDeploy || len(s.fam.revs) < 2 {
				break
			}
			arn := s.fam.revs[rng.IntN(len(s.fam.revs)-1)]
			_, err := ecsc.UpdateService(octx, &ecs.UpdateServiceInput{Cluster: aws.String(s.cluster), Service: aws.String(s.name), TaskDefinition: aws.String(arn)})
			st.rollbacks++
			fail(err)
		case r < 93: // scale a service (no task definition change)
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
