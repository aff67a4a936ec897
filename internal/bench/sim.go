package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// The names the harness seeds.
const (
	queueName   = "bench-events"
	ruleName    = "bench-events"
	tokenSecret = "bench/lacework-token"
	injectKey   = "ecs-sidecar/inject"
	sourceKey   = "ecs-sidecar/source"
	profileKey  = "ecs-sidecar/profile"
	// reconcilerAgent is in the user agent of every call the reconciler
	// makes (cloud.Options.AppID in cmd/reconciler, and ours in process).
	reconcilerAgent = "ecs-sidecar-reconciler"
)

// simServer is an awssim served on 127.0.0.1 with its rollouts stepped on
// the wall clock, and counts of the reconciler's successful calls, per run.
type simServer struct {
	sim          *awssim.Sim
	endpoint     string
	srv          *http.Server
	stopStepping func()
	wg           sync.WaitGroup

	mu       sync.Mutex
	run      string                    // the reconciler run now counted
	describe map[string]map[string]int // run -> revision -> successful describes
	ops      map[string]CallCounts     // run -> operation -> successful calls
}

// startSeededSim is startSim with the token secret every scenario's
// profile names, and that secret's ARN.
func startSeededSim(ctx context.Context, o awssim.Options) (*simServer, string, error) {
	s, err := startSim(o)
	if err != nil {
		return nil, "", err
	}
	secret, err := s.seedSecret(ctx)
	if err != nil {
		s.stop()
		return nil, "", err
	}
	return s, secret, nil
}

func startSim(o awssim.Options) (*simServer, error) {
	s := &simServer{sim: awssim.New(o), describe: map[string]map[string]int{}, ops: map[string]CallCounts{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.endpoint = "http://" + ln.Addr().String()
	// Idle connections are kept as long as an SDK client keeps them (its
	// pool): a server closing one just as a client reuses it makes the
	// client retry a call the server may count twice.
	s.srv = &http.Server{Handler: s.countDescribes(s.sim.Handler()), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
	s.stopStepping = s.sim.StepEvery(100 * time.Millisecond)
	return s, nil
}

func (s *simServer) stop() {
	s.stopStepping()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	s.wg.Wait()
}

// countRun starts counting the reconciler's describes under a new run name.
func (s *simServer) countRun(run string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run = run
	if s.describe[run] == nil {
		s.describe[run], s.ops[run] = map[string]int{}, CallCounts{}
	}
}

// describes returns, for a run, how many revisions were described and how
// many describes were of a revision that run had already described.
func (s *simServer) describes(run string) (revisions, repeats int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.describe[run] {
		revisions++
		repeats += n - 1
	}
	return revisions, repeats
}

const (
	ecsTargetPrefix     = "AmazonEC2ContainerServiceV20141113."
	taggingTargetPrefix = "ResourceGroupsTaggingAPI_20170126."
)

// countDescribes counts the reconciler's successful ECS calls (by its user
// agent) by operation, and its DescribeTaskDefinition calls by revision
// ("family:revision"; a bare family name is its own key), per run.
func (s *simServer) countDescribes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		op, isECS := strings.CutPrefix(target, ecsTargetPrefix)
		if tagOp, isTagging := strings.CutPrefix(target, taggingTargetPrefix); isTagging {
			op, isECS = tagOp, true // counted beside ECS's calls (CategoryOf keeps them apart)
		}
		if !isECS || !strings.Contains(r.UserAgent(), reconcilerAgent) {
			next.ServeHTTP(w, r)
			return
		}
		var in struct {
			TaskDefinition string `json:"taskDefinition"`
		}
		if op == "DescribeTaskDefinition" {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			_ = json.Unmarshal(body, &in)
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if rec.status != http.StatusOK {
			return
		}
		key := in.TaskDefinition
		if i := strings.LastIndex(key, "task-definition/"); i >= 0 {
			key = key[i+len("task-definition/"):]
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.ops[s.run] == nil {
			return
		}
		s.ops[s.run][op]++
		if op == "DescribeTaskDefinition" {
			s.describe[s.run][key]++
		}
	})
}

// reconcilerCalls returns the reconciler's successful ECS calls of a run so
// far, by operation.
func (s *simServer) reconcilerCalls(run string) CallCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[run].clone()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// calls returns the simulator's successful ECS calls by operation.
func (s *simServer) calls() CallCounts {
	out := CallCounts{}
	for _, c := range s.sim.Stats().Calls {
		if c.Service == "ecs" && c.Result == "ok" {
			out[c.Operation] += int(c.Count)
		}
	}
	return out
}

// throttled returns how many ECS calls the simulator refused for their rate.
func (s *simServer) throttled() int {
	n := 0
	for _, c := range s.sim.Stats().Calls {
		if c.Service == "ecs" && c.Result == "ThrottlingException" {
			n += int(c.Count)
		}
	}
	return n
}

// seedSecret creates the token secret and returns its ARN.
func (s *simServer) seedSecret(ctx context.Context) (string, error) {
	out, err := s.sim.SecretsManager().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(tokenSecret), SecretString: aws.String("bench-token"),
	})
	if err != nil {
		return "", fmt.Errorf("seed secret: %w", err)
	}
	return aws.ToString(out.ARN), nil
}

