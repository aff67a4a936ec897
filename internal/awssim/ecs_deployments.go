package awssim

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/deepcopy"
)

// Service revisions and service deployments: ECS's record of what a service
// ran and how it got there (ListServiceDeployments,
// DescribeServiceDeployments, DescribeServiceRevisions), so that a client
// that starts late learns the rollout history from ECS.
//
// What ECS documents, and the simulator does:
//   - "Amazon ECS creates a new service deployment automatically when ... a
//     user creates a service ... updates the service and uses the force new
//     deployment option ... updates one or more service properties that
//     require a deployment"; each one deploys a new service revision, and
//     "Amazon ECS doesn't create a new service revision for a rollback
//     operation. Amazon ECS uses the last successful service revision for
//     the rollback" (developerguide/service-deployment.html,
//     developerguide/service-revision.html). In the simulator the
//     properties that start a deployment are the task definition (and
//     forceNewDeployment), as for deployments[].
//   - A service deployment is Pending (PENDING), Ongoing (IN_PROGRESS,
//     STOP_REQUESTED, ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS) or
//     Completed (SUCCESSFUL, STOPPED, ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED)
//     (service-deployment.html). "The service deployment stops when ... The
//     rollback option is not in use for the failure detection mechanism (the
//     circuit breaker or alarm-based) and the service fails"
//     (ServiceDeployment.stoppedAt, API reference).
//   - "Amazon ECS deletes the service revision when you delete a service"
//     (service-revision.html): the simulator forgets a deleted service's
//     revisions and deployments.
//   - DescribeServiceDeployments and DescribeServiceRevisions take at most
//     20 ARNs; ListServiceDeployments returns up to maxResults (1-100,
//     default 20) per page (API reference). DescribeServiceDeployments
//     reports a deployment it has no record of (one older than October 25,
//     2024) as a failure with reason MISSING (API reference): the simulator
//     reports every unknown ARN so, for both describes.
//
// What the simulator chooses where ECS does not say (UNVERIFIED):
//   - A deployment starts IN_PROGRESS at once (ECS's PENDING is not shown),
//     and a newer deployment of the same service stops an ongoing one:
//     STOPPED, with stoppedAt and a statusReason saying so.
//   - ListServiceDeployments lists newest first (createdAt, then creation
//     order); the reference does not state an order.
//   - Ids come from counters, like the simulator's other ids: revisions
//     4000000000000000001, ..., deployments 2000000000000000001, ...
//   - STOP_REQUESTED and ROLLBACK_REQUESTED (StopServiceDeployment) and
//     lifecycle hooks are not simulated.
//
// The rollout itself (rollout.go) drives both this view and DescribeServices'
// deployments[]: each deployments[] entry points at its service deployment,
// so the two cannot disagree.

// Id bases: ECS's revision ids are 19 digits; the deployment ids take
// another base so that the two are not confused with each other or with
// deployments[] ids (ecs-svc/1...).
const (
	serviceRevisionIDBase   = 4_000_000_000_000_000_000
	serviceDeploymentIDBase = 2_000_000_000_000_000_000
)

// svcRevision is a service revision: what one deployment deploys. Immutable.
type svcRevision struct {
	id, arn         string
	taskDef         string
	createdAt       time.Time
	launchType      types.LaunchType
	platformVersion *string
	network         *types.NetworkConfiguration
}

// svcDeployment is a service deployment.
type svcDeployment struct {
	id, arn string
	target  *svcRevision
	sources []*svcRevision // what ran when it started
	config  types.DeploymentConfiguration
	status  types.ServiceDeploymentStatus
	reason  string
	stage   types.ServiceDeploymentLifecycleStage // blue/green, linear, canary only

	createdAt, updatedAt  time.Time
	finishedAt, stoppedAt time.Time // zero until then

	rollbackReason string
	rollbackAt     time.Time
	rollbackTo     *svcRevision // set when a rollback started

	cbStatus     types.ServiceDeploymentRollbackMonitorsStatus
	alarmStatus  types.ServiceDeploymentRollbackMonitorsStatus
	failureCount int32

	dep *deployment // the deployments[] entry of the target

	// frozen are the revision summaries once the deployment has ended
	// (target first), so that later changes of the service do not rewrite
	// history.
	frozen []types.ServiceRevisionSummary
}

