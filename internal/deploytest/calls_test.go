package deploytest

import (
	"context"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecs-sidecar/reconciler/internal/audit"
	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/lease"
	"github.com/ecs-sidecar/reconciler/internal/moto"
	"github.com/ecs-sidecar/reconciler/internal/watch"
)

// recorder is cloud.Options.Observe: every (service, operation) attempted.
type recorder struct {
	mu    sync.Mutex
	calls map[string]bool
}

func (r *recorder) observe(service, op, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[service+" "+op] = true
}

func (r *recorder) ops() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for c := range r.calls {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// newClientConfig is an SDK config for endpoint in region through the
// reconciler's own client stack (internal/cloud), with big buckets and one
// attempt; rec records the calls, az (when set) authorizes them.
func newClientConfig(t *testing.T, endpoint, region string, rec *recorder, az *authorizer) aws.Config {
	t.Helper()
	big := map[cloud.Category]cloud.Bucket{}
	for c := range cloud.Buckets() {
		big[c] = cloud.Bucket{Burst: 100000, Refill: 100000}
	}
	o := cloud.Options{
		Region: region, Endpoint: endpoint, StaticCredentials: &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"},
		BudgetShare: 1, Buckets: big, MaxAttempts: 1,
	}
	if rec != nil {
		o.Observe = rec.observe
	}
	cfg, _, err := cloud.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if az != nil {
		az.install(&cfg)
	}
	return cfg
}

// grantedForUnrecordedCalls are the grants no flow of this package makes a
// call for, each with the code that calls it. Every other grant must be
// used by a recorded, allowed call (TestTaskRoleUnderIAMEvaluation).
var grantedForUnrecordedCalls = map[string]string{
	"secretsmanager:DescribeSecret":  "reconciler check, token-secret: the token secret exists (cmd/reconciler/check.go)",
	"sqs:GetQueueAttributes":         "reconciler check, queue: the queue and its dead-letter queue (cmd/reconciler/check.go)",
	"cloudtrail:DescribeTrails":      "reconciler check, cloudtrail (cmd/reconciler/check.go)",
	"cloudtrail:GetTrailStatus":      "reconciler check, cloudtrail (cmd/reconciler/check.go)",
	"cloudtrail:GetEventSelectors":   "reconciler check, cloudtrail (cmd/reconciler/check.go)",
	"events:ListRuleNamesByTarget":   "reconciler check, rule (cmd/reconciler/check.go)",
	"iam:SimulatePrincipalPolicy":    "reconciler check, permissions and execution-roles (cmd/reconciler/check.go)",
	"ecs:ListTaskDefinitionFamilies": "the family sweep without tag:GetResources (its fallback, TestFamilySweepFallsBackWhenTaggingIsDenied), reconciler plan and check (internal/controller/sweep.go, plan.go)",
}

const (
	simAccount = awssim.DefaultAccount
	simRegion  = awssim.DefaultRegion
)

func roleArn(name string) string { return "arn:aws:iam::" + simAccount + ":role/" + name }

// flowStack is the deployment the flows run under: the sim's account and
// Region, every scoping parameter set (Clusters, exact PassableRoleArns,
// cleanup on, an audit bus).
func flowStack(queueURL, queueArn, registrySecretArn string) Stack {
	return Stack{
		Region: simRegion, Account: simAccount, Partition: "aws", StackName: "reconciler",
		Params: map[string]any{
			"ClusterName":                  "tools",
			"SubnetIds":                    []string{"subnet-0a"},
			"SecurityGroupId":              "sg-0123",
			"ImageUri":                     simAccount + ".dkr.ecr.us-east-1.amazonaws.com/reconciler@sha256:" + strings.Repeat("a", 64),
			"TokenSecretArn":               "arn:aws:secretsmanager:us-east-1:" + simAccount + ":secret:lacework/token-AbCdEf",
			"PassableRoleArns":             []string{roleArn("ecs-tasks/web"), roleArn("ecs-tasks/batch")},
			"Clusters":                     []string{"prod"},
			"DeregisterUnusedTwins":        "true",
			"AuditEventBusName":            "audit",
			"RegistryCredentialSecretArns": []string{registrySecretArn},
		},
		Attrs: map[string]string{"Queue": queueURL, "Queue.Arn": queueArn},
	}
}

// renderedConfigOf parses the configuration the template renders for s.
func renderedConfigOf(t *testing.T, tpl *Template, s Stack) *config.Config {
	t.Helper()
	doc := renderedConfig(t, tpl, s)
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, doc)
	}
	return cfg
}