// seedQueue creates the queue and the rule that sends ECS's events to it,
// as deploy/cloudformation does in an account, and returns the queue URL.
func (s *simServer) seedQueue(ctx context.Context) (string, error) {
	eb := s.sim.EventBridge()
	rule, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(ruleName), EventPattern: aws.String(awssim.DemoEventPattern())})
	if err != nil {
		return "", fmt.Errorf("seed rule: %w", err)
	}
	policy, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"Service": "events.amazonaws.com"},
			"Action": "sqs:SendMessage", "Resource": s.sim.QueueARN(queueName),
			"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": aws.ToString(rule.RuleArn)}},
		}},
	})
	if _, err := s.sim.SQS().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(queueName),
		Attributes: map[string]string{"VisibilityTimeout": "60", "Policy": string(policy)}}); err != nil {
		return "", fmt.Errorf("seed queue: %w", err)
	}
	out, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(ruleName), Targets: []ebtypes.Target{{
		Id: aws.String("reconciler-queue"), Arn: aws.String(s.sim.QueueARN(queueName)),
	}}})
	if err != nil {
		return "", fmt.Errorf("seed rule target: %w", err)
	}
	if out.FailedEntryCount > 0 {
		return "", fmt.Errorf("seed rule target: %s", aws.ToString(out.FailedEntries[0].ErrorMessage))
	}
	return s.sim.QueueURL(s.endpoint, queueName), nil
}

// fleet is what seedFleet made.
type fleet struct {
	clusters           []string
	servicesPerCluster []int
	families           []string
	// services of each family: cluster and service name.
	services map[string][]serviceRef
}

type serviceRef struct{ cluster, name string }

// seedFleet creates clusters, families opted in by tag (one revision each,
// stating its command: the harness reads no image configs) and services of
// each family on that revision, through the simulator's Go API.
func (s *simServer) seedFleet(ctx context.Context, prefix string, clusters, families, perFamily int) (*fleet, error) {
	return s.seedFleetWith(ctx, prefix, clusters, families, perFamily, false)
}

