// The Go API: one method per served operation; keep in step with routes in http.go.

package awssim

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// ECSAPI is the simulator's ECS for Go callers, without HTTP. Its methods
// have the SDK client's signatures (options are ignored), so it satisfies
// the narrow interfaces that consumers declare for *ecs.Client. Inputs and
// outputs are copied: callers share no memory with the simulator.
type ECSAPI struct{ s *Sim }

// ECS returns the simulator's ECS API.
func (s *Sim) ECS() *ECSAPI { return &ECSAPI{s} }

// SecretsManagerAPI is the simulator's Secrets Manager for Go callers.
type SecretsManagerAPI struct{ s *Sim }

// SecretsManager returns the simulator's Secrets Manager API.
func (s *Sim) SecretsManager() *SecretsManagerAPI { return &SecretsManagerAPI{s} }

// ECRAPI is the simulator's ECR for Go callers.
type ECRAPI struct{ s *Sim }

// ECR returns the simulator's ECR API.
func (s *Sim) ECR() *ECRAPI { return &ECRAPI{s} }

// CreateCluster serves ECS's CreateCluster.
func (c *ECSAPI) CreateCluster(ctx context.Context, in *ecs.CreateClusterInput, _ ...func(*ecs.Options)) (*ecs.CreateClusterOutput, error) {
	return invoke(ctx, c.s, "ecs", "CreateCluster", in, (*Sim).createCluster, true)
}

// ListClusters serves ECS's ListClusters.
func (c *ECSAPI) ListClusters(ctx context.Context, in *ecs.ListClustersInput, _ ...func(*ecs.Options)) (*ecs.ListClustersOutput, error) {
	return invoke(ctx, c.s, "ecs", "ListClusters", in, (*Sim).listClusters, true)
}

// DescribeClusters serves ECS's DescribeClusters.
func (c *ECSAPI) DescribeClusters(ctx context.Context, in *ecs.DescribeClustersInput, _ ...func(*ecs.Options)) (*ecs.DescribeClustersOutput, error) {
	return invoke(ctx, c.s, "ecs", "DescribeClusters", in, (*Sim).describeClusters, true)
}

// RegisterTaskDefinition serves ECS's RegisterTaskDefinition.
func (c *ECSAPI) RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error) {
	return invoke(ctx, c.s, "ecs", "RegisterTaskDefinition", in, (*Sim).registerTaskDefinition, true)
}

// DeregisterTaskDefinition serves ECS's DeregisterTaskDefinition.
func (c *ECSAPI) DeregisterTaskDefinition(ctx context.Context, in *ecs.DeregisterTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.DeregisterTaskDefinitionOutput, error) {
	return invoke(ctx, c.s, "ecs", "DeregisterTaskDefinition", in, (*Sim).deregisterTaskDefinition, true)
}

// DescribeTaskDefinition serves ECS's DescribeTaskDefinition.
func (c *ECSAPI) DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error) {
	return invoke(ctx, c.s, "ecs", "DescribeTaskDefinition", in, (*Sim).describeTaskDefinition, true)
}

// ListTaskDefinitionFamilies serves ECS's ListTaskDefinitionFamilies.
func (c *ECSAPI) ListTaskDefinitionFamilies(ctx context.Context, in *ecs.ListTaskDefinitionFamiliesInput, _ ...func(*ecs.Options)) (*ecs.ListTaskDefinitionFamiliesOutput, error) {
	return invoke(ctx, c.s, "ecs", "ListTaskDefinitionFamilies", in, (*Sim).listTaskDefinitionFamilies, true)
}

// ListTaskDefinitions serves ECS's ListTaskDefinitions.
func (c *ECSAPI) ListTaskDefinitions(ctx context.Context, in *ecs.ListTaskDefinitionsInput, _ ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error) {
	return invoke(ctx, c.s, "ecs", "ListTaskDefinitions", in, (*Sim).listTaskDefinitions, true)
}

// TagResource serves ECS's TagResource.
func (c *ECSAPI) TagResource(ctx context.Context, in *ecs.TagResourceInput, _ ...func(*ecs.Options)) (*ecs.TagResourceOutput, error) {
	return invoke(ctx, c.s, "ecs", "TagResource", in, (*Sim).tagResource, true)
}

