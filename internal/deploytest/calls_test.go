package deploytest

import (
	"context"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/moto"
	"github.com/ecs-sidecar/reconciler/internal/patch"
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

// iamPrefix maps the SDK's service ids to IAM's action prefixes.
var iamPrefix = map[string]string{
	"ECS": "ecs", "SQS": "sqs", "EventBridge": "events", "Secrets Manager": "secretsmanager",
	"ECR": "ecr", "IAM": "iam", "CloudTrail": "cloudtrail", "STS": "sts",
}

// batchActions are operations authorized as another action.
var batchActions = map[string]string{
	"sqs:DeleteMessageBatch":             "sqs:DeleteMessage",
	"sqs:ChangeMessageVisibilityBatch":   "sqs:ChangeMessageVisibility",
	"sqs:SendMessageBatch":               "sqs:SendMessage",
	"sts:GetCallerIdentity":              "", // needs no permission
	"secretsmanager:BatchGetSecretValue": "secretsmanager:GetSecretValue",
}

func (r *recorder) actions(t *testing.T) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for c := range r.calls {
		svc, op, _ := strings.Cut(c, " ")
		p, ok := iamPrefix[svc]
		if !ok {
			t.Errorf("service %q has no IAM prefix in iamPrefix", svc)
			continue
		}
		a := p + ":" + op
		if m, ok := batchActions[a]; ok {
			a = m
		}
		if a != "" {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

func newObserved(t *testing.T, endpoint string, rec *recorder) aws.Config {
	t.Helper()
	big := map[cloud.Category]cloud.Bucket{}
	for c := range cloud.Buckets() {
		big[c] = cloud.Bucket{Burst: 100000, Refill: 100000}
	}
	o := cloud.Options{
		Region: "us-east-1", Endpoint: endpoint, StaticCredentials: &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"},
		BudgetShare: 1, Buckets: big, MaxAttempts: 1,
	}
	if rec != nil {
		o.Observe = rec.observe
	}
	cfg, _, err := cloud.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestEveryCallIsGranted runs the reconciler's flows with the API-call
// middleware recording, and checks that the template's task role policy
// grants each call's IAM action (by action: some statement allows it; the
// resource scopes are checked by TestTaskRolePolicyIsLeastPrivilege).
func TestEveryCallIsGranted(t *testing.T) {
	rec := &recorder{calls: map[string]bool{}}
	ctx := context.Background()

	// Controller: instrument, roll out, see the rollout fail (failure
	// marker), clean up unused twins; against awssim.
	sim := awssim.New(awssim.Options{})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	setup := ecs.NewFromConfig(newObserved(t, srv.URL, nil))
	if _, err := setup.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	reg, err := setup.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"), RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/ecs-tasks/web"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("nginx:1.27"), Essential: aws.Bool(true),
			EntryPoint: []string{"/docker-entrypoint.sh"}, Command: []string{"nginx", "-g", "daemon off;"}}},
		Tags: []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String("prod"), ServiceName: aws.String("web"), TaskDefinition: reg.TaskDefinition.TaskDefinitionArn,
		DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-0a"}}},
		DeploymentConfiguration: &types.DeploymentConfiguration{
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true},
		},
	}); err != nil {
		t.Fatal(err)
	}
	sim.SetRollout(0, awssim.FailImages(regexp.MustCompile(`datacollector`)))
	ctl, err := controller.New(controller.Options{
		ECS: ecs.NewFromConfig(newObserved(t, srv.URL, rec)),
		Profile: func(name string) (patch.Profile, bool) {
			return patch.Profile{Name: "lacework", TokenSecretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:token-AbCdEf"}.WithDefaults(), name == "lacework"
		},
		RevertOnOptOut: true, DeregisterUnusedTwins: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := ctl.SweepServices(ctx); err != nil {
			t.Fatal(err)
		}
		if err := ctl.SweepFamilies(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := ctl.Reconcile(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		sim.Step()
	}

	// Queue consumer: receive, return held messages on shutdown, delete
	// once reconciled; against moto_server.
	motoURL := moto.Start(t)
	q, err := sqs.NewFromConfig(newObserved(t, motoURL, nil)).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("events")})
	if err != nil {
		t.Fatal(err)
	}
	setupSQS := sqs.NewFromConfig(newObserved(t, motoURL, nil))
	event := `{"version":"0","id":"1","detail-type":"AWS API Call via CloudTrail","source":"aws.ecs","account":"123456789012","time":"2026-06-01T12:00:00Z","region":"us-east-1","resources":[],"detail":{"eventSource":"ecs.amazonaws.com","eventName":"RegisterTaskDefinition","eventID":"e1","requestParameters":{"family":"web"},"responseElements":{"taskDefinition":{"taskDefinitionArn":"arn:aws:ecs:us-east-1:123456789012:task-definition/web:1"}}}}`
	if _, err := setupSQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(event)}); err != nil {
		t.Fatal(err)
	}
	consume := func(done bool) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var consumer *watch.Consumer
		got := make(chan string, 1)
		consumer, err = watch.NewConsumer(sqs.NewFromConfig(newObserved(t, motoURL, rec)), watch.ConsumerOptions{
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
		family := <-got
		if done {
			// A reconcile that started after the message arrived.
			consumer.Done(cctx, family, time.Now())
		}
		cancel()
		<-stopped
	}
	consume(false) // held message returned on shutdown
	consume(true)  // reconciled: deleted

	// The calls this test must have seen, or it proves nothing.
	have := map[string]bool{}
	for _, a := range rec.actions(t) {
		have[a] = true
	}
	for _, a := range []string{"ecs:RegisterTaskDefinition", "ecs:UpdateService", "ecs:TagResource", "ecs:DescribeServices",
		"ecs:ListTagsForResource", "sqs:ReceiveMessage", "sqs:DeleteMessage"} {
		if !have[a] {
			t.Errorf("the flows never called %s: %v", a, rec.actions(t))
		}
	}

	tpl, err := Load(Path())
	if err != nil {
		t.Fatal(err)
	}
	policy := policyOf(t, tpl, testStack(), "TaskRolePolicy", "PolicyDocument")
	for _, a := range rec.actions(t) {
		if !grantsAction(policy, a) {
			t.Errorf("the code calls %s, which the task role policy does not grant", a)
		}
	}
	t.Logf("calls recorded and granted: %v", rec.actions(t))
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
