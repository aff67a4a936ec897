package controller

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/moto"
	"github.com/ecs-sidecar/reconciler/internal/patch"
	"github.com/ecs-sidecar/reconciler/internal/watch"
)

// The end-to-end scenario against moto_server, an AWS emulator written by
// others: EventBridge delivers to SQS there too. moto emits no CloudTrail
// events, so the test puts the RegisterTaskDefinition event itself, as
// CloudTrail would. The service sweep is set to an hour: only the event can
// make the service move within the test.
func TestEndToEndAgainstMoto(t *testing.T) {
	ctx := context.Background()
	cfg := motoConfig(t)
	ecsc, q, eb := ecs.NewFromConfig(cfg), sqs.NewFromConfig(cfg), eventbridge.NewFromConfig(cfg)

	// The account: a queue fed by a rule for ECS's CloudTrail events.
	qout, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("reconciler-events")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: qout.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	pattern := `{"source":["aws.ecs"],"detail-type":["AWS API Call via CloudTrail"],"detail":{"eventSource":["ecs.amazonaws.com"]}}`
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("reconciler"), EventPattern: aws.String(pattern)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("reconciler"),
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(attrs.Attributes["QueueArn"])}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ecsc.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	// A service on a revision without opt-in: untouched.
	plain := registerMoto(t, ecsc, "web", nil)
	if _, err := ecsc.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String("web"),
		TaskDefinition: aws.String(plain), DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeEc2}); err != nil {
		t.Fatal(err)
	}

	var consumer *watch.Consumer
	ctl, err := New(Options{
		ECS: ecsc,
		Profile: func(string) (patch.Profile, bool) {
			return patch.Profile{TokenSecretArn: tokenArn}.WithDefaults(), true
		},
		ServiceSweep: time.Hour, FamilySweep: time.Hour,
		OnSuccess: func(ctx context.Context, family string, started time.Time) { consumer.Done(ctx, family, started) },
	})
	if err != nil {
		t.Fatal(err)
	}
	consumer, err = watch.NewConsumer(q, watch.ConsumerOptions{QueueURL: aws.ToString(qout.QueueUrl), WaitTime: time.Second,
		Visibility: 10 * time.Second, Enqueue: ctl.Enqueue})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { _ = ctl.Run(runCtx); done <- struct{}{} }()
	go func() { _ = consumer.Run(runCtx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()
	<-ctl.Swept()
	// Let the first reconcile (web not opted in) finish before the pipeline acts.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, ok := ctl.st.family("web"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first reconcile did not happen within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The pipeline registers an opted-in revision and deploys it; CloudTrail
	// reports the registration.
	src := registerMoto(t, ecsc, "web", map[string]string{"ecs-sidecar/inject": "true"})
	if _, err := ecsc.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"),
		TaskDefinition: aws.String(src)}); err != nil {
		t.Fatal(err)
	}
	putCloudTrailEvent(t, eb, "UpdateService", `{"cluster":"prod","service":"web","taskDefinition":"`+src+`"}`,
		`{"service":{"serviceArn":"arn:aws:ecs:us-east-1:123456789012:service/prod/web","clusterArn":"arn:aws:ecs:us-east-1:123456789012:cluster/prod","taskDefinition":"`+src+`"}}`)

	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := ecsc.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
		if err != nil {
			t.Fatal(err)
		}
		got := aws.ToString(out.Services[0].TaskDefinition)
		if got != src && got != plain {
			td, err := ecsc.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(got),
				Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
			if err != nil {
				t.Fatal(err)
			}
			if c := patch.Classify(td.TaskDefinition, td.Tags, nil, patch.Options{}); c.Kind != patch.KindTwin || c.SourceRevision != 2 {
				t.Fatalf("the service runs %s, classified %+v; want the twin of revision 2", got, c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event did not make the service move to its twin within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The event was deleted once its reconcile succeeded.
	deadline = time.Now().Add(30 * time.Second)
	for consumer.Held() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still held after the reconcile", consumer.Held())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func registerMoto(t *testing.T, c *ecs.Client, family string, tags map[string]string) string {
	t.Helper()
	in := &ecs.RegisterTaskDefinitionInput{
		Family:           aws.String(family),
		ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/ecsTaskExecutionRole"),
		// A Fargate task definition: the reconciler's default scope.
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode:             types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("nginx:1.27"), Essential: aws.Bool(true), Memory: aws.Int32(256),
			EntryPoint: []string{"/docker-entrypoint.sh"}, Command: []string{"nginx", "-g", "daemon off;"},
		}},
	}
	for k, v := range tags {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	out, err := c.RegisterTaskDefinition(context.Background(), in)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// putCloudTrailEvent puts an event shaped as CloudTrail's (the sample in
// internal/watch/testdata/events), with the given call.
func putCloudTrailEvent(t *testing.T, eb *eventbridge.Client, name, request, response string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "watch", "testdata", "events", "cloudtrail-register-task-definition.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	var detail map[string]json.RawMessage
	if err := json.Unmarshal(ev["detail"], &detail); err != nil {
		t.Fatal(err)
	}
	detail["eventName"] = json.RawMessage(`"` + name + `"`)
	detail["eventID"] = json.RawMessage(`"moto-` + strings.ToLower(name) + `"`)
	detail["requestParameters"] = json.RawMessage(request)
	detail["responseElements"] = json.RawMessage(response)
	body, err := json.Marshal(detail)
	if err != nil {
		t.Fatal(err)
	}
	out, err := eb.PutEvents(context.Background(), &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		Source: aws.String("aws.ecs"), DetailType: aws.String("AWS API Call via CloudTrail"), Detail: aws.String(string(body)),
	}}})
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %v %+v", err, out)
	}
}

