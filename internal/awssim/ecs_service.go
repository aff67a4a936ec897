package awssim

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/deepcopy"
)

type cluster struct {
	name, arn    string
	tags         []types.Tag
	services     map[string]*service // by name, every status
	serviceNames []string            // sorted names of ACTIVE services
}

type service struct {
	cluster              *cluster
	name, arn            string
	status               string // ACTIVE, INACTIVE
	desired              int32
	launchType           types.LaunchType
	controller           types.DeploymentControllerType
	config               types.DeploymentConfiguration
	network              *types.NetworkConfiguration
	platformVersion      *string
	scheduling           types.SchedulingStrategy
	propagateTags        types.PropagateTags
	enableECSManagedTags bool
	taskDef              string           // for controllers other than ECS
	deployments          []*deployment    // [0] is PRIMARY
	lastGood             *deployment      // last COMPLETED deployment, target of rollbacks
	revisions            []*svcRevision   // service revisions, oldest first
	svcDeployments       []*svcDeployment // service deployments, oldest first
	tags                 []types.Tag
	createdAt            time.Time
}

// deployment is an entry of DescribeServices' deployments[]. It belongs to
// a service deployment (sd): as its target, or as its rollback.
type deployment struct {
	id                 string
	taskDef            string
	rev                *svcRevision
	sd                 *svcDeployment
	strategy           types.DeploymentStrategy // sd's, fixed at the start
	phase              rolloutPhase
	prod10, test10     int // traffic weights in tenths of a percent (not ROLLING)
	state              types.DeploymentRolloutState
	reason             string
	createdAt, updated time.Time
	desired, running   int32
	failedTasks        int32
	rollback           bool // a circuit-breaker rollback: never rolled back itself
}

func (d *deployment) trafficWeight() float64 { return float64(d.prod10) / 10 }
func (d *deployment) testWeight() float64    { return float64(d.test10) / 10 }

func (s *Sim) clusterARN(name string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", s.region, s.account, name)
}

func (s *Sim) serviceARN(cl, name string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", s.region, s.account, cl, name)
}

// lookupCluster resolves a cluster name or ARN; empty means "default".
func (s *Sim) lookupCluster(ref *string) (*cluster, *Error) {
	name := aws.ToString(ref)
	if name == "" {
		name = "default"
	}
	if i := strings.Index(name, ":cluster/"); strings.HasPrefix(name, "arn:") && i >= 0 {
		name = name[i+len(":cluster/"):]
	}
	c := s.clusters[name]
	if c == nil {
		return nil, errClusterNotFound()
	}
	return c, nil
}

func (s *Sim) createCluster(in *ecs.CreateClusterInput) (*ecs.CreateClusterOutput, error) {
	name := aws.ToString(in.ClusterName)
	if name == "" {
		name = "default"
	}
	if !familyPattern.MatchString(name) {
		return nil, errf(codeInvalidParameter, "Cluster name must be 1-255 letters, numbers, hyphens, or underscores.") // UNVERIFIED
	}
	if err := validateTags(in.Tags, 0); err != nil {
		return nil, err
	}
	c := s.clusters[name]
	if c == nil {
		// CreateCluster is idempotent in ECS: an existing cluster is returned.
		c = &cluster{name: name, arn: s.clusterARN(name), tags: cloneTags(in.Tags), services: map[string]*service{}}
		s.clusters[name] = c
		s.clusterNames = insertSorted(s.clusterNames, name)
	}
	return &ecs.CreateClusterOutput{Cluster: s.clusterOut(c, false)}, nil
}

func (s *Sim) clusterOut(c *cluster, withTags bool) *types.Cluster {
	var running, pending int32
	for _, name := range c.serviceNames {
		for _, d := range c.services[name].deployments {
			running += d.running
			pending += d.desired - d.running
		}
	}
	out := &types.Cluster{
		ClusterArn:          aws.String(c.arn),
		ClusterName:         aws.String(c.name),
		Status:              aws.String("ACTIVE"),
		ActiveServicesCount: int32(len(c.serviceNames)),
		RunningTasksCount:   running,
		PendingTasksCount:   pending,
		CapacityProviders:   []string{},
		Settings:            []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("disabled")}},
		Statistics:          []types.KeyValuePair{},
		Tags:                []types.Tag{},
	}
	if withTags {
		out.Tags = append(out.Tags, cloneTags(c.tags)...)
	}
	return out
}