func (sd *svcDeployment) ended() bool {
	switch sd.status {
	case types.ServiceDeploymentStatusSuccessful, types.ServiceDeploymentStatusStopped,
		types.ServiceDeploymentStatusRollbackSuccessful, types.ServiceDeploymentStatusRollbackFailed:
		return true
	}
	return false
}

func (s *Sim) serviceRevisionARN(sv *service, id string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:service-revision/%s/%s/%s", s.region, s.account, sv.cluster.name, sv.name, id)
}

func (s *Sim) serviceDeploymentARN(sv *service, id string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:service-deployment/%s/%s/%s", s.region, s.account, sv.cluster.name, sv.name, id)
}

// newRevisionLocked records the service revision a deployment of taskDef
// deploys: the task definition and the service's settings now.
func (s *Sim) newRevisionLocked(sv *service, taskDef string, at time.Time) *svcRevision {
	s.revIDs++
	id := strconv.FormatInt(serviceRevisionIDBase+s.revIDs, 10)
	r := &svcRevision{
		id: id, arn: s.serviceRevisionARN(sv, id), taskDef: taskDef, createdAt: at,
		launchType: sv.launchType, network: deepcopy.Of(sv.network),
	}
	if sv.platformVersion != nil {
		r.platformVersion = aws.String(*sv.platformVersion)
	}
	sv.revisions = append(sv.revisions, r)
	return r
}

// startServiceDeploymentLocked starts a deployment of taskDef that a
// CreateService or UpdateService asked for: a new service revision, a new
// service deployment whose sources are the revisions running now, and its
// PRIMARY entry in deployments[]. Ongoing service deployments stop.
func (s *Sim) startServiceDeploymentLocked(sv *service, taskDef string, at time.Time) {
	var sources []*svcRevision
	for _, d := range sv.deployments {
		if d.rev != nil && !slices.Contains(sources, d.rev) {
			sources = append(sources, d.rev)
		}
	}
	rev := s.newRevisionLocked(sv, taskDef, at)
	s.sdIDs++
	id := strconv.FormatInt(serviceDeploymentIDBase+s.sdIDs, 10)
	sd := &svcDeployment{
		id: id, arn: s.serviceDeploymentARN(sv, id), target: rev, sources: sources,
		config: *deepcopy.Of(&sv.config), status: types.ServiceDeploymentStatusInProgress,
		createdAt: at, updatedAt: at,
		cbStatus: types.ServiceDeploymentRollbackMonitorsStatusDisabled, alarmStatus: types.ServiceDeploymentRollbackMonitorsStatusDisabled,
	}
	if circuitBreakerOn(&sv.config) {
		sd.cbStatus = types.ServiceDeploymentRollbackMonitorsStatusMonitoring
	}
	if alarmsOn(&sv.config) {
		sd.alarmStatus = types.ServiceDeploymentRollbackMonitorsStatusMonitoring
	}
	if strategyOf(&sv.config) != types.DeploymentStrategyRolling {
		sd.stage = types.ServiceDeploymentLifecycleStageScaleUp
	}
	older := sv.svcDeployments
	sv.svcDeployments = append(sv.svcDeployments, sd)
	sd.dep = s.startDeploymentLocked(sv, sd, rev, at, "", false)
	for _, o := range older {
		if !o.ended() {
			// UNVERIFIED: ECS's wording for a deployment that a newer one replaced.
			s.endServiceDeploymentLocked(sv, o, types.ServiceDeploymentStatusStopped, at, "ECS stopped this service deployment: a newer service deployment started.")
		}
	}
}