// seedFleetWith is seedFleet; circuitBreaker turns on each service's
// deployment circuit breaker with rollback, as a first install's fleet
// would have it (a failed rollout then returns to the source revision).
func (s *simServer) seedFleetWith(ctx context.Context, prefix string, clusters, families, perFamily int, circuitBreaker bool) (*fleet, error) {
	e := s.sim.ECS()
	var deployment *types.DeploymentConfiguration
	if circuitBreaker {
		deployment = &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}}
	}
	f := &fleet{servicesPerCluster: make([]int, clusters), services: map[string][]serviceRef{}}
	for i := range clusters {
		name := fmt.Sprintf("%s-c%02d", prefix, i)
		if _, err := e.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
			return nil, fmt.Errorf("seed cluster: %w", err)
		}
		f.clusters = append(f.clusters, name)
	}
	network := &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-0bench000000000a"}}}
	inject := []types.Tag{{Key: aws.String(injectKey), Value: aws.String("true")}}
	for i := range families {
		family := fmt.Sprintf("%s-%05d", prefix, i)
		if _, err := e.RegisterTaskDefinition(ctx, taskDefinition(family, "nginx:1.27", inject)); err != nil {
			return nil, fmt.Errorf("seed family %s: %w", family, err)
		}
		f.families = append(f.families, family)
		ci := i % clusters
		for j := range perFamily {
			name := fmt.Sprintf("%s-s%d", family, j)
			if _, err := e.CreateService(ctx, &ecs.CreateServiceInput{
				Cluster: aws.String(f.clusters[ci]), ServiceName: aws.String(name), TaskDefinition: aws.String(family + ":1"),
				DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeFargate, NetworkConfiguration: network,
				DeploymentConfiguration: deployment,
			}); err != nil {
				return nil, fmt.Errorf("seed service %s: %w", name, err)
			}
			f.servicesPerCluster[ci]++
			f.services[family] = append(f.services[family], serviceRef{f.clusters[ci], name})
		}
	}
	return f, nil
}

// taskDefinition is a Fargate revision whose container states its command,
// as a pipeline registers it.
func taskDefinition(family, image string, tags []types.Tag) *ecs.RegisterTaskDefinitionInput {
	td := awssim.DemoTaskDefinition(family, image, tags)
	td.ContainerDefinitions[0].EntryPoint = []string{"/docker-entrypoint.sh"}
	td.ContainerDefinitions[0].Command = []string{"nginx", "-g", "daemon off;"}
	return td
}

// uncovered counts the services of the fleet's clusters whose task
// definition is not a twin (a revision tagged with the source marker), and
// the rollouts still pending.
func (s *simServer) uncovered(f *fleet) (services, pending int) {
	st := s.sim.State()
	twins := map[string]bool{}
	for _, fam := range st.Families {
		for _, r := range fam.Revisions {
			if _, ok := r.Tags[sourceKey]; ok {
				twins[r.Arn] = true
			}
		}
	}
	want := map[string]bool{}
	for _, c := range f.clusters {
		want[c] = true
	}
	for _, c := range st.Clusters {
		if !want[c.Arn[strings.LastIndex(c.Arn, "/")+1:]] {
			continue
		}
		for _, sv := range c.Services {
			if !twins[sv.TaskDefinition] {
				services++
			}
		}
	}
	return services, st.Pending
}

// lastUpdate returns the journal time of the last successful UpdateService.
func (s *simServer) lastUpdate() (time.Time, error) {
	j := s.sim.Journal()
	for i := len(j) - 1; i >= 0; i-- {
		if c := j[i].Call; c != nil && c.Operation == "UpdateService" && c.Err == nil {
			return c.Time, nil
		}
	}
	return time.Time{}, errors.New("no UpdateService in the journal")
}

// bulkFamilyMinimum is BulkFamilySweepMinimum of the simulator's account
// now: its ACTIVE revisions, and those carrying the inject tag and the
// profile tag.
func (s *simServer) bulkFamilyMinimum() CallCounts {
	active, inject, profile := 0, 0, 0
	for _, fam := range s.sim.State().Families {
		for _, r := range fam.Revisions {
			if r.Status != "ACTIVE" {
				continue
			}
			active++
			if _, ok := r.Tags[injectKey]; ok {
				inject++
			}
			if _, ok := r.Tags[profileKey]; ok {
				profile++
			}
		}
	}
	return BulkFamilySweepMinimum(active, inject, profile)
}