func (s *Sim) listClusters(in *ecs.ListClustersInput) (*ecs.ListClustersOutput, error) {
	n, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken(in.NextToken, "cl")
	if err != nil {
		return nil, err
	}
	i, found := searchStrings(s.clusterNames, after)
	if found {
		i++
	}
	out := &ecs.ListClustersOutput{ClusterArns: []string{}}
	for ; i < len(s.clusterNames); i++ {
		if len(out.ClusterArns) == n {
			out.NextToken = encodeToken("cl", s.clusterNames[i-1])
			break
		}
		out.ClusterArns = append(out.ClusterArns, s.clusters[s.clusterNames[i]].arn)
	}
	return out, nil
}

func (s *Sim) describeClusters(in *ecs.DescribeClustersInput) (*ecs.DescribeClustersOutput, error) {
	refs := in.Clusters
	if len(refs) == 0 {
		refs = []string{"default"}
	}
	if len(refs) > 100 {
		return nil, errf(codeInvalidParameter, "clusters can have at most 100 items.") // UNVERIFIED
	}
	withTags := false
	for _, f := range in.Include {
		withTags = withTags || f == types.ClusterFieldTags
	}
	out := &ecs.DescribeClustersOutput{Clusters: []types.Cluster{}, Failures: []types.Failure{}}
	for _, ref := range refs {
		c, err := s.lookupCluster(aws.String(ref))
		if err != nil {
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = s.clusterARN(ref)
			}
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")})
			continue
		}
		out.Clusters = append(out.Clusters, *s.clusterOut(c, withTags))
	}
	return out, nil
}

// deployableTaskDef resolves the task definition of CreateService or
// UpdateService: it must exist and be ACTIVE.
func (s *Sim) deployableTaskDef(ref string) (*revision, *Error) {
	_, r, err := s.lookupTaskDef(ref)
	if err != nil {
		return nil, err
	}
	if r.td.Status != types.TaskDefinitionStatusActive {
		// ECS: "ClientException: TaskDefinition is inactive".
		return nil, errf(codeClient, "TaskDefinition is inactive")
	}
	return r, nil
}

func (s *Sim) createService(in *ecs.CreateServiceInput) (*ecs.CreateServiceOutput, error) {
	c, err := s.lookupCluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	name := aws.ToString(in.ServiceName)
	if !familyPattern.MatchString(name) {
		return nil, errf(codeInvalidParameter, "Service name must be 1-255 letters, numbers, hyphens, or underscores.") // UNVERIFIED
	}
	if old := c.services[name]; old != nil && old.status == "ACTIVE" {
		return nil, errf(codeInvalidParameter, "Creation of service was not idempotent.") // ECS
	}
	if err := validateTags(in.Tags, 0); err != nil {
		return nil, err
	}
	if err := validateDeploymentConfig(in.DeploymentConfiguration); err != nil {
		return nil, err
	}
	controller := types.DeploymentControllerTypeEcs
	if in.DeploymentController != nil && in.DeploymentController.Type != "" {
		controller = in.DeploymentController.Type
	}
	var r *revision
	if ref := aws.ToString(in.TaskDefinition); ref != "" {
		if r, err = s.deployableTaskDef(ref); err != nil {
			return nil, err
		}
	} else if controller != types.DeploymentControllerTypeExternal {
		// ECS: the task definition is required unless the controller is EXTERNAL.
		return nil, errf(codeInvalidParameter, "TaskDefinition must be specified.") // UNVERIFIED
	}
	launch := in.LaunchType
	if launch == "" && len(in.CapacityProviderStrategy) == 0 {
		launch = types.LaunchTypeEc2
	}
	if launch == types.LaunchTypeFargate && r != nil && !isFargate(r.td.Compatibilities) {
		return nil, errf(codeInvalidParameter, "Task definition does not support launch_type FARGATE.") // ECS
	}
	if launch == types.LaunchTypeFargate && r != nil && in.NetworkConfiguration == nil {
		return nil, errf(codeInvalidParameter, "Network Configuration must be provided when networkMode 'awsvpc' is specified.") // ECS, moto
	}
	now := s.clock.Now()
	sv := &service{
		cluster:              c,
		name:                 name,
		arn:                  s.serviceARN(c.name, name),
		status:               "ACTIVE",
		desired:              aws.ToInt32(in.DesiredCount),
		launchType:           launch,
		controller:           controller,
		config:               defaultDeploymentConfig(),
		network:              in.NetworkConfiguration,
		scheduling:           in.SchedulingStrategy,
		propagateTags:        in.PropagateTags,
		enableECSManagedTags: in.EnableECSManagedTags,
		tags:                 cloneTags(in.Tags),
		createdAt:            now,
	}
	if sv.scheduling == "" {
		sv.scheduling = types.SchedulingStrategyReplica
	}
	if sv.propagateTags == "" {
		sv.propagateTags = types.PropagateTagsNone
	}
	if launch == types.LaunchTypeFargate {
		sv.platformVersion = in.PlatformVersion
		if sv.platformVersion == nil {
			sv.platformVersion = aws.String("LATEST")
		}
	}
	mergeDeploymentConfig(&sv.config, in.DeploymentConfiguration)
	if r != nil {
		sv.taskDef = *r.td.TaskDefinitionArn
	}
	c.services[name] = sv
	c.serviceNames = insertSorted(c.serviceNames, name)
	if controller == types.DeploymentControllerTypeEcs {
		s.startServiceDeploymentLocked(sv, sv.taskDef, now)
	}
	return &ecs.CreateServiceOutput{Service: s.serviceOut(sv, false)}, nil
}

