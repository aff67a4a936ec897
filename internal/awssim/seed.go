package awssim

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Demo seed names, for tests and docs.
const (
	DemoCluster     = "demo"
	DemoTokenSecret = "ecs-sidecar/lacework-token"
	// DemoQueue is the queue the reconciler reads; DemoDLQ its dead-letter
	// queue (and the rule target's); DemoRule the rule on the default bus
	// that feeds it.
	DemoQueue = "ecs-sidecar-events"
	DemoDLQ   = "ecs-sidecar-events-dlq"
	DemoRule  = "ecs-sidecar-events"
	// DemoMaxReceiveCount is the demo queue's redrive maxReceiveCount.
	DemoMaxReceiveCount = 5
	// DemoExecutionRole is the task execution role of the demo's task
	// definitions; it may read DemoTokenSecret.
	DemoExecutionRole = "arn:aws:iam::" + DefaultAccount + ":role/ecsTaskExecutionRole"
	// DemoReconcilerRole is the reconciler's task role: the STS caller of
	// the demo is a session of it, and it holds the CloudFormation
	// template's task role policy.
	DemoReconcilerRole = "arn:aws:iam::" + DefaultAccount + ":role/ecs-sidecar-reconciler"
	// DemoTrail is the demo's trail: multi-Region, logging every
	// management event, as an account's default trail does.
	DemoTrail = "management-events"
)

// DemoEventNames are the CloudTrail event names the demo rule forwards:
// the ones the reconciler parses.
var DemoEventNames = []string{"RegisterTaskDefinition", "DeregisterTaskDefinition", "TagResource", "UntagResource", "CreateService", "UpdateService"}