// endServiceDeploymentLocked ends sd with status at time at and freezes its
// revision summaries.
func (s *Sim) endServiceDeploymentLocked(sv *service, sd *svcDeployment, status types.ServiceDeploymentStatus, at time.Time, reason string) {
	sd.status, sd.updatedAt = status, at
	if reason != "" {
		sd.reason = reason
	}
	if status == types.ServiceDeploymentStatusStopped {
		sd.stoppedAt = at
	} else {
		sd.finishedAt = at
	}
	if sd.cbStatus == types.ServiceDeploymentRollbackMonitorsStatusMonitoring {
		sd.cbStatus = types.ServiceDeploymentRollbackMonitorsStatusMonitoringComplete
	}
	if sd.alarmStatus == types.ServiceDeploymentRollbackMonitorsStatusMonitoring {
		sd.alarmStatus = types.ServiceDeploymentRollbackMonitorsStatusMonitoringComplete
	}
	sd.frozen = nil
	sd.frozen = s.revisionSummaries(sv, sd)
}

// revisionSummaries are the target's and then each source's task counts
// and traffic weights: live while sd is ongoing, frozen once it ended.
func (s *Sim) revisionSummaries(sv *service, sd *svcDeployment) []types.ServiceRevisionSummary {
	if sd.frozen != nil {
		return deepcopy.Of(sd.frozen)
	}
	revs := append([]*svcRevision{sd.target}, sd.sources...)
	if sd.rollbackTo != nil && !slices.Contains(revs, sd.rollbackTo) {
		revs = append(revs, sd.rollbackTo)
	}
	out := make([]types.ServiceRevisionSummary, 0, len(revs))
	shifted := strategyOf(&sd.config) != types.DeploymentStrategyRolling
	// Traffic: the target's entry holds its weights; the rest goes to the
	// revision that served before (the rollback target once rolling back).
	var prod, test float64
	if d := sd.dep; d != nil && slices.Contains(sv.deployments, d) {
		prod, test = d.trafficWeight(), d.testWeight()
	}
	serving := sd.rollbackTo
	if serving == nil && len(sd.sources) > 0 {
		serving = sd.sources[0]
	}
	for _, r := range revs {
		sum := types.ServiceRevisionSummary{Arn: aws.String(r.arn)}
		for _, d := range sv.deployments {
			if d.rev == r && (r != sd.target || d == sd.dep) {
				sum.RequestedTaskCount += d.desired
				sum.RunningTaskCount += d.running
			}
		}
		sum.PendingTaskCount = sum.RequestedTaskCount - sum.RunningTaskCount
		if shifted {
			p, t := 0.0, 0.0
			switch r {
			case sd.target:
				p, t = prod, test
			case serving:
				p, t = 100-prod, 100-test
			}
			sum.RequestedProductionTrafficWeight, sum.RequestedTestTrafficWeight = aws.Float64(p), aws.Float64(t)
		}
		out = append(out, sum)
	}
	return out
}