// UntagResource serves ECS's UntagResource.
func (c *ECSAPI) UntagResource(ctx context.Context, in *ecs.UntagResourceInput, _ ...func(*ecs.Options)) (*ecs.UntagResourceOutput, error) {
	return invoke(ctx, c.s, "ecs", "UntagResource", in, (*Sim).untagResource, true)
}

// ListTagsForResource serves ECS's ListTagsForResource.
func (c *ECSAPI) ListTagsForResource(ctx context.Context, in *ecs.ListTagsForResourceInput, _ ...func(*ecs.Options)) (*ecs.ListTagsForResourceOutput, error) {
	return invoke(ctx, c.s, "ecs", "ListTagsForResource", in, (*Sim).listTagsForResource, true)
}

// CreateService serves ECS's CreateService.
func (c *ECSAPI) CreateService(ctx context.Context, in *ecs.CreateServiceInput, _ ...func(*ecs.Options)) (*ecs.CreateServiceOutput, error) {
	return invoke(ctx, c.s, "ecs", "CreateService", in, (*Sim).createService, true)
}

// UpdateService serves ECS's UpdateService.
func (c *ECSAPI) UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, _ ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	return invoke(ctx, c.s, "ecs", "UpdateService", in, (*Sim).updateService, true)
}

// DeleteService serves ECS's DeleteService.
func (c *ECSAPI) DeleteService(ctx context.Context, in *ecs.DeleteServiceInput, _ ...func(*ecs.Options)) (*ecs.DeleteServiceOutput, error) {
	return invoke(ctx, c.s, "ecs", "DeleteService", in, (*Sim).deleteService, true)
}

// DescribeServices serves ECS's DescribeServices.
func (c *ECSAPI) DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, _ ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	return invoke(ctx, c.s, "ecs", "DescribeServices", in, (*Sim).describeServices, true)
}

// ListServices serves ECS's ListServices.
func (c *ECSAPI) ListServices(ctx context.Context, in *ecs.ListServicesInput, _ ...func(*ecs.Options)) (*ecs.ListServicesOutput, error) {
	return invoke(ctx, c.s, "ecs", "ListServices", in, (*Sim).listServices, true)
}

// ListServiceDeployments serves ECS's ListServiceDeployments.
func (c *ECSAPI) ListServiceDeployments(ctx context.Context, in *ecs.ListServiceDeploymentsInput, _ ...func(*ecs.Options)) (*ecs.ListServiceDeploymentsOutput, error) {
	return invoke(ctx, c.s, "ecs", "ListServiceDeployments", in, (*Sim).listServiceDeployments, true)
}

// DescribeServiceDeployments serves ECS's DescribeServiceDeployments.
func (c *ECSAPI) DescribeServiceDeployments(ctx context.Context, in *ecs.DescribeServiceDeploymentsInput, _ ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error) {
	return invoke(ctx, c.s, "ecs", "DescribeServiceDeployments", in, (*Sim).describeServiceDeployments, true)
}

// DescribeServiceRevisions serves ECS's DescribeServiceRevisions.
func (c *ECSAPI) DescribeServiceRevisions(ctx context.Context, in *ecs.DescribeServiceRevisionsInput, _ ...func(*ecs.Options)) (*ecs.DescribeServiceRevisionsOutput, error) {
	return invoke(ctx, c.s, "ecs", "DescribeServiceRevisions", in, (*Sim).describeServiceRevisions, true)
}

// CreateSecret serves Secrets Manager's CreateSecret.
func (c *SecretsManagerAPI) CreateSecret(ctx context.Context, in *secretsmanager.CreateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	return invoke(ctx, c.s, "secretsmanager", "CreateSecret", in, (*Sim).createSecret, true)
}

// DescribeSecret serves Secrets Manager's DescribeSecret.
func (c *SecretsManagerAPI) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return invoke(ctx, c.s, "secretsmanager", "DescribeSecret", in, (*Sim).describeSecret, true)
}

// GetSecretValue serves Secrets Manager's GetSecretValue.
func (c *SecretsManagerAPI) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return invoke(ctx, c.s, "secretsmanager", "GetSecretValue", in, (*Sim).getSecretValue, true)
}

// GetAuthorizationToken serves ECR's GetAuthorizationToken.
func (c *ECRAPI) GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, _ ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	return invoke(ctx, c.s, "ecr", "GetAuthorizationToken", in, (*Sim).getAuthorizationToken, true)
}