// TestForgedTwinAgainstMoto: the forged-twin check against an ECS written
// by others (moto), whose described task definitions are not awssim's: the
// real twin the reconciler registers must be recognised as genuine by its
// content (no second registration), the forgery refused, and nothing
// deregistered, also by a restarted process.
func TestForgedTwinAgainstMoto(t *testing.T) {
	ctx := context.Background()
	cfg := motoConfig(t)
	ecsc := ecs.NewFromConfig(cfg)
	if _, err := ecsc.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	src := registerMoto(t, ecsc, "web", map[string]string{"ecs-sidecar/inject": "true"})
	if _, err := ecsc.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String("web"),
		TaskDefinition: aws.String(src), DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeFargate}); err != nil {
		t.Fatal(err)
	}
	prof := patch.Profile{TokenSecretArn: tokenArn}.WithDefaults()
	desc, err := ecsc.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(src),
		Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := patch.Instrument(desc.TaskDefinition, desc.Tags, prof, nil, patch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res.Input.ContainerDefinitions[1].Image = aws.String("attacker.example/miner:1")
	out, err := ecsc.RegisterTaskDefinition(ctx, res.Input)
	if err != nil {
		t.Fatal(err)
	}
	forged := aws.ToString(out.TaskDefinition.TaskDefinitionArn)

	var twin string
	for round := range 2 {
		var actions []Action
		ctl, err := New(Options{ECS: ecsc, Profile: func(string) (patch.Profile, bool) { return prof, true },
			OnAction: func(a Action) { actions = append(actions, a) }})
		if err != nil {
			t.Fatal(err)
		}
		if err := ctl.SweepServices(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := ctl.Reconcile(ctx, "web"); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		svc, err := ecsc.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
		if err != nil {
			t.Fatal(err)
		}
		got := aws.ToString(svc.Services[0].TaskDefinition)
		if got == forged || got == src {
			t.Fatalf("round %d: the service runs %s (forged %s, source %s)", round, got, forged, src)
		}
		if twin == "" {
			twin = got
		} else if got != twin {
			t.Errorf("round %d: the service moved from %s to %s", round, twin, got)
		}
		for _, a := range actions {
			switch {
			case a.Kind == ActionDeregisterTwin:
				t.Errorf("round %d: deregistered %s", round, a.Twin)
			case a.Kind == ActionRegisterTwin && round > 0:
				t.Errorf("round %d: registered another twin %s: moto's description of the real one was not recognised", round, a.Twin)
			}
		}
		if !slices.ContainsFunc(actions, func(a Action) bool { return a.Kind == ActionForgedTwin && a.Twin == forged }) {
			t.Errorf("round %d: the forgery was not reported (actions %+v)", round, actions)
		}
	}
}

// motoConfig is the reconciler's AWS configuration against a moto_server
// started on 127.0.0.1 for the test.
func motoConfig(t *testing.T) aws.Config {
	t.Helper()
	cfg, _, err := cloud.New(context.Background(), cloud.Options{
		Region: "us-east-1", Endpoint: moto.Start(t), StaticCredentials: &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"},
		MaxAttempts: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