// DemoEventPattern is the demo rule's pattern: ECS's CloudTrail calls that
// the reconciler parses, and ECS's deployment and service events.
func DemoEventPattern() string {
	p := map[string]any{
		"source": []string{"aws.ecs"},
		"$or": []any{
			map[string]any{
				"detail-type": []string{detailTypeCloudTrail},
				"detail":      map[string]any{"eventSource": []string{"ecs.amazonaws.com"}, "eventName": DemoEventNames},
			},
			map[string]any{"detail-type": []string{"ECS Deployment State Change", "ECS Service Action"}},
		},
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// DemoQueueURL is the URL of the demo queue at an endpoint of the
// simulator (http://127.0.0.1:4566): <endpoint>/<account>/ecs-sidecar-events.
func DemoQueueURL(endpoint string) string {
	return strings.TrimSuffix(endpoint, "/") + "/" + DefaultAccount + "/" + DemoQueue
}

// SeedDemo fills the simulator with the demo account, through the ordinary
// API (so the journal shows where the state came from):
//   - cluster "demo"; the secret ecs-sidecar/lacework-token;
//   - families: web (revision 1 tagged ecs-sidecar/inject=true, revision 2
//     untagged, as CI pipelines register them: it inherits the opt-in), api
//     (tagged inject=true and profile=lacework), worker (no tags) and batch
//     (tagged inject=false);
//   - the families state their command where the reconciler must know it
//     without reading the image (the demo has no registry): web's
//     revisions have entryPoint ["/docker-entrypoint.sh"] and command
//     ["nginx","-g","daemon off;"] (the nginx image's), api has entryPoint
//     ["python3"] and command ["-m","http.server","8080"]; worker states
//     neither, so that the demo also shows a refusal (unknown_command);
//   - Fargate services web (web:2), api (api:1), worker (worker:1) with the
//     circuit breaker and rollback on, and bluegreen (api:1) with a
//     CODE_DEPLOY controller, which the reconciler must leave alone;
//   - last (so that it starts empty), the queue DemoQueue with its DLQ
//     DemoDLQ (redrive after DemoMaxReceiveCount receives), and the rule
//     DemoRule on the default bus (DemoEventPattern) targeting the queue,
//     with the DLQ as the target's dead-letter queue: from then on, ECS
//     calls and rollouts put their events in the queue
//     (DemoQueueURL(endpoint));
//   - what `reconciler check` verifies in an account (seedDemoIAM): the
//     execution role DemoExecutionRole with the permissions of AWS's
//     managed AmazonECSTaskExecutionRolePolicy and GetSecretValue on the
//     token secret; the reconciler's role DemoReconcilerRole with the
//     template's task role policy for this account, and the caller of STS a
//     session of it; the trail DemoTrail logging management events. These
//     are not journalled (IAM and CloudTrail state is configuration).
//
// The account must be DefaultAccount (DemoQueueURL and the demo's ARNs
// name it).
func (s *Sim) SeedDemo(ctx context.Context) error {
	e := s.ECS()
	if _, err := e.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(DemoCluster)}); err != nil {
		return fmt.Errorf("seed cluster: %w", err)
	}
	secret, err := s.SecretsManager().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(DemoTokenSecret),
		Description:  aws.String("Lacework agent access token (demo)"),
		SecretString: aws.String("demo-access-token"),
	})
	if err != nil {
		return fmt.Errorf("seed secret: %w", err)
	}
	inject := []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}}
	nginxEntry, nginxCmd := []string{"/docker-entrypoint.sh"}, []string{"nginx", "-g", "daemon off;"}
	families := []struct {
		family, image       string
		tags                []types.Tag
		entryPoint, command []string
	}{
		{"web", "nginx:1.27", inject, nginxEntry, nginxCmd},
		{"web", "nginx:1.27.1", nil, nginxEntry, nginxCmd},
		{"api", "public.ecr.aws/docker/library/python:3.12", append(inject, types.Tag{Key: aws.String("ecs-sidecar/profile"), Value: aws.String("lacework")}),
			[]string{"python3"}, []string{"-m", "http.server", "8080"}},
		{"worker", "busybox:1.36", nil, nil, nil},
		{"batch", "alpine:3.20", []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("false")}}, nil, nil},
	}
	for _, f := range families {
		td := DemoTaskDefinition(f.family, f.image, f.tags)
		td.ContainerDefinitions[0].EntryPoint, td.ContainerDefinitions[0].Command = f.entryPoint, f.command
		if _, err := e.RegisterTaskDefinition(ctx, td); err != nil {
			return fmt.Errorf("seed family %s: %w", f.family, err)
		}
	}
	network := &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
		Subnets: []string{"subnet-0demo0000000000a"}, SecurityGroups: []string{"sg-0demo0000000000a"},
	}}
	services := []struct {
		name, taskDef string
		controller    types.DeploymentControllerType
	}{
		{"web", "web:2", types.DeploymentControllerTypeEcs},
		{"api", "api:1", types.DeploymentControllerTypeEcs},
		{"worker", "worker:1", types.DeploymentControllerTypeEcs},
		{"bluegreen", "api:1", types.DeploymentControllerTypeCodeDeploy},
	}
	for _, sv := range services {
		if _, err := e.CreateService(ctx, &ecs.CreateServiceInput{
			Cluster:              aws.String(DemoCluster),
			ServiceName:          aws.String(sv.name),
			TaskDefinition:       aws.String(sv.taskDef),
			DesiredCount:         aws.Int32(2),
			LaunchType:           types.LaunchTypeFargate,
			NetworkConfiguration: network,
			DeploymentController: &types.DeploymentController{Type: sv.controller},
			DeploymentConfiguration: &types.DeploymentConfiguration{
				DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true},
			},
		}); err != nil {
			return fmt.Errorf("seed service %s: %w", sv.name, err)
		}
	}
	if err := s.seedDemoEvents(ctx); err != nil {
		return err
	}
	s.seedDemoIAM(aws.ToString(secret.ARN))
	return nil
}