// controllerOptions are the controller options run makes of cfg.
func controllerOptions(cfg *config.Config, api controller.ECSAPI) controller.Options {
	return controller.Options{
		ECS: api, TagPrefix: cfg.TagPrefix, Rules: cfg.Policies, Profile: cfg.Profile, DefaultProfile: cfg.DefaultProfile,
		Mode: cfg.Mode, RevertOnOptOut: cfg.Rollouts.OnOptOut == config.OnOptOutRevert,
		DeregisterUnusedTwins: cfg.Cleanup.DeregisterUnusedTwins,
		MaxInFlight:           cfg.Rollouts.MaxInFlight, MaxInFlightPerCluster: cfg.Rollouts.MaxInFlightPerCluster,
	}
}

// world is awssim served over HTTP, with a setup client that IAM does not
// gate (the test's own calls) and the authorizer of the reconciler's.
type world struct {
	sim   *awssim.Sim
	url   string
	setup *ecs.Client
	az    *authorizer
	rec   *recorder
}

func newWorld(t *testing.T, policy []awssim.Statement) *world {
	t.Helper()
	w := &world{sim: awssim.New(awssim.Options{}), rec: &recorder{calls: map[string]bool{}}}
	srv := httptest.NewServer(w.sim.Handler())
	t.Cleanup(srv.Close)
	w.url = srv.URL
	w.setup = ecs.NewFromConfig(newClientConfig(t, srv.URL, simRegion, nil, nil))
	w.az = &authorizer{policy: policy, account: simAccount, partition: "aws",
		resourceTags: func(ctx context.Context, arn string) (map[string]string, error) {
			out, err := w.setup.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
			if err != nil {
				return nil, err
			}
			m := map[string]string{}
			for _, t := range out.Tags {
				m[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			return m, nil
		},
		nextRevision: func(ctx context.Context, region, family string) (string, error) {
			n := 0
			for _, st := range []types.TaskDefinitionStatus{types.TaskDefinitionStatusActive, types.TaskDefinitionStatusInactive} {
				out, err := w.setup.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), Status: st, Sort: types.SortOrderDesc, MaxResults: aws.Int32(100)})
				if err != nil {
					return "", err
				}
				for _, a := range out.TaskDefinitionArns {
					if fam, rev, ok := strings.Cut(a[strings.LastIndexByte(a, '/')+1:], ":"); ok && fam == family {
						var r int
						for _, c := range rev {
							r = r*10 + int(c-'0')
						}
						n = max(n, r)
					}
				}
			}
			return "arn:aws:ecs:" + region + ":" + simAccount + ":task-definition/" + family + ":" + itoa(n+1), nil
		},
	}
	return w
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// reconcilerConfig is the SDK config of the reconciler's clients: recorded
// and authorized.
func (w *world) reconcilerConfig(t *testing.T, region string) aws.Config {
	return newClientConfig(t, w.url, region, w.rec, w.az)
}

// family registers an opted-in source revision of family with role as its
// execution and task role, and a service in cluster running it.
func (w *world) family(t *testing.T, cluster, family, role string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := w.setup.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	reg, err := w.setup.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		ExecutionRoleArn: aws.String(role), TaskRoleArn: aws.String(role),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("nginx:1.27"), Essential: aws.Bool(true),
			EntryPoint: []string{"/docker-entrypoint.sh"}, Command: []string{"nginx", "-g", "daemon off;"}}},
		Tags: []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}, {Key: aws.String("team"), Value: aws.String(family)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.setup.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String(cluster), ServiceName: aws.String(family), TaskDefinition: reg.TaskDefinition.TaskDefinitionArn,
		DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-0a"}}},
		DeploymentConfiguration: &types.DeploymentConfiguration{
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true},
		},
	}); err != nil {
		t.Fatal(err)
	}
	return aws.ToString(reg.TaskDefinition.TaskDefinitionArn)
}

// serviceTaskDef is what a service runs now.
func (w *world) serviceTaskDef(t *testing.T, cluster, svc string) string {
	t.Helper()
	out, err := w.setup.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{svc}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("describe %s/%s: %v", cluster, svc, err)
	}
	return aws.ToString(out.Services[0].TaskDefinition)
}