func (s *Sim) serviceDeploymentOut(sv *service, sd *svcDeployment) types.ServiceDeployment {
	sums := s.revisionSummaries(sv, sd)
	out := types.ServiceDeployment{
		ServiceDeploymentArn:    aws.String(sd.arn),
		ServiceArn:              aws.String(sv.arn),
		ClusterArn:              aws.String(sv.cluster.arn),
		CreatedAt:               aws.Time(sd.createdAt),
		StartedAt:               aws.Time(sd.createdAt),
		UpdatedAt:               aws.Time(sd.updatedAt),
		Status:                  sd.status,
		LifecycleStage:          sd.stage,
		DeploymentConfiguration: deepcopy.Of(&sd.config),
		TargetServiceRevision:   &sums[0],
		SourceServiceRevisions:  []types.ServiceRevisionSummary{},
		DeploymentCircuitBreaker: &types.ServiceDeploymentCircuitBreaker{
			Status: sd.cbStatus, FailureCount: sd.failureCount, Threshold: circuitBreakerThreshold(sd.dep.desired),
		},
		Alarms: &types.ServiceDeploymentAlarms{Status: sd.alarmStatus},
	}
	for i := range sd.sources {
		out.SourceServiceRevisions = append(out.SourceServiceRevisions, sums[1+i])
	}
	if sd.reason != "" {
		out.StatusReason = aws.String(sd.reason)
	}
	if !sd.finishedAt.IsZero() {
		out.FinishedAt = aws.Time(sd.finishedAt)
	}
	if !sd.stoppedAt.IsZero() {
		out.StoppedAt = aws.Time(sd.stoppedAt)
	}
	if sd.rollbackTo != nil {
		out.Rollback = &types.Rollback{Reason: aws.String(sd.rollbackReason), StartedAt: aws.Time(sd.rollbackAt), ServiceRevisionArn: aws.String(sd.rollbackTo.arn)}
	}
	if a := sd.config.Alarms; a != nil && a.Enable {
		out.Alarms.AlarmNames = append([]string{}, a.AlarmNames...)
		if sd.alarmStatus == types.ServiceDeploymentRollbackMonitorsStatusTriggered {
			out.Alarms.TriggeredAlarmNames = append([]string{}, a.AlarmNames...)
		}
	}
	return out
}

// circuitBreakerThreshold is ECS's documented threshold: 0.5 x the desired
// count, at least 3 and at most 200 (ServiceDeploymentCircuitBreaker.threshold).
func circuitBreakerThreshold(desired int32) int32 {
	return int32(min(200, max(3, math.Ceil(0.5*float64(desired)))))
}

func (s *Sim) serviceDeploymentBrief(sv *service, sd *svcDeployment) types.ServiceDeploymentBrief {
	b := types.ServiceDeploymentBrief{
		ServiceDeploymentArn:     aws.String(sd.arn),
		ServiceArn:               aws.String(sv.arn),
		ClusterArn:               aws.String(sv.cluster.arn),
		CreatedAt:                aws.Time(sd.createdAt),
		StartedAt:                aws.Time(sd.createdAt),
		Status:                   sd.status,
		TargetServiceRevisionArn: aws.String(sd.target.arn),
	}
	if sd.reason != "" {
		b.StatusReason = aws.String(sd.reason)
	}
	if !sd.finishedAt.IsZero() {
		b.FinishedAt = aws.Time(sd.finishedAt)
	}
	return b
}

// currentRevisions is DescribeServices' currentServiceRevisions: each
// revision that has tasks (deployments[] entries), in deployments[] order.
func currentRevisions(sv *service) []types.ServiceCurrentRevisionSummary {
	var out []types.ServiceCurrentRevisionSummary
	index := map[*svcRevision]int{}
	for _, d := range sv.deployments {
		if d.rev == nil {
			continue
		}
		i, ok := index[d.rev]
		if !ok {
			i = len(out)
			index[d.rev] = i
			out = append(out, types.ServiceCurrentRevisionSummary{Arn: aws.String(d.rev.arn)})
		}
		out[i].RequestedTaskCount += d.desired
		out[i].RunningTaskCount += d.running
		out[i].PendingTaskCount += d.desired - d.running
	}
	return out
}

func (sv *service) currentServiceDeployment() *svcDeployment {
	if len(sv.svcDeployments) == 0 {
		return nil
	}
	return sv.svcDeployments[len(sv.svcDeployments)-1]
}

