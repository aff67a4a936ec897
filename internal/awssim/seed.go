package awssim

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Demo seed names, for tests and docs.
const (
	DemoCluster     = "demo"
	DemoTokenSecret = "ecs-sidecar/lacework-token"
)

// SeedDemo fills the simulator with the demo account, through the ordinary
// API (so the journal shows where the state came from):
//   - cluster "demo"; the secret ecs-sidecar/lacework-token;
//   - families: web (revision 1 tagged ecs-sidecar/inject=true, revision 2
//     untagged, as CI pipelines register them: it inherits the opt-in), api
//     (tagged inject=true and profile=lacework), worker (no tags) and batch
//     (tagged inject=false);
//   - Fargate services web (web:2), api (api:1), worker (worker:1) with the
//     circuit breaker and rollback on, and bluegreen (api:1) with a
//     CODE_DEPLOY controller, which the reconciler must leave alone.
func (s *Sim) SeedDemo(ctx context.Context) error {
	e := s.ECS()
	if _, err := e.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(DemoCluster)}); err != nil {
		return fmt.Errorf("seed cluster: %w", err)
	}
	if _, err := s.SecretsManager().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(DemoTokenSecret),
		Description:  aws.String("Lacework agent access token (demo)"),
		SecretString: aws.String("demo-access-token"),
	}); err != nil {
		return fmt.Errorf("seed secret: %w", err)
	}
	inject := []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}}
	families := []struct {
		family, image string
		tags          []types.Tag
	}{
		{"web", "nginx:1.27", inject},
		{"web", "nginx:1.27.1", nil},
		{"api", "public.ecr.aws/docker/library/python:3.12", append(inject, types.Tag{Key: aws.String("ecs-sidecar/profile"), Value: aws.String("lacework")})},
		{"worker", "busybox:1.36", nil},
		{"batch", "alpine:3.20", []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("false")}}},
	}
	for _, f := range families {
		if _, err := e.RegisterTaskDefinition(ctx, DemoTaskDefinition(f.family, f.image, f.tags)); err != nil {
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
		ExecutionRoleArn:        aws.String("arn:aws:iam::" + DefaultAccount + ":role/ecsTaskExecutionRole"),
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