func defaultDeploymentConfig() types.DeploymentConfiguration {
	return types.DeploymentConfiguration{
		MaximumPercent:           aws.Int32(200),
		MinimumHealthyPercent:    aws.Int32(100),
		DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{},
	}
}

func mergeDeploymentConfig(dst *types.DeploymentConfiguration, in *types.DeploymentConfiguration) {
	if in == nil {
		return
	}
	in = deepcopy.Of(in)
	if in.MaximumPercent != nil {
		dst.MaximumPercent = in.MaximumPercent
	}
	if in.MinimumHealthyPercent != nil {
		dst.MinimumHealthyPercent = in.MinimumHealthyPercent
	}
	if in.DeploymentCircuitBreaker != nil {
		dst.DeploymentCircuitBreaker = in.DeploymentCircuitBreaker
	}
	if in.Alarms != nil {
		dst.Alarms = in.Alarms
	}
	if in.Strategy != "" {
		dst.Strategy = in.Strategy
	}
	if in.BakeTimeInMinutes != nil {
		dst.BakeTimeInMinutes = in.BakeTimeInMinutes
	}
	if in.LinearConfiguration != nil {
		dst.LinearConfiguration = in.LinearConfiguration
	}
	if in.CanaryConfiguration != nil {
		dst.CanaryConfiguration = in.CanaryConfiguration
	}
	if in.LifecycleHooks != nil {
		dst.LifecycleHooks = in.LifecycleHooks
	}
}

// validateDeploymentConfig checks the strategy settings against the ranges
// of the API reference (DeploymentConfiguration, LinearConfiguration,
// CanaryConfiguration). The messages are UNVERIFIED.
func validateDeploymentConfig(in *types.DeploymentConfiguration) *Error {
	if in == nil {
		return nil
	}
	if in.Strategy != "" && !slices.Contains(types.DeploymentStrategy("").Values(), in.Strategy) {
		return errf(codeInvalidParameter, "Invalid deployment strategy %s.", in.Strategy)
	}
	bake := func(name string, m *int32) *Error {
		if m != nil && (*m < 0 || *m > 1440) {
			return errf(codeInvalidParameter, "%s must be between 0 and 1440.", name)
		}
		return nil
	}
	percent := func(name string, p *float64, lo float64) *Error {
		if p == nil {
			return nil
		}
		if t := *p * 10; *p < lo || *p > 100 || math.Abs(t-math.Round(t)) > 1e-6 {
			return errf(codeInvalidParameter, "%s must be a multiple of 0.1 between %g and 100.", name, lo)
		}
		return nil
	}
	if err := bake("bakeTimeInMinutes", in.BakeTimeInMinutes); err != nil {
		return err
	}
	if c := in.LinearConfiguration; c != nil {
		if err := percent("linearConfiguration.stepPercent", c.StepPercent, 3); err != nil {
			return err
		}
		if err := bake("linearConfiguration.stepBakeTimeInMinutes", c.StepBakeTimeInMinutes); err != nil {
			return err
		}
	}
	if c := in.CanaryConfiguration; c != nil {
		if err := percent("canaryConfiguration.canaryPercent", c.CanaryPercent, 0.1); err != nil {
			return err
		}
		if err := bake("canaryConfiguration.canaryBakeTimeInMinutes", c.CanaryBakeTimeInMinutes); err != nil {
			return err
		}
	}
	return nil
}

// lookupService resolves a service name or ARN in cluster c.
func lookupService(c *cluster, ref string) *service {
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		name = ref[strings.LastIndex(ref, "/")+1:]
	}
	return c.services[name]
}