// twinsOf lists the ACTIVE twins (revisions with the source marker) of family.
func (w *world) twinsOf(t *testing.T, family string) []string {
	t.Helper()
	ctx := context.Background()
	out, err := w.setup.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), Status: types.TaskDefinitionStatusActive})
	if err != nil {
		t.Fatal(err)
	}
	var twins []string
	for _, a := range out.TaskDefinitionArns {
		tags, err := w.setup.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(a)})
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range tags.Tags {
			if aws.ToString(tg.Key) == "ecs-sidecar/source" {
				twins = append(twins, a)
			}
		}
	}
	return twins
}

// writesFor lists the write requests decided for family's task
// definitions or for services of cluster.
func writesFor(log []decision, family, cluster string) []decision {
	var out []decision
	for _, d := range log {
		r := d.Request
		switch r.Action {
		case "ecs:RegisterTaskDefinition", "ecs:TagResource", "ecs:DeregisterTaskDefinition", "ecs:UntagResource":
			if strings.Contains(r.Resource, ":task-definition/"+family+":") {
				out = append(out, d)
			}
		case "ecs:UpdateService":
			if strings.Contains(r.Resource, ":service/"+cluster+"/") {
				out = append(out, d)
			}
		}
	}
	return out
}

// TestTaskRoleUnderIAMEvaluation runs the reconciler's flows (controller and
// audit trail against awssim, the queue consumer against moto_server, image
// configs from a loopback registry) with every call authorized by awssim's
// IAM evaluation of the template's task role policy, conditions included,
// and checks that:
//   - every call the code makes is allowed, except the ones the deployment
//     forbids (a family's role outside PassableRoleArns, services outside
//     Clusters), which are denied and stay undone;
//   - with Clusters, the rendered configuration keeps the decisions in step:
//     families elsewhere are reported, never written;
//   - writes outside the Region, foreign tag keys, an empty tag list, are
//     denied;
//   - every grant of the policy is used by an allowed call, or is listed in
//     grantedForUnrecordedCalls with its caller.
func TestTaskRoleUnderIAMEvaluation(t *testing.T) {
	ctx := context.Background()

	// The queue first: its ARN is part of the policy.
	motoURL := moto.Start(t)
	q, err := sqs.NewFromConfig(newClientConfig(t, motoURL, simRegion, nil, nil)).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("events")})
	if err != nil {
		t.Fatal(err)
	}
	// The private registry's secret next: the stack names its ARN.
	w := newWorld(t, nil)
	secretArn := registrySecret(t, w, "robot", "s3cret")
	s := flowStack(aws.ToString(q.QueueUrl), "arn:aws:sqs:"+simRegion+":"+simAccount+":events", secretArn)
	tpl := load(t)
	requireDeployable(t, tpl, s)
	policy := policyOf(t, tpl, s, "TaskRolePolicy", "PolicyDocument")
	cfg := renderedConfigOf(t, tpl, s)
	w.az.policy = policy

	web := w.family(t, "prod", "web", roleArn("ecs-tasks/web"))
	batch := w.family(t, "staging", "batch", roleArn("ecs-tasks/batch"))
	w.family(t, "prod", "legacy", roleArn("Admin")) // not in PassableRoleArns
	w.sim.SetRollout(0, awssim.FailImages(regexp.MustCompile(`datacollector`)))

	if _, err := eventbridge.NewFromConfig(newClientConfig(t, w.url, simRegion, nil, nil)).CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(cfg.Audit.EventBus)}); err != nil {
		t.Fatal(err)
	}
	rcfg := w.reconcilerConfig(t, simRegion)
	ecsR := ecs.NewFromConfig(rcfg)
	pub, err := audit.New(eventbridge.NewFromConfig(rcfg), cfg.Audit.EventBus, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := controllerOptions(cfg, ecsR)
	o.OnAction = pub.Add
	if cfg.Sweeps.Families.TaggingAPI {
		o.Tagging = resourcegroupstaggingapi.NewFromConfig(rcfg)
	}
	ctl, err := controller.New(o)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("controller with the rendered configuration", func(t *testing.T) {
		mark := w.az.mark()
		for range 3 {
			if err := ctl.SweepServices(ctx); err != nil {
				t.Fatalf("service sweep: %v", err)
			}
			if err := ctl.SweepFamilies(ctx); err != nil {
				t.Fatalf("family sweep: %v", err)
			}
			for _, f := range []string{"web", "batch"} {
				if _, err := ctl.Reconcile(ctx, f); err != nil {
					t.Fatalf("reconcile %s: %v", f, err)
				}
			}
			// legacy's role is not passable: its twin is never registered.
			if _, err := ctl.Reconcile(ctx, "legacy"); !cloud.IsAccessDenied(err) {
				t.Errorf("reconcile legacy: %v, want AccessDenied (its role is not in PassableRoleArns)", err)
			}
			w.sim.Step()
		}
		log := w.az.since(mark)
		requireDenied(t, log, "iam:PassRole", roleArn("Admin"), "a role outside PassableRoleArns")
		for _, d := range denials(log) {
			if d.Request.Action != "iam:PassRole" || d.Request.Resource != roleArn("Admin") {
				t.Errorf("denied, and the flow needs it: %s", d.Request)
			}
		}
		if got := w.twinsOf(t, "legacy"); len(got) != 0 {
			t.Errorf("legacy has twins %v, want none", got)
		}
		// batch runs only in staging, outside Clusters: reported, not written.
		if ws := writesFor(log, "batch", "staging"); len(ws) > 0 {
			t.Errorf("writes for batch (outside Clusters), want none:\n%s", formatLog(ws))
		}
		if got := w.serviceTaskDef(t, "staging", "batch"); got != batch {
			t.Errorf("staging/batch runs %s, want its source %s", got, batch)
		}
		if len(w.twinsOf(t, "web")) == 0 {
			t.Errorf("web has no twin: the flow did not instrument it")
		}
	})

	t.Run("clean-up of duplicate and unused twins", func(t *testing.T) {
		twins := w.twinsOf(t, "web")
		if len(twins) == 0 {
			t.Fatal("web has no twin")
		}
		// A duplicate: the twin registered again, as a retried registration
		// would.
		desc, err := w.setup.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(twins[0]), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
		if err != nil {
			t.Fatal(err)
		}
		td := desc.TaskDefinition
		dup, err := w.setup.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
			Family: td.Family, ContainerDefinitions: td.ContainerDefinitions, Cpu: td.Cpu, Memory: td.Memory, NetworkMode: td.NetworkMode,
			RequiresCompatibilities: td.RequiresCompatibilities, ExecutionRoleArn: td.ExecutionRoleArn, TaskRoleArn: td.TaskRoleArn,
			Volumes: td.Volumes, Tags: desc.Tags,
		})
		if err != nil {
			t.Fatal(err)
		}
		inactive := func(arn, why string) {
			t.Helper()
			out, err := w.setup.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)})
			if err != nil {
				t.Fatal(err)
			}
			if st := out.TaskDefinition.Status; st != types.TaskDefinitionStatusInactive {
				t.Errorf("%s is %s, want INACTIVE (%s)", arn, st, why)
			}
		}
		mark := w.az.mark()
		if _, err := ctl.Reconcile(ctx, "web"); err != nil {
			t.Fatalf("reconcile web: %v", err)
		}
		// Duplicates go whatever cleanup.deregisterUnusedTwins says.
		inactive(aws.ToString(dup.TaskDefinition.TaskDefinitionArn), "a duplicate twin")
		// The source deregistered: its twins, unused, go too (cleanup on).
		if _, err := w.setup.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(web)}); err != nil {
			t.Fatal(err)
		}
		if _, err := ctl.Reconcile(ctx, "web"); err != nil {
			t.Fatalf("reconcile web: %v", err)
		}
		if ds := denials(w.az.since(mark)); len(ds) > 0 {
			t.Errorf("denied during clean-up:\n%s", formatLog(ds))
		}
		inactive(twins[0], "the unused twin of a deregistered source, with cleanup.deregisterUnusedTwins")
	})

	t.Run("history of a stopped service deployment", func(t *testing.T) {
		// A pipeline deploys the source again while the twin rolls out:
		// ECS stops the twin's service deployment, and the reconciler,
		// before moving the service back, describes that deployment for a
		// rollback or a triggered detector (none here).
		shop := w.family(t, "prod", "shop", roleArn("ecs-tasks/web"))
		w.sim.SetRollout(time.Hour, nil) // rollouts that succeed, slowly
		defer w.sim.SetRollout(0, awssim.FailImages(regexp.MustCompile(`datacollector`)))
		mark := w.az.mark()
		if err := ctl.SweepServices(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := ctl.Reconcile(ctx, "shop"); err != nil {
			t.Fatalf("reconcile shop: %v", err)
		}
		twin := w.serviceTaskDef(t, "prod", "shop")
		if twin == shop {
			t.Fatal("prod/shop was not moved to its twin")
		}
		w.sim.SetRollout(0, nil) // the pipeline's deployment completes at once
		if _, err := w.setup.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("shop"), TaskDefinition: aws.String(shop)}); err != nil {
			t.Fatal(err)
		}
		w.sim.Step()
		if err := ctl.SweepServices(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := ctl.Reconcile(ctx, "shop"); err != nil {
			t.Fatalf("reconcile shop: %v", err)
		}
		if got := w.serviceTaskDef(t, "prod", "shop"); got != twin {
			t.Errorf("prod/shop runs %s, want its twin %s again (the stopped deployment did not fail)", got, twin)
		}
		log := w.az.since(mark)
		if ds := denials(log); len(ds) > 0 {
			t.Errorf("denied:\n%s", formatLog(ds))
		}
		described := false
		for _, d := range log {
			described = described || d.Request.Action == "ecs:DescribeServiceDeployments"
		}
		if !described {
			t.Error("the stopped service deployment of the twin was not described")
		}
	})

	t.Run("audit trail", func(t *testing.T) {
		pub.Flush(ctx)
		if n := pub.Failed(); n > 0 {
			t.Errorf("%d audit events not sent", n)
		}
	})

	t.Run("IAM backstop without the rendered policies", func(t *testing.T) {
		// A configuration that ignores Clusters: the role still may not
		// move services elsewhere.
		o := controllerOptions(cfg, ecsR)
		o.Rules = nil
		loose, err := controller.New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := loose.SweepServices(ctx); err != nil {
			t.Fatal(err)
		}
		mark := w.az.mark()
		if _, err := loose.Reconcile(ctx, "batch"); !cloud.IsAccessDenied(err) {
			t.Errorf("reconcile batch: %v, want AccessDenied (staging is outside Clusters)", err)
		}
		log := w.az.since(mark)
		requireDenied(t, log, "ecs:UpdateService", "arn:aws:ecs:us-east-1:"+simAccount+":service/staging/", "a cluster outside Clusters")
		for _, d := range denials(log) {
			if d.Request.Action != "ecs:UpdateService" {
				t.Errorf("denied, and only UpdateService should be: %s", d.Request)
			}
		}
		if got := w.serviceTaskDef(t, "staging", "batch"); got != batch {
			t.Errorf("staging/batch runs %s, want its source %s", got, batch)
		}
	})

	t.Run("forbidden calls", func(t *testing.T) {
		twins := w.twinsOf(t, "web")
		if len(twins) == 0 {
			twins = w.twinsOf(t, "batch")
		}
		if len(twins) == 0 {
			t.Fatal("no twin to tag")
		}
		mark := w.az.mark()
		for _, tags := range [][]types.Tag{
			{{Key: aws.String("team"), Value: aws.String("x")}},                                                                  // a foreign key
			{{Key: aws.String("ecs-sidecar/failed"), Value: aws.String("x")}, {Key: aws.String("team"), Value: aws.String("x")}}, // the mark and a foreign key
			{{Key: aws.String("ecs-sidecar/source"), Value: aws.String("1")}},                                                    // retagging a twin
			{}, // nothing: ForAllValues alone would pass it
		} {
			if _, err := ecsR.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(twins[0]), Tags: tags}); !cloud.IsAccessDenied(err) {
				t.Errorf("TagResource %v: %v, want AccessDenied", tags, err)
			}
		}
		// Another Region: the *-resource writes carry aws:RequestedRegion.
		other := ecs.NewFromConfig(w.reconcilerConfig(t, "eu-west-1"))
		if _, err := other.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web:1")}); !cloud.IsAccessDenied(err) {
			t.Errorf("DeregisterTaskDefinition in eu-west-1: %v, want AccessDenied", err)
		}
		if _, err := other.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
			Family: aws.String("web"), ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("nginx")}},
		}); !cloud.IsAccessDenied(err) {
			t.Errorf("RegisterTaskDefinition in eu-west-1: %v, want AccessDenied", err)
		}
		log := w.az.since(mark)
		requireDenied(t, log, "ecs:TagResource", twins[0], "foreign tag keys, marker keys, an empty tag list")
		requireDenied(t, log, "ecs:DeregisterTaskDefinition", "*", "another Region")
		requireDenied(t, log, "ecs:RegisterTaskDefinition", "*", "another Region")
		if n := len(denials(log)); n < 6 {
			t.Errorf("%d denials, want one per forbidden call (6):\n%s", n, formatLog(log))
		}
	})

	t.Run("queue consumer", func(t *testing.T) {
		setupSQS := sqs.NewFromConfig(newClientConfig(t, motoURL, simRegion, nil, nil))
		event := `{"version":"0","id":"1","detail-type":"AWS API Call via CloudTrail","source":"aws.ecs","account":"123456789012","time":"2026-06-01T12:00:00Z","region":"us-east-1","resources":[],"detail":{"eventSource":"ecs.amazonaws.com","eventName":"RegisterTaskDefinition","eventID":"e1","requestParameters":{"family":"web"},"responseElements":{"taskDefinition":{"taskDefinitionArn":"arn:aws:ecs:us-east-1:123456789012:task-definition/web:1"}}}}`
		if _, err := setupSQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(event)}); err != nil {
			t.Fatal(err)
		}
		consume := func(done bool) {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			got := make(chan string, 1)
			consumer, err := watch.NewConsumer(sqs.NewFromConfig(newClientConfig(t, motoURL, simRegion, w.rec, w.az)), watch.ConsumerOptions{
				QueueURL: aws.ToString(q.QueueUrl), WaitTime: time.Second, Visibility: 30 * time.Second, MaxMessages: 10,
				Enqueue: func(family string) {
					select {
					case got <- family:
					default:
					}
				},
				Resolve: func(context.Context, watch.Event) (string, error) { return "web", nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			stopped := make(chan error, 1)
			go func() { stopped <- consumer.Run(cctx) }()
			select {
			case family := <-got:
				if done {
					// A reconcile that started after the message arrived.
					consumer.Done(cctx, family, time.Now())
				}
			case err := <-stopped:
				t.Fatalf("consumer stopped: %v", err)
			}
			cancel()
			<-stopped
		}
		consume(false) // held message returned on shutdown
		consume(true)  // reconciled: deleted
	})

	t.Run("shard leases", func(t *testing.T) {
		if !cfg.Leases.Enabled() {
			t.Fatal("the rendered configuration has no lease table: the stack's default is 2 replicas, with leases")
		}
		setup := dynamodb.NewFromConfig(newClientConfig(t, motoURL, simRegion, nil, nil))
		for _, table := range []string{cfg.Leases.Table, "someone-elses"} {
			if _, err := setup.CreateTable(ctx, lease.CreateTableInput(table)); err != nil {
				t.Fatal(err)
			}
		}
		client := dynamodb.NewFromConfig(newClientConfig(t, motoURL, simRegion, w.rec, w.az))
		m, err := lease.New(lease.Options{Client: client, Table: cfg.Leases.Table, Shards: cfg.Leases.Shards, Duration: cfg.Leases.Duration.Duration})
		if err != nil {
			t.Fatal(err)
		}
		mark := w.az.mark()
		// A round (take, heartbeat, scan), the check before a write
		// batch, and the release on SIGTERM: every call the leases make.
		if err := m.Round(ctx); err != nil {
			t.Fatalf("lease round: %v", err)
		}
		f, ok := m.Owns("web")
		if !ok {
			t.Fatal("a lone replica does not own web after a round")
		}
		if err := m.Check(ctx, f); err != nil {
			t.Fatalf("check: %v", err)
		}
		if err := m.Release(ctx); err != nil {
			t.Fatalf("release: %v", err)
		}
		for _, d := range denials(w.az.since(mark)) {
			t.Errorf("denied, and the leases need it: %s", d.Request)
		}
		// Another table is not the reconciler's.
		other, err := lease.New(lease.Options{Client: client, Table: "someone-elses", Shards: 4})
		if err != nil {
			t.Fatal(err)
		}
		mark = w.az.mark()
		if err := other.Round(ctx); !cloud.IsAccessDenied(err) {
			t.Errorf("a round on another table: %v, want AccessDenied", err)
		}
		requireDenied(t, w.az.since(mark), "dynamodb:Scan", "arn:aws:dynamodb:"+simRegion+":"+simAccount+":table/someone-elses", "a table other than the stack's")
	})

	t.Run("image configs", func(t *testing.T) {
		imageFlow(t, w, secretArn)
	})

	// Every operation the code attempted went through the authorizer (the
	// recorder sees them at the transport, the authorizer before signing).
	log := w.az.log()
	seen := map[string]bool{}
	for _, d := range log {
		seen[d.Operation] = true
	}
	for _, op := range w.rec.ops() {
		if !seen[op] && op != "STS GetCallerIdentity" {
			t.Errorf("%s was called but never authorized", op)
		}
	}
	if len(w.az.unmodelled) > 0 {
		t.Errorf("operations without an IAM model: %v", w.az.unmodelled)
	}
	// Every grant is used, or its caller is named.
	for _, g := range grantsUsed(policy, log) {
		why, listed := grantedForUnrecordedCalls[g.Action]
		switch {
		case len(g.Used) == 0 && !listed:
			t.Errorf("%s grants %s, and no call of the flows used it: narrow or drop it, or name its caller in grantedForUnrecordedCalls", g.Sid, g.Action)
		case len(g.Used) > 0 && listed:
			t.Errorf("%s: %s is used by the flows (%s); take it out of grantedForUnrecordedCalls", g.Sid, g.Action, g.Used[0].Request)
		case listed:
			t.Logf("%-36s %-34s not called here: %s", g.Sid, g.Action, why)
		default:
			t.Logf("%-36s %-34s used by %d calls, e.g. %s", g.Sid, g.Action, len(g.Used), g.Used[0].Request)
		}
	}
	for a := range grantedForUnrecordedCalls {
		if !grantsAction(policy, a) {
			t.Errorf("grantedForUnrecordedCalls names %s, which the policy does not grant", a)
		}
	}
}