// seedDemoEvents creates the demo queue, its DLQ and the rule feeding it.
func (s *Sim) seedDemoEvents(ctx context.Context) error {
	q := s.SQS()
	if _, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(DemoDLQ),
		Attributes: map[string]string{"MessageRetentionPeriod": "1209600"}}); err != nil {
		return fmt.Errorf("seed dead-letter queue: %w", err)
	}
	ruleArn := s.ruleARN(defaultBus, DemoRule)
	policy, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid": "EventBridgeSendMessage", "Effect": "Allow",
			"Principal": map[string]any{"Service": "events.amazonaws.com"},
			"Action":    "sqs:SendMessage", "Resource": s.QueueARN(DemoQueue),
			"Condition": map[string]any{"ArnEquals": map[string]any{"aws:SourceArn": ruleArn}},
		}},
	})
	redrive := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, s.QueueARN(DemoDLQ), DemoMaxReceiveCount)
	if _, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(DemoQueue),
		Attributes: map[string]string{"VisibilityTimeout": "60", "RedrivePolicy": redrive, "Policy": string(policy)}}); err != nil {
		return fmt.Errorf("seed queue: %w", err)
	}
	eb := s.EventBridge()
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(DemoRule), EventPattern: aws.String(DemoEventPattern()),
		Description: aws.String("ECS calls and rollouts the reconciler reacts to")}); err != nil {
		return fmt.Errorf("seed rule: %w", err)
	}
	out, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(DemoRule), Targets: []ebtypes.Target{{
		Id: aws.String("reconciler-queue"), Arn: aws.String(s.QueueARN(DemoQueue)),
		DeadLetterConfig: &ebtypes.DeadLetterConfig{Arn: aws.String(s.QueueARN(DemoDLQ))},
		RetryPolicy:      &ebtypes.RetryPolicy{MaximumRetryAttempts: aws.Int32(185), MaximumEventAgeInSeconds: aws.Int32(86400)},
	}}})
	if err != nil {
		return fmt.Errorf("seed rule target: %w", err)
	}
	if out.FailedEntryCount > 0 {
		return fmt.Errorf("seed rule target: %s", aws.ToString(out.FailedEntries[0].ErrorMessage))
	}
	return nil
}

// DemoTaskDefinition is a valid Fargate task definition of one essential
// container, with an execution role and awslogs, as the demo registers them.
func DemoTaskDefinition(family, image string, tags []types.Tag) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(family),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode:             types.NetworkModeAwsvpc,
		Cpu:                     aws.String("256"),
		Memory:                  aws.String("512"),
		ExecutionRoleArn:        aws.String(DemoExecutionRole),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:      aws.String("app"),
			Image:     aws.String(image),
			Essential: aws.Bool(true),
			PortMappings: []types.PortMapping{{
				ContainerPort: aws.Int32(8080), Protocol: types.TransportProtocolTcp,
			}},
			LogConfiguration: &types.LogConfiguration{
				LogDriver: types.LogDriverAwslogs,
				Options: map[string]string{
					"awslogs-group": "/ecs/" + family, "awslogs-region": DefaultRegion, "awslogs-stream-prefix": family,
				},
			},
		}},
		Tags: tags,
	}
}