func (s *Sim) updateService(in *ecs.UpdateServiceInput) (*ecs.UpdateServiceOutput, error) {
	c, err := s.lookupCluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	sv := lookupService(c, aws.ToString(in.Service))
	if sv == nil {
		return nil, errServiceNotFound()
	}
	if sv.status != "ACTIVE" {
		return nil, errf(codeServiceNotActive, "Service was not ACTIVE.") // ECS
	}
	if err := validateDeploymentConfig(in.DeploymentConfiguration); err != nil {
		return nil, err
	}
	var r *revision
	if ref := aws.ToString(in.TaskDefinition); ref != "" {
		switch sv.controller {
		case types.DeploymentControllerTypeCodeDeploy:
			// ECS refuses a task definition change outside CodeDeploy.
			return nil, errf(codeInvalidParameter, "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment.") // ECS
		case types.DeploymentControllerTypeExternal:
			return nil, errf(codeInvalidParameter, "Unable to update task definition on services with a EXTERNAL deployment controller. Please use Task Set API.") // UNVERIFIED (form of the CODE_DEPLOY message)
		}
		if r, err = s.deployableTaskDef(ref); err != nil {
			return nil, err
		}
		if sv.launchType == types.LaunchTypeFargate && !isFargate(r.td.Compatibilities) {
			return nil, errf(codeInvalidParameter, "Task definition does not support launch_type FARGATE.") // ECS
		}
	}
	now := s.clock.Now()
	if in.DesiredCount != nil {
		sv.desired = *in.DesiredCount
		if p := sv.primary(); p != nil {
			p.desired = sv.desired
			if p.state == types.DeploymentRolloutStateCompleted {
				p.running = sv.desired
			}
			p.updated = now
		}
	}
	mergeDeploymentConfig(&sv.config, in.DeploymentConfiguration)
	if in.NetworkConfiguration != nil {
		sv.network = deepcopy.Of(in.NetworkConfiguration)
	}
	if in.PlatformVersion != nil {
		sv.platformVersion = aws.String(*in.PlatformVersion)
	}
	if in.PropagateTags != "" {
		sv.propagateTags = in.PropagateTags
	}
	if in.EnableECSManagedTags != nil {
		sv.enableECSManagedTags = *in.EnableECSManagedTags
	}
	target := sv.currentTaskDef()
	if r != nil {
		target = *r.td.TaskDefinitionArn
	}
	if sv.controller == types.DeploymentControllerTypeEcs && (target != sv.currentTaskDef() || in.ForceNewDeployment) {
		s.startServiceDeploymentLocked(sv, target, now)
	}
	return &ecs.UpdateServiceOutput{Service: s.serviceOut(sv, false)}, nil
}

func (s *Sim) deleteService(in *ecs.DeleteServiceInput) (*ecs.DeleteServiceOutput, error) {
	c, err := s.lookupCluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	sv := lookupService(c, aws.ToString(in.Service))
	if sv == nil {
		return nil, errServiceNotFound()
	}
	if sv.status != "ACTIVE" {
		return nil, errf(codeServiceNotActive, "Service was not ACTIVE.") // ECS
	}
	if sv.desired > 0 && !aws.ToBool(in.Force) {
		return nil, errf(codeInvalidParameter, "The service cannot be stopped while it is scaled above 0.") // ECS, moto
	}
	// ECS shows a deleted service as DRAINING, then INACTIVE; the simulator
	// has no tasks to drain.
	sv.status = "INACTIVE"
	sv.desired = 0
	for _, d := range sv.deployments {
		d.desired, d.running = 0, 0
	}
	// "Amazon ECS deletes the service revision when you delete a service"
	// (developerguide/service-revision.html), and so its deployments.
	sv.revisions, sv.svcDeployments = nil, nil
	c.serviceNames = removeSorted(c.serviceNames, sv.name)
	return &ecs.DeleteServiceOutput{Service: s.serviceOut(sv, false)}, nil
}

func (sv *service) primary() *deployment {
	if len(sv.deployments) == 0 {
		return nil
	}
	return sv.deployments[0]
}

// currentTaskDef is the service's taskDefinition: the primary deployment's.
func (sv *service) currentTaskDef() string {
	if p := sv.primary(); p != nil {
		return p.taskDef
	}
	return sv.taskDef
}