// grantsAction reports whether some Allow statement names the action.
func grantsAction(policy []awssim.Statement, action string) bool {
	for _, st := range policy {
		if st.Effect != "Allow" {
			continue
		}
		for _, a := range st.Actions {
			if strings.EqualFold(a, action) {
				return true
			}
		}
	}
	return false
}

// TestDescribeServicesStaysRegionWide shows why Clusters does not scope
// DescribeServices: the service sweep describes the services of every
// cluster ListClusters returns, and a sweep denied before it ever succeeded
// stops the reconciler (controller.Run). Scoped like UpdateService, the
// first sweep fails.
func TestDescribeServicesStaysRegionWide(t *testing.T) {
	tpl := load(t)
	s := flowStack("https://sqs.us-east-1.amazonaws.com/"+simAccount+"/events", "arn:aws:sqs:us-east-1:"+simAccount+":events",
		"arn:aws:secretsmanager:us-east-1:"+simAccount+":secret:registry/private-AbCdEf")
	policy := policyOf(t, tpl, s, "TaskRolePolicy", "PolicyDocument")
	var clusterCond []awssim.Condition
	for _, st := range policy {
		if slices.Contains(st.Actions, "ecs:UpdateService") {
			clusterCond = st.Conditions
		}
	}
	if len(clusterCond) == 0 {
		t.Fatal("UpdateService has no ecs:cluster condition with Clusters set")
	}
	scoped := slices.Clone(policy)
	for i, st := range scoped {
		if slices.Contains(st.Actions, "ecs:DescribeServices") {
			scoped[i].Conditions = clusterCond
		}
	}
	for name, p := range map[string][]awssim.Statement{"template": policy, "DescribeServices scoped to Clusters": scoped} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, p)
			w.family(t, "prod", "web", roleArn("ecs-tasks/web"))
			w.family(t, "staging", "batch", roleArn("ecs-tasks/batch"))
			ctl, err := controller.New(controllerOptions(renderedConfigOf(t, tpl, s), ecs.NewFromConfig(w.reconcilerConfig(t, simRegion))))
			if err != nil {
				t.Fatal(err)
			}
			err = ctl.SweepServices(context.Background())
			if name == "template" {
				if err != nil {
					t.Errorf("service sweep: %v", err)
				}
				return
			}
			if !cloud.IsAccessDenied(err) {
				t.Errorf("service sweep with DescribeServices scoped: %v, want AccessDenied on staging", err)
			}
			select {
			case <-ctl.Swept():
				t.Error("the controller became ready with a cluster it may not describe")
			default:
			}
		})
	}
}