// seedDemoIAM gives the demo account the roles and the trail an account
// running the reconciler has (see SeedDemo).
func (s *Sim) seedDemoIAM(secretArn string) {
	s.PutPrincipalPolicy(DemoExecutionRole, []Statement{
		// The permissions of the AWS managed policy
		// AmazonECSTaskExecutionRolePolicy: pull from ECR, write awslogs.
		{Sid: "AmazonECSTaskExecutionRolePolicy", Effect: "Allow", Actions: []string{
			"ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
			"logs:CreateLogStream", "logs:PutLogEvents",
		}, Resources: []string{"*"}},
		// The inline policy the sidecar's token needs (the container's
		// secrets are read by the execution role when the task starts).
		{Sid: "ReadLaceworkToken", Effect: "Allow", Actions: []string{"secretsmanager:GetSecretValue"}, Resources: []string{secretArn}},
	})
	s.PutPrincipalPolicy(DemoReconcilerRole, DemoReconcilerPolicy(secretArn, s.QueueARN(DemoQueue)))
	s.SetCallerIdentity(fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/awssim", s.account, DemoReconcilerRole[strings.LastIndexByte(DemoReconcilerRole, '/')+1:]))
	s.PutTrail(Trail{Name: DemoTrail, MultiRegion: true, Logging: true})
}

// DemoReconcilerPolicy is deploy/cloudformation/reconciler.yaml's
// TaskRolePolicy as a stack in the demo account would resolve it: Region
// us-east-1, no Clusters (every cluster), PassableRoleArns
// [DemoExecutionRole], the default tag prefix, no audit bus and no registry
// secrets; the task role is DemoReconcilerRole. A test compares it with the
// template, statement by statement.
func DemoReconcilerPolicy(secretArn, queueArn string) []Statement {
	region, account := DefaultRegion, DefaultAccount
	arn := func(service, resource string) string {
		return fmt.Sprintf("arn:aws:%s:%s:%s:%s", service, region, account, resource)
	}
	inRegion := []Condition{{Operator: "StringEquals", Key: "aws:RequestedRegion", Values: []string{region}}}
	failed := []string{"ecs-sidecar/failed"}
	return []Statement{
		{Sid: "EcsDiscovery", Effect: "Allow", Actions: []string{"ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions",
			"ecs:ListTaskDefinitionFamilies", "ecs:ListClusters", "ecs:ListServices"}, Resources: []string{"*"}},
		{Sid: "ReadTagsInBulk", Effect: "Allow", Actions: []string{"tag:GetResources"}, Resources: []string{"*"}},
		{Sid: "EcsTaskDefinitionWritesInThisRegion", Effect: "Allow", Actions: []string{"ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition"},
			Resources: []string{"*"}, Conditions: inRegion},
		{Sid: "EcsReadServicesOfThisRegion", Effect: "Allow", Actions: []string{"ecs:DescribeServices"}, Resources: []string{arn("ecs", "service/*")}},
		{Sid: "EcsMoveServicesOfClusters", Effect: "Allow", Actions: []string{"ecs:UpdateService", "ecs:ListServiceDeployments"},
			Resources: []string{arn("ecs", "service/*")}},
		{Sid: "EcsReadRolloutHistory", Effect: "Allow", Actions: []string{"ecs:DescribeServiceRevisions", "ecs:DescribeServiceDeployments"},
			Resources: []string{arn("ecs", "service-revision/*"), arn("ecs", "service-deployment/*")}},
		{Sid: "EcsReadTaskDefinitionTags", Effect: "Allow", Actions: []string{"ecs:ListTagsForResource"}, Resources: []string{arn("ecs", "task-definition/*")}},
		{Sid: "EcsTagOnRegister", Effect: "Allow", Actions: []string{"ecs:TagResource"}, Resources: []string{arn("ecs", "task-definition/*")},
			Conditions: []Condition{{Operator: "StringEquals", Key: "ecs:CreateAction", Values: []string{"RegisterTaskDefinition"}}}},
		{Sid: "EcsFailureMarkerTag", Effect: "Allow", Actions: []string{"ecs:TagResource"}, Resources: []string{arn("ecs", "task-definition/*")},
			Conditions: []Condition{
				{Operator: "ForAllValues:StringEquals", Key: "aws:TagKeys", Values: failed},
				{Operator: "ForAnyValue:StringEquals", Key: "aws:TagKeys", Values: failed},
			}},
		{Sid: "PassFamiliesRolesToEcsTasks", Effect: "Allow", Actions: []string{"iam:PassRole"}, Resources: []string{DemoExecutionRole},
			Conditions: []Condition{{Operator: "StringEquals", Key: "iam:PassedToService", Values: []string{"ecs-tasks.amazonaws.com"}}}},
		{Sid: "ConsumeEventQueue", Effect: "Allow", Actions: []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"},
			Resources: []string{queueArn}},
		{Sid: "DescribeTokenSecretNotItsValue", Effect: "Allow", Actions: []string{"secretsmanager:DescribeSecret"}, Resources: []string{secretArn}},
		{Sid: "EcrLogin", Effect: "Allow", Actions: []string{"ecr:GetAuthorizationToken"}, Resources: []string{"*"}},
		{Sid: "EcrReadImageConfigs", Effect: "Allow", Actions: []string{"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"},
			Resources: []string{"arn:aws:ecr:*:*:repository/*"}},
		{Sid: "CheckCloudTrailListing", Effect: "Allow", Actions: []string{"cloudtrail:DescribeTrails", "events:ListRuleNamesByTarget"}, Resources: []string{"*"}},
		{Sid: "CheckCloudTrailStatus", Effect: "Allow", Actions: []string{"cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"},
			Resources: []string{"arn:aws:cloudtrail:*:*:trail/*"}},
		{Sid: "CheckSimulateOwnAndFamiliesRoles", Effect: "Allow", Actions: []string{"iam:SimulatePrincipalPolicy"},
			Resources: []string{DemoExecutionRole, DemoReconcilerRole}},
	}
}