func (s *Sim) serviceOut(sv *service, withTags bool) *types.Service {
	out := &types.Service{
		ServiceArn:                    aws.String(sv.arn),
		ServiceName:                   aws.String(sv.name),
		ClusterArn:                    aws.String(sv.cluster.arn),
		Status:                        aws.String(sv.status),
		DesiredCount:                  sv.desired,
		LaunchType:                    sv.launchType,
		PlatformVersion:               sv.platformVersion,
		DeploymentConfiguration:       deepcopy.Of(&sv.config),
		DeploymentController:          &types.DeploymentController{Type: sv.controller},
		Deployments:                   []types.Deployment{},
		Events:                        []types.ServiceEvent{},
		LoadBalancers:                 []types.LoadBalancer{},
		ServiceRegistries:             []types.ServiceRegistry{},
		PlacementConstraints:          []types.PlacementConstraint{},
		PlacementStrategy:             []types.PlacementStrategy{},
		SchedulingStrategy:            sv.scheduling,
		PropagateTags:                 sv.propagateTags,
		EnableECSManagedTags:          sv.enableECSManagedTags,
		NetworkConfiguration:          deepcopy.Of(sv.network),
		CreatedAt:                     aws.Time(sv.createdAt),
		CreatedBy:                     aws.String(s.registeredBy()),
		HealthCheckGracePeriodSeconds: aws.Int32(0),
	}
	if td := sv.currentTaskDef(); td != "" {
		out.TaskDefinition = aws.String(td)
	}
	if sd := sv.currentServiceDeployment(); sd != nil {
		out.CurrentServiceDeployment = aws.String(sd.arn)
		out.CurrentServiceRevisions = currentRevisions(sv)
	}
	for i, d := range sv.deployments {
		status := "ACTIVE"
		if i == 0 {
			status = "PRIMARY"
		}
		out.Deployments = append(out.Deployments, types.Deployment{
			Id:                   aws.String(d.id),
			Status:               aws.String(status),
			TaskDefinition:       aws.String(d.taskDef),
			RolloutState:         d.state,
			RolloutStateReason:   aws.String(d.reason),
			DesiredCount:         d.desired,
			RunningCount:         d.running,
			PendingCount:         d.desired - d.running,
			FailedTasks:          d.failedTasks,
			LaunchType:           sv.launchType,
			PlatformVersion:      sv.platformVersion,
			NetworkConfiguration: deepcopy.Of(sv.network),
			CreatedAt:            aws.Time(d.createdAt),
			UpdatedAt:            aws.Time(d.updated),
		})
		out.RunningCount += d.running
		out.PendingCount += d.desired - d.running
	}
	if withTags {
		out.Tags = cloneTags(sv.tags)
		if out.Tags == nil {
			out.Tags = []types.Tag{}
		}
	}
	return out
}

func (s *Sim) describeServices(in *ecs.DescribeServicesInput) (*ecs.DescribeServicesOutput, error) {
	c, err := s.lookupCluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	if len(in.Services) == 0 {
		return nil, errf(codeInvalidParameter, "Services cannot be empty.") // UNVERIFIED
	}
	if len(in.Services) > 10 {
		// botocore's model: "You may specify up to 10 services to describe".
		return nil, errf(codeInvalidParameter, "services can have at most 10 items.") // UNVERIFIED wording
	}
	withTags := false
	for _, f := range in.Include {
		withTags = withTags || f == types.ServiceFieldTags
	}
	out := &ecs.DescribeServicesOutput{Services: []types.Service{}, Failures: []types.Failure{}}
	for _, ref := range in.Services {
		sv := lookupService(c, ref)
		if sv == nil {
			arn := ref
			if !strings.HasPrefix(ref, "arn:") {
				arn = s.serviceARN(c.name, ref)
			}
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")})
			continue
		}
		out.Services = append(out.Services, *s.serviceOut(sv, withTags))
	}
	return out, nil
}

func (s *Sim) listServices(in *ecs.ListServicesInput) (*ecs.ListServicesOutput, error) {
	c, err := s.lookupCluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	n, err := pageSize(in.MaxResults, 10)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken(in.NextToken, "svc")
	if err != nil {
		return nil, err
	}
	i, found := searchStrings(c.serviceNames, after)
	if found {
		i++
	}
	out := &ecs.ListServicesOutput{ServiceArns: []string{}}
	for ; i < len(c.serviceNames); i++ {
		sv := c.services[c.serviceNames[i]]
		if in.LaunchType != "" && sv.launchType != in.LaunchType {
			continue
		}
		if in.SchedulingStrategy != "" && sv.scheduling != in.SchedulingStrategy {
			continue
		}
		if len(out.ServiceArns) == n {
			last := out.ServiceArns[n-1]
			out.NextToken = encodeToken("svc", last[strings.LastIndex(last, "/")+1:])
			break
		}
		out.ServiceArns = append(out.ServiceArns, sv.arn)
	}
	return out, nil
}