// parseServiceChildARN splits arn:aws:ecs:REGION:ACCOUNT:KIND/CLUSTER/SERVICE/ID.
func (s *Sim) parseServiceChildARN(arn, kind string) (clusterName, serviceName, id string, ok bool) {
	prefix := fmt.Sprintf("arn:aws:ecs:%s:%s:%s/", s.region, s.account, kind)
	if !strings.HasPrefix(arn, prefix) {
		return "", "", "", false
	}
	parts := strings.Split(arn[len(prefix):], "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// looksLikeARN is the shape check before the lookup: a string that is not an
// ECS ARN at all is a bad parameter, a well-formed one that names nothing is
// a MISSING failure.
func looksLikeARN(arn, kind string) bool {
	return strings.HasPrefix(arn, "arn:") && strings.Contains(arn, ":"+kind+"/")
}

const maxDescribeARNs = 20 // DescribeServiceDeployments, DescribeServiceRevisions

func (s *Sim) describeServiceDeployments(in *ecs.DescribeServiceDeploymentsInput) (*ecs.DescribeServiceDeploymentsOutput, error) {
	if len(in.ServiceDeploymentArns) == 0 {
		return nil, errf(codeInvalidParameter, "serviceDeploymentArns cannot be empty.") // UNVERIFIED wording
	}
	if len(in.ServiceDeploymentArns) > maxDescribeARNs {
		return nil, errf(codeInvalidParameter, "serviceDeploymentArns can have at most %d items.", maxDescribeARNs) // UNVERIFIED wording
	}
	out := &ecs.DescribeServiceDeploymentsOutput{ServiceDeployments: []types.ServiceDeployment{}, Failures: []types.Failure{}}
	for _, arn := range in.ServiceDeploymentArns {
		if !looksLikeARN(arn, "service-deployment") {
			return nil, errf(codeInvalidParameter, "Invalid service deployment ARN: %s", arn) // UNVERIFIED wording
		}
		sv, sd := s.findServiceDeployment(arn)
		if sd == nil {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")})
			continue
		}
		out.ServiceDeployments = append(out.ServiceDeployments, s.serviceDeploymentOut(sv, sd))
	}
	return out, nil
}

func (s *Sim) findServiceDeployment(arn string) (*service, *svcDeployment) {
	cl, name, id, ok := s.parseServiceChildARN(arn, "service-deployment")
	if !ok || s.clusters[cl] == nil {
		return nil, nil
	}
	sv := s.clusters[cl].services[name]
	if sv == nil {
		return nil, nil
	}
	for _, sd := range sv.svcDeployments {
		if sd.id == id {
			return sv, sd
		}
	}
	return nil, nil
}

func (s *Sim) describeServiceRevisions(in *ecs.DescribeServiceRevisionsInput) (*ecs.DescribeServiceRevisionsOutput, error) {
	if len(in.ServiceRevisionArns) == 0 {
		return nil, errf(codeInvalidParameter, "serviceRevisionArns cannot be empty.") // UNVERIFIED wording
	}
	if len(in.ServiceRevisionArns) > maxDescribeARNs {
		return nil, errf(codeInvalidParameter, "serviceRevisionArns can have at most %d items.", maxDescribeARNs) // UNVERIFIED wording
	}
	out := &ecs.DescribeServiceRevisionsOutput{ServiceRevisions: []types.ServiceRevision{}, Failures: []types.Failure{}}
	for _, arn := range in.ServiceRevisionArns {
		if !looksLikeARN(arn, "service-revision") {
			return nil, errf(codeInvalidParameter, "Invalid service revision ARN: %s", arn) // UNVERIFIED wording
		}
		sv, r := s.findServiceRevision(arn)
		if r == nil {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")})
			continue
		}
		out.ServiceRevisions = append(out.ServiceRevisions, s.serviceRevisionOut(sv, r))
	}
	return out, nil
}

func (s *Sim) findServiceRevision(arn string) (*service, *svcRevision) {
	cl, name, id, ok := s.parseServiceChildARN(arn, "service-revision")
	if !ok || s.clusters[cl] == nil {
		return nil, nil
	}
	sv := s.clusters[cl].services[name]
	if sv == nil {
		return nil, nil
	}
	for _, r := range sv.revisions {
		if r.id == id {
			return sv, r
		}
	}
	return nil, nil
}

func (s *Sim) serviceRevisionOut(sv *service, r *svcRevision) types.ServiceRevision {
	out := types.ServiceRevision{
		ServiceRevisionArn:   aws.String(r.arn),
		ServiceArn:           aws.String(sv.arn),
		ClusterArn:           aws.String(sv.cluster.arn),
		TaskDefinition:       aws.String(r.taskDef),
		CreatedAt:            aws.Time(r.createdAt),
		LaunchType:           r.launchType,
		NetworkConfiguration: deepcopy.Of(r.network),
		LoadBalancers:        []types.LoadBalancer{},
		ServiceRegistries:    []types.ServiceRegistry{},
		ContainerImages:      []types.ContainerImage{},
	}
	if r.platformVersion != nil {
		out.PlatformVersion = aws.String(*r.platformVersion)
	}
	if _, td, err := s.lookupTaskDef(r.taskDef); err == nil {
		for _, c := range td.td.ContainerDefinitions {
			out.ContainerImages = append(out.ContainerImages, types.ContainerImage{ContainerName: aws.String(aws.ToString(c.Name)), Image: aws.String(aws.ToString(c.Image))})
		}
	}
	return out
}

func (s *Sim) listServiceDeployments(in *ecs.ListServiceDeploymentsInput) (*ecs.ListServiceDeploymentsOutput, error) {
	c, err := s.lookupCluster(in.Cluster)
	if err != nil {
		return nil, err
	}
	if aws.ToString(in.Service) == "" {
		return nil, errf(codeInvalidParameter, "Service cannot be empty.") // UNVERIFIED wording
	}
	sv := lookupService(c, aws.ToString(in.Service))
	if sv == nil {
		return nil, errServiceNotFound()
	}
	n, err := pageSize(in.MaxResults, 20) // ECS: "up to 20 results" by default
	if err != nil {
		return nil, err
	}
	for _, st := range in.Status {
		if !slices.Contains(types.ServiceDeploymentStatus("").Values(), st) {
			return nil, errf(codeInvalidParameter, "Invalid status %s.", st) // UNVERIFIED wording
		}
	}
	after, err := decodeToken(in.NextToken, "sd")
	if err != nil {
		return nil, err
	}
	// Newest first: createdAt, then creation order (the slice's).
	order := make([]*svcDeployment, len(sv.svcDeployments))
	for i, sd := range sv.svcDeployments {
		order[len(order)-1-i] = sd
	}
	slices.SortStableFunc(order, func(a, b *svcDeployment) int { return b.createdAt.Compare(a.createdAt) })
	i := 0
	if after != "" {
		i = slices.IndexFunc(order, func(sd *svcDeployment) bool { return sd.id == after })
		if i < 0 {
			return nil, errf(codeInvalidParameter, "Invalid token %s", *in.NextToken) // UNVERIFIED wording
		}
		i++
	}
	out := &ecs.ListServiceDeploymentsOutput{ServiceDeployments: []types.ServiceDeploymentBrief{}}
	var last *svcDeployment
	for ; i < len(order); i++ {
		sd := order[i]
		if len(in.Status) > 0 && !slices.Contains(in.Status, sd.status) {
			continue
		}
		if ca := in.CreatedAt; ca != nil {
			if ca.After != nil && !sd.createdAt.After(*ca.After) || ca.Before != nil && !sd.createdAt.Before(*ca.Before) {
				continue
			}
		}
		if len(out.ServiceDeployments) == n {
			out.NextToken = encodeToken("sd", last.id)
			break
		}
		out.ServiceDeployments = append(out.ServiceDeployments, s.serviceDeploymentBrief(sv, sd))
		last = sd
	}
	return out, nil
}
