package awssim

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

// Service deployments and revisions, through the SDK over HTTP.

const tdARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/"

// strategyEnv has a cluster c, family web (web:1 good, web:2 bad image,
// web:3 good), and a Fargate service s (desired 2) on web:1 with cfg,
// settled: its first deployment is over. Rollouts take a minute to scale up.
func strategyEnv(t *testing.T, cfg *types.DeploymentConfiguration) *env {
	t.Helper()
	e := newEnv(t, Options{RolloutDelay: time.Minute, RolloutRule: FailImages(regexp.MustCompile(`:broken$`))})
	ctx := ctxT(t)
	must[*ecs.CreateClusterOutput](t)(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}))
	for _, img := range []string{"nginx:1", "nginx:broken", "nginx:3"} {
		must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, fargateTD("web", container("app", img, true))))
	}
	must[*ecs.CreateServiceOutput](t)(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String("c"), ServiceName: aws.String("s"), TaskDefinition: aws.String("web:1"), DesiredCount: aws.Int32(2),
		LaunchType: types.LaunchTypeFargate, NetworkConfiguration: demoNetwork, DeploymentConfiguration: cfg,
	}))
	e.clock.Advance(time.Hour)
	e.sim.Step()
	return e
}

func (e *env) update(t *testing.T, td string) {
	t.Helper()
	must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctxT(t), &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String(td)}))
}

// listAll pages through ListServiceDeployments of c/s.
func (e *env) listAll(t *testing.T, in ecs.ListServiceDeploymentsInput) (all []types.ServiceDeploymentBrief, pages []int) {
	t.Helper()
	in.Cluster, in.Service = aws.String("c"), aws.String("s")
	for {
		out := must[*ecs.ListServiceDeploymentsOutput](t)(e.ecs.ListServiceDeployments(ctxT(t), &in))
		all = append(all, out.ServiceDeployments...)
		pages = append(pages, len(out.ServiceDeployments))
		if out.NextToken == nil {
			return all, pages
		}
		in.NextToken = out.NextToken
	}
}

func (e *env) describeSD(t *testing.T, arn string) types.ServiceDeployment {
	t.Helper()
	out := must[*ecs.DescribeServiceDeploymentsOutput](t)(e.ecs.DescribeServiceDeployments(ctxT(t), &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn}}))
	if len(out.ServiceDeployments) != 1 || len(out.Failures) != 0 {
		t.Fatalf("DescribeServiceDeployments %s: %d deployments, failures %+v", arn, len(out.ServiceDeployments), out.Failures)
	}
	return out.ServiceDeployments[0]
}

// latestSD describes the newest service deployment of c/s.
func (e *env) latestSD(t *testing.T) types.ServiceDeployment {
	t.Helper()
	l := must[*ecs.ListServiceDeploymentsOutput](t)(e.ecs.ListServiceDeployments(ctxT(t), &ecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("s"), MaxResults: aws.Int32(1)}))
	if len(l.ServiceDeployments) != 1 {
		t.Fatalf("no service deployment")
	}
	return e.describeSD(t, aws.ToString(l.ServiceDeployments[0].ServiceDeploymentArn))
}

// revisionTD is the task definition (web:N) of a service revision.
func (e *env) revisionTD(t *testing.T, arn string) string {
	t.Helper()
	out := must[*ecs.DescribeServiceRevisionsOutput](t)(e.ecs.DescribeServiceRevisions(ctxT(t), &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: []string{arn}}))
	if len(out.ServiceRevisions) != 1 {
		t.Fatalf("DescribeServiceRevisions %s: failures %+v", arn, out.Failures)
	}
	return strings.TrimPrefix(aws.ToString(out.ServiceRevisions[0].TaskDefinition), tdARN)
}

// sdView is what a controller reads of a service deployment: status,
// stage, the target's and the sources' task definitions with running
// tasks, the target's production traffic weight (-1: none), the rollback
// target's task definition.
type sdView struct {
	Status, Stage string
	Target        string
	Sources       []string
	Weight        float64
	RollbackTo    string
}

func (e *env) view(t *testing.T, sd types.ServiceDeployment) sdView {
	t.Helper()
	rev := func(s types.ServiceRevisionSummary) string {
		return fmt.Sprintf("%s running %d", e.revisionTD(t, aws.ToString(s.Arn)), s.RunningTaskCount)
	}
	v := sdView{Status: string(sd.Status), Stage: string(sd.LifecycleStage), Target: rev(*sd.TargetServiceRevision), Sources: []string{}, Weight: -1}
	for _, s := range sd.SourceServiceRevisions {
		v.Sources = append(v.Sources, rev(s))
	}
	if w := sd.TargetServiceRevision.RequestedProductionTrafficWeight; w != nil {
		v.Weight = *w
	}
	if sd.Rollback != nil {
		v.RollbackTo = e.revisionTD(t, aws.ToString(sd.Rollback.ServiceRevisionArn))
	}
	return v
}

func TestServiceDeploymentRollingUpdate(t *testing.T) {
	e := strategyEnv(t, nil)
	ctx := ctxT(t)
	all, _ := e.listAll(t, ecs.ListServiceDeploymentsInput{})
	if len(all) != 1 || all[0].Status != types.ServiceDeploymentStatusSuccessful {
		t.Fatalf("after CreateService: %+v", all)
	}
	first := e.describeSD(t, aws.ToString(all[0].ServiceDeploymentArn))
	if diff := cmp.Diff(e.view(t, first), sdView{Status: "SUCCESSFUL", Target: "web:1 running 2", Sources: []string{}, Weight: -1}); diff != "" {
		t.Errorf("CreateService's deployment (-got +want):\n%s", diff)
	}
	started := e.clock.Now()
	e.update(t, "web:3")
	sd := e.latestSD(t)
	if diff := cmp.Diff(e.view(t, sd), sdView{Status: "IN_PROGRESS", Target: "web:3 running 0", Sources: []string{"web:1 running 2"}, Weight: -1}); diff != "" {
		t.Errorf("rolling (-got +want):\n%s", diff)
	}
	if !aws.ToTime(sd.CreatedAt).Equal(started) || sd.FinishedAt != nil || sd.StoppedAt != nil || sd.Rollback != nil {
		t.Errorf("ongoing: createdAt %v finishedAt %v stoppedAt %v rollback %+v", sd.CreatedAt, sd.FinishedAt, sd.StoppedAt, sd.Rollback)
	}
	if sd.DeploymentCircuitBreaker.Status != types.ServiceDeploymentRollbackMonitorsStatusDisabled || sd.Alarms.Status != types.ServiceDeploymentRollbackMonitorsStatusDisabled {
		t.Errorf("monitors: circuit breaker %+v, alarms %+v", sd.DeploymentCircuitBreaker, sd.Alarms)
	}
	arn := aws.ToString(sd.ServiceDeploymentArn)
	if !regexp.MustCompile(`^arn:aws:ecs:us-east-1:123456789012:service-deployment/c/s/[0-9]+$`).MatchString(arn) ||
		!regexp.MustCompile(`^arn:aws:ecs:us-east-1:123456789012:service-revision/c/s/[0-9]+$`).MatchString(aws.ToString(sd.TargetServiceRevision.Arn)) {
		t.Errorf("ARNs: %s, %s", arn, aws.ToString(sd.TargetServiceRevision.Arn))
	}
	// DescribeServices names the same deployment and both revisions.
	d := must[*ecs.DescribeServicesOutput](t)(e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"s"}}))
	svc := d.Services[0]
	if aws.ToString(svc.CurrentServiceDeployment) != arn || len(svc.CurrentServiceRevisions) != 2 ||
		aws.ToString(svc.CurrentServiceRevisions[0].Arn) != aws.ToString(sd.TargetServiceRevision.Arn) {
		t.Errorf("DescribeServices: currentServiceDeployment %s, currentServiceRevisions %+v", aws.ToString(svc.CurrentServiceDeployment), svc.CurrentServiceRevisions)
	}

	e.clock.Advance(time.Minute)
	sd = e.describeSD(t, arn)
	if diff := cmp.Diff(e.view(t, sd), sdView{Status: "SUCCESSFUL", Target: "web:3 running 2", Sources: []string{"web:1 running 0"}, Weight: -1}); diff != "" {
		t.Errorf("completed (-got +want):\n%s", diff)
	}
	if got := aws.ToTime(sd.FinishedAt); !got.Equal(started.Add(time.Minute)) {
		t.Errorf("finishedAt %v, want %v", got, started.Add(time.Minute))
	}
	// A revision is the task definition and the service's settings.
	r := must[*ecs.DescribeServiceRevisionsOutput](t)(e.ecs.DescribeServiceRevisions(ctx, &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: []string{aws.ToString(sd.TargetServiceRevision.Arn)}}))
	rev := r.ServiceRevisions[0]
	if aws.ToString(rev.TaskDefinition) != tdARN+"web:3" || rev.LaunchType != types.LaunchTypeFargate || aws.ToString(rev.PlatformVersion) != "LATEST" ||
		len(rev.ContainerImages) != 1 || aws.ToString(rev.ContainerImages[0].Image) != "nginx:3" || aws.ToString(rev.ServiceArn) != aws.ToString(svc.ServiceArn) {
		t.Errorf("service revision: %+v", rev)
	}
	// The same task definition again starts nothing; forceNewDeployment
	// deploys a new revision of it.
	e.update(t, "web:3")
	if all, _ = e.listAll(t, ecs.ListServiceDeploymentsInput{}); len(all) != 2 {
		t.Errorf("same task definition: %d service deployments, want 2", len(all))
	}
	must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), ForceNewDeployment: true}))
	forced := e.latestSD(t)
	if aws.ToString(forced.TargetServiceRevision.Arn) == aws.ToString(sd.TargetServiceRevision.Arn) || e.view(t, forced).Target != "web:3 running 0" {
		t.Errorf("forceNewDeployment: %+v", e.view(t, forced))
	}
}

// TestServiceDeploymentRollbackSeenLater is issue 16's case: a process
// that starts after the circuit breaker rolled a deployment back learns it
// from ECS, and both views agree.
func TestServiceDeploymentRollbackSeenLater(t *testing.T) {
	e := strategyEnv(t, &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}})
	started := e.clock.Now()
	e.update(t, "web:2")
	sd := e.latestSD(t)
	arn := aws.ToString(sd.ServiceDeploymentArn)
	if sd.DeploymentCircuitBreaker.Status != types.ServiceDeploymentRollbackMonitorsStatusMonitoring || sd.DeploymentCircuitBreaker.Threshold != 3 {
		t.Errorf("circuit breaker while rolling out: %+v", sd.DeploymentCircuitBreaker)
	}
	e.clock.Advance(time.Minute)
	sd = e.describeSD(t, arn)
	if diff := cmp.Diff(e.view(t, sd), sdView{Status: "ROLLBACK_IN_PROGRESS", Target: "web:2 running 0", Sources: []string{"web:1 running 0"}, Weight: -1, RollbackTo: "web:1"}); diff != "" {
		t.Errorf("rolling back (-got +want):\n%s", diff)
	}
	td, deps := describe(t, e)
	wantDeps := []deploymentView{
		{"PRIMARY", "web:1", "IN_PROGRESS", "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1000000000000000001."},
		{"ACTIVE", "web:2", "FAILED", "ECS deployment circuit breaker: tasks failed to start."},
	}
	if diff := cmp.Diff(deps, wantDeps); diff != "" || td != "web:1" {
		t.Errorf("deployments[] rolling back: td %s (-got +want):\n%s", td, diff)
	}
	e.clock.Advance(time.Minute)

	// A new process: a fresh client, nothing remembered.
	fresh := newEnvFor(e.sim, e.clock, e.url)
	rolled, _ := fresh.listAll(t, ecs.ListServiceDeploymentsInput{Status: []types.ServiceDeploymentStatus{types.ServiceDeploymentStatusRollbackSuccessful}})
	if len(rolled) != 1 || aws.ToString(rolled[0].ServiceDeploymentArn) != arn {
		t.Fatalf("rolled back deployments: %+v", rolled)
	}
	sd = fresh.describeSD(t, arn)
	if diff := cmp.Diff(fresh.view(t, sd), sdView{Status: "ROLLBACK_SUCCESSFUL", Target: "web:2 running 0", Sources: []string{"web:1 running 2"}, Weight: -1, RollbackTo: "web:1"}); diff != "" {
		t.Errorf("rolled back (-got +want):\n%s", diff)
	}
	rb := sd.Rollback
	if aws.ToString(rb.Reason) != "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1000000000000000001." ||
		!aws.ToTime(rb.StartedAt).Equal(started.Add(time.Minute)) || aws.ToString(rb.ServiceRevisionArn) != aws.ToString(sd.SourceServiceRevisions[0].Arn) {
		t.Errorf("rollback: %+v", rb)
	}
	if aws.ToString(sd.StatusReason) != reasonTasksFailed || !aws.ToTime(sd.FinishedAt).Equal(started.Add(2*time.Minute)) || sd.StoppedAt != nil {
		t.Errorf("statusReason %q finishedAt %v stoppedAt %v", aws.ToString(sd.StatusReason), sd.FinishedAt, sd.StoppedAt)
	}
	if cb := sd.DeploymentCircuitBreaker; cb.Status != types.ServiceDeploymentRollbackMonitorsStatusTriggered || cb.FailureCount != 2 {
		t.Errorf("circuit breaker: %+v", cb)
	}
	// DescribeServices agrees: back on web:1, on the revision it ran before
	// (ECS makes no revision for a rollback).
	td, deps = describe(t, fresh)
	if diff := cmp.Diff(deps, []deploymentView{{"PRIMARY", "web:1", "COMPLETED", "ECS deployment ecs-svc/1000000000000000003 completed."}}); diff != "" || td != "web:1" {
		t.Errorf("deployments[] rolled back: td %s (-got +want):\n%s", td, diff)
	}
	svc := must[*ecs.DescribeServicesOutput](t)(fresh.ecs.DescribeServices(ctxT(t), &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"s"}})).Services[0]
	if aws.ToString(svc.CurrentServiceDeployment) != arn || len(svc.CurrentServiceRevisions) != 1 ||
		aws.ToString(svc.CurrentServiceRevisions[0].Arn) != aws.ToString(rb.ServiceRevisionArn) || svc.CurrentServiceRevisions[0].RunningTaskCount != 2 {
		t.Errorf("DescribeServices: %s %+v", aws.ToString(svc.CurrentServiceDeployment), svc.CurrentServiceRevisions)
	}
	// The simulator's state shows the same history.
	ss := fresh.sim.State().Clusters[0].Services[0].ServiceDeployments
	if len(ss) != 2 || ss[1].Arn != arn || ss[1].Status != "ROLLBACK_SUCCESSFUL" || ss[1].TaskDefinition != tdARN+"web:2" || ss[1].RollbackTo != tdARN+"web:1" {
		t.Errorf("State: %+v", ss)
	}
	// The next deployment starts from that revision.
	fresh.update(t, "web:3")
	if v := fresh.view(t, fresh.latestSD(t)); !cmp.Equal(v.Sources, []string{"web:1 running 2"}) {
		t.Errorf("after the rollback, sources %v", v.Sources)
	}
}

func TestServiceDeploymentFailureWithoutRollback(t *testing.T) {
	t.Run("circuit breaker without rollback", func(t *testing.T) {
		e := strategyEnv(t, &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true}})
		started := e.clock.Now()
		e.update(t, "web:2")
		e.clock.Advance(time.Hour)
		sd := e.latestSD(t)
		if diff := cmp.Diff(e.view(t, sd), sdView{Status: "STOPPED", Target: "web:2 running 0", Sources: []string{"web:1 running 2"}, Weight: -1}); diff != "" {
			t.Errorf("(-got +want):\n%s", diff)
		}
		if !aws.ToTime(sd.StoppedAt).Equal(started.Add(time.Minute)) || sd.FinishedAt != nil || aws.ToString(sd.StatusReason) != reasonTasksFailed {
			t.Errorf("stoppedAt %v finishedAt %v reason %q", sd.StoppedAt, sd.FinishedAt, aws.ToString(sd.StatusReason))
		}
		if td, deps := describe(t, e); td != "web:2" || deps[0].State != "FAILED" {
			t.Errorf("deployments[]: td %s %+v", td, deps)
		}
	})
	t.Run("no circuit breaker", func(t *testing.T) {
		e := strategyEnv(t, nil)
		e.update(t, "web:2")
		e.clock.Advance(24 * time.Hour)
		if v := e.view(t, e.latestSD(t)); v.Status != "IN_PROGRESS" {
			t.Errorf("a deployment whose tasks keep failing: %+v", v)
		}
	})
	t.Run("superseded", func(t *testing.T) {
		e := strategyEnv(t, nil)
		e.update(t, "web:2")
		first := e.latestSD(t)
		e.clock.Advance(30 * time.Second)
		e.update(t, "web:3")
		sd := e.describeSD(t, aws.ToString(first.ServiceDeploymentArn))
		if sd.Status != types.ServiceDeploymentStatusStopped || !aws.ToTime(sd.StoppedAt).Equal(e.clock.Now()) || sd.StatusReason == nil {
			t.Errorf("superseded deployment: %s stoppedAt %v reason %q", sd.Status, sd.StoppedAt, aws.ToString(sd.StatusReason))
		}
		// The newer one starts from both revisions with tasks.
		if v := e.view(t, e.latestSD(t)); !cmp.Equal(v.Sources, []string{"web:2 running 0", "web:1 running 2"}) {
			t.Errorf("sources: %v", v.Sources)
		}
		e.clock.Advance(time.Minute)
		if v := e.view(t, e.latestSD(t)); v.Status != "SUCCESSFUL" {
			t.Errorf("newer deployment: %+v", v)
		}
	})
}

// timelineStep is a point of a strategy's timeline: after the clock moved
// to at (from the update), the service deployment and deployments[] read so.
type timelineStep struct {
	at   time.Duration
	sd   sdView
	td   string // DescribeServices' taskDefinition
	deps []string
}

func (e *env) depsView(t *testing.T) (string, []string) {
	td, deps := describe(t, e)
	var out []string
	for _, d := range deps {
		out = append(out, d.Status+" "+d.TaskDef+" "+d.State)
	}
	return td, out
}

func runTimeline(t *testing.T, e *env, td string, steps []timelineStep) {
	t.Helper()
	start := e.clock.Now()
	e.update(t, td)
	for _, st := range steps {
		e.clock.Set(start.Add(st.at))
		got := e.view(t, e.latestSD(t))
		if diff := cmp.Diff(got, st.sd); diff != "" {
			t.Errorf("at +%v: service deployment (-got +want):\n%s", st.at, diff)
		}
		gotTD, gotDeps := e.depsView(t)
		if diff := cmp.Diff(gotDeps, st.deps); diff != "" || gotTD != st.td {
			t.Errorf("at +%v: service on %s (want %s), deployments[] (-got +want):\n%s", st.at, gotTD, st.td, diff)
		}
	}
}

var (
	cbRollback = &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}
	alarmsOnly = &types.DeploymentAlarms{Enable: true, Rollback: true, AlarmNames: []string{"web-5xx"}}
	bothDeps3  = []string{"PRIMARY web:3 IN_PROGRESS", "ACTIVE web:1 COMPLETED"}
	bothDeps2  = []string{"PRIMARY web:2 IN_PROGRESS", "ACTIVE web:1 COMPLETED"}
)

func strategyConfig(strategy types.DeploymentStrategy) *types.DeploymentConfiguration {
	cfg := &types.DeploymentConfiguration{Strategy: strategy, DeploymentCircuitBreaker: cbRollback, BakeTimeInMinutes: aws.Int32(10)}
	switch strategy {
	case types.DeploymentStrategyLinear:
		cfg.LinearConfiguration = &types.LinearConfiguration{StepPercent: aws.Float64(40), StepBakeTimeInMinutes: aws.Int32(2)}
	case types.DeploymentStrategyCanary:
		cfg.CanaryConfiguration = &types.CanaryConfiguration{CanaryPercent: aws.Float64(12.5), CanaryBakeTimeInMinutes: aws.Int32(3)}
	}
	return cfg
}

// TestDeploymentStrategiesComplete: each strategy's stages, traffic and
// task counts over time, in both views.
func TestDeploymentStrategiesComplete(t *testing.T) {
	m := time.Minute
	src := func(n int) []string { return []string{fmt.Sprintf("web:1 running %d", n)} }
	done := []string{"PRIMARY web:3 COMPLETED"}
	for _, tc := range []struct {
		strategy types.DeploymentStrategy
		steps    []timelineStep
	}{
		{types.DeploymentStrategyRolling, []timelineStep{
			{0, sdView{"IN_PROGRESS", "", "web:3 running 0", src(2), -1, ""}, "web:3", bothDeps3},
			{m, sdView{"SUCCESSFUL", "", "web:3 running 2", src(0), -1, ""}, "web:3", done},
		}},
		{types.DeploymentStrategyBlueGreen, []timelineStep{
			{0, sdView{"IN_PROGRESS", "SCALE_UP", "web:3 running 0", src(2), 0, ""}, "web:3", bothDeps3},
			{m, sdView{"IN_PROGRESS", "BAKE_TIME", "web:3 running 2", src(2), 100, ""}, "web:3", bothDeps3},
			{11*m - time.Second, sdView{"IN_PROGRESS", "BAKE_TIME", "web:3 running 2", src(2), 100, ""}, "web:3", bothDeps3},
			{11 * m, sdView{"SUCCESSFUL", "CLEAN_UP", "web:3 running 2", src(0), 100, ""}, "web:3", done},
		}},
		{types.DeploymentStrategyLinear, []timelineStep{ // 40, 80, 100 every 2 minutes, then 10 of bake
			{0, sdView{"IN_PROGRESS", "SCALE_UP", "web:3 running 0", src(2), 0, ""}, "web:3", bothDeps3},
			{m, sdView{"IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", "web:3 running 2", src(2), 40, ""}, "web:3", bothDeps3},
			{3 * m, sdView{"IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", "web:3 running 2", src(2), 80, ""}, "web:3", bothDeps3},
			{5 * m, sdView{"IN_PROGRESS", "BAKE_TIME", "web:3 running 2", src(2), 100, ""}, "web:3", bothDeps3},
			{15 * m, sdView{"SUCCESSFUL", "CLEAN_UP", "web:3 running 2", src(0), 100, ""}, "web:3", done},
		}},
		{types.DeploymentStrategyCanary, []timelineStep{ // 12.5 for 3 minutes, then 100, then 10 of bake
			{0, sdView{"IN_PROGRESS", "SCALE_UP", "web:3 running 0", src(2), 0, ""}, "web:3", bothDeps3},
			{m, sdView{"IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", "web:3 running 2", src(2), 12.5, ""}, "web:3", bothDeps3},
			{4 * m, sdView{"IN_PROGRESS", "BAKE_TIME", "web:3 running 2", src(2), 100, ""}, "web:3", bothDeps3},
			{14 * m, sdView{"SUCCESSFUL", "CLEAN_UP", "web:3 running 2", src(0), 100, ""}, "web:3", done},
		}},
	} {
		t.Run(string(tc.strategy), func(t *testing.T) {
			e := strategyEnv(t, strategyConfig(tc.strategy))
			runTimeline(t, e, "web:3", tc.steps)
			// The source's traffic is the rest.
			if tc.strategy == types.DeploymentStrategyRolling {
				return
			}
			sd := e.latestSD(t)
			if w := sd.SourceServiceRevisions[0].RequestedProductionTrafficWeight; w == nil || *w != 0 {
				t.Errorf("source weight after the shift: %v", w)
			}
			if sd.DeploymentConfiguration.Strategy != tc.strategy {
				t.Errorf("deploymentConfiguration.strategy %s", sd.DeploymentConfiguration.Strategy)
			}
		})
	}
}

// TestDeploymentStrategiesRollBack: a bad revision rolls back under every
// strategy, noticed by the circuit breaker at the end of scale-up, or by
// the alarms once the revision took production traffic.
func TestDeploymentStrategiesRollBack(t *testing.T) {
	m := time.Minute
	src := func(n int) []string { return []string{fmt.Sprintf("web:1 running %d", n)} }
	rolledBack := []string{"PRIMARY web:1 COMPLETED"}
	rollingBack := []string{"PRIMARY web:1 IN_PROGRESS", "ACTIVE web:2 FAILED"}
	for _, tc := range []struct {
		name     string
		strategy types.DeploymentStrategy
		alarms   bool
		steps    []timelineStep
	}{
		{"ROLLING circuit breaker", types.DeploymentStrategyRolling, false, []timelineStep{
			{0, sdView{"IN_PROGRESS", "", "web:2 running 0", src(2), -1, ""}, "web:2", bothDeps2},
			{m, sdView{"ROLLBACK_IN_PROGRESS", "", "web:2 running 0", src(0), -1, "web:1"}, "web:1", rollingBack},
			{2 * m, sdView{"ROLLBACK_SUCCESSFUL", "", "web:2 running 0", src(2), -1, "web:1"}, "web:1", rolledBack},
		}},
		{"ROLLING alarms", types.DeploymentStrategyRolling, true, []timelineStep{
			{m, sdView{"ROLLBACK_IN_PROGRESS", "", "web:2 running 0", src(0), -1, "web:1"}, "web:1", rollingBack},
			{2 * m, sdView{"ROLLBACK_SUCCESSFUL", "", "web:2 running 0", src(2), -1, "web:1"}, "web:1", rolledBack},
		}},
		// The old revision still runs: traffic goes back at once.
		{"BLUE_GREEN circuit breaker", types.DeploymentStrategyBlueGreen, false, []timelineStep{
			{m - time.Second, sdView{"IN_PROGRESS", "SCALE_UP", "web:2 running 0", src(2), 0, ""}, "web:2", bothDeps2},
			{m, sdView{"ROLLBACK_SUCCESSFUL", "SCALE_UP", "web:2 running 0", src(2), 0, "web:1"}, "web:1", rolledBack},
		}},
		{"BLUE_GREEN alarms during bake", types.DeploymentStrategyBlueGreen, true, []timelineStep{
			{m, sdView{"IN_PROGRESS", "BAKE_TIME", "web:2 running 2", src(2), 100, ""}, "web:2", bothDeps2},
			{11 * m, sdView{"ROLLBACK_SUCCESSFUL", "BAKE_TIME", "web:2 running 0", src(2), 0, "web:1"}, "web:1", rolledBack},
		}},
		{"LINEAR circuit breaker", types.DeploymentStrategyLinear, false, []timelineStep{
			{m, sdView{"ROLLBACK_SUCCESSFUL", "SCALE_UP", "web:2 running 0", src(2), 0, "web:1"}, "web:1", rolledBack},
		}},
		{"LINEAR alarms at the first step", types.DeploymentStrategyLinear, true, []timelineStep{
			{m, sdView{"IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", "web:2 running 2", src(2), 40, ""}, "web:2", bothDeps2},
			{3 * m, sdView{"ROLLBACK_SUCCESSFUL", "PRODUCTION_TRAFFIC_SHIFT", "web:2 running 0", src(2), 0, "web:1"}, "web:1", rolledBack},
		}},
		{"CANARY circuit breaker", types.DeploymentStrategyCanary, false, []timelineStep{
			{m, sdView{"ROLLBACK_SUCCESSFUL", "SCALE_UP", "web:2 running 0", src(2), 0, "web:1"}, "web:1", rolledBack},
		}},
		{"CANARY alarms after the canary", types.DeploymentStrategyCanary, true, []timelineStep{
			{m, sdView{"IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", "web:2 running 2", src(2), 12.5, ""}, "web:2", bothDeps2},
			{4 * m, sdView{"ROLLBACK_SUCCESSFUL", "PRODUCTION_TRAFFIC_SHIFT", "web:2 running 0", src(2), 0, "web:1"}, "web:1", rolledBack},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strategyConfig(tc.strategy)
			if tc.alarms {
				cfg.DeploymentCircuitBreaker, cfg.Alarms = &types.DeploymentCircuitBreaker{}, alarmsOnly
			}
			e := strategyEnv(t, cfg)
			runTimeline(t, e, "web:2", tc.steps)
			sd := e.latestSD(t)
			wantReason := reasonTasksFailed
			if tc.alarms {
				wantReason = "ECS deployment alarms: web-5xx in ALARM."
				if sd.Alarms.Status != types.ServiceDeploymentRollbackMonitorsStatusTriggered || !cmp.Equal(sd.Alarms.TriggeredAlarmNames, []string{"web-5xx"}) {
					t.Errorf("alarms: %+v", sd.Alarms)
				}
			} else if sd.DeploymentCircuitBreaker.Status != types.ServiceDeploymentRollbackMonitorsStatusTriggered {
				t.Errorf("circuit breaker: %+v", sd.DeploymentCircuitBreaker)
			}
			if got := aws.ToString(sd.StatusReason); got != wantReason {
				t.Errorf("statusReason %q, want %q", got, wantReason)
			}
			if sd.Rollback == nil || !aws.ToTime(sd.Rollback.StartedAt).Before(aws.ToTime(sd.FinishedAt).Add(time.Nanosecond)) {
				t.Errorf("rollback %+v, finishedAt %v", sd.Rollback, sd.FinishedAt)
			}
		})
	}
}

// TestBlueGreenRollbackUntilBakeEnds: a revision found bad during bake time
// (the fault injected after the traffic shift) rolls back; once the bake
// is over, the same fault changes nothing.
func TestBlueGreenRollbackUntilBakeEnds(t *testing.T) {
	cfg := strategyConfig(types.DeploymentStrategyBlueGreen)
	cfg.Alarms = alarmsOnly
	bad := FailImages(regexp.MustCompile(`:3$`))
	t.Run("during bake", func(t *testing.T) {
		e := strategyEnv(t, cfg)
		e.update(t, "web:3")
		e.clock.Advance(5 * time.Minute)
		if v := e.view(t, e.latestSD(t)); v.Stage != "BAKE_TIME" || v.Weight != 100 {
			t.Fatalf("before the fault: %+v", v)
		}
		e.sim.SetRollout(time.Minute, bad)
		e.clock.Advance(6 * time.Minute)
		if v := e.view(t, e.latestSD(t)); v.Status != "ROLLBACK_SUCCESSFUL" || v.RollbackTo != "web:1" {
			t.Errorf("fault during bake: %+v", v)
		}
		if td, _ := e.depsView(t); td != "web:1" {
			t.Errorf("service on %s after the rollback", td)
		}
	})
	t.Run("after bake", func(t *testing.T) {
		e := strategyEnv(t, cfg)
		e.update(t, "web:3")
		e.clock.Advance(11 * time.Minute)
		e.sim.Step()
		e.sim.SetRollout(time.Minute, bad)
		e.clock.Advance(time.Hour)
		if v := e.view(t, e.latestSD(t)); v.Status != "SUCCESSFUL" {
			t.Errorf("fault after bake: %+v", v)
		}
		if td, deps := e.depsView(t); td != "web:3" || len(deps) != 1 {
			t.Errorf("service on %s, %v", td, deps)
		}
	})
}

func TestListServiceDeploymentsPagesAndFilters(t *testing.T) {
	e := strategyEnv(t, nil)
	ctx := ctxT(t)
	var created []time.Time
	// Without the SDK's retries: the Go transport can lose a served
	// response ("use of closed network connection" while reading the body,
	// aws/aws-sdk-go-v2#2737), and a retried UpdateService is a second
	// deployment, as it would be in ECS. The simulator's count says
	// whether each update was served once.
	once := ecs.NewFromConfig(awsConfig(), func(o *ecs.Options) { o.BaseEndpoint = aws.String(e.url); o.RetryMaxAttempts = 1 })
	for i := range 24 {
		e.clock.Advance(time.Second)
		created = append(created, e.clock.Now())
		_, err := once.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), ForceNewDeployment: true})
		if n := e.sim.CallCount("ecs", "UpdateService", "ok"); n != int64(i+1) {
			t.Fatalf("update %d: %d updates served (%v)", i, n, err)
		}
		if err != nil {
			t.Logf("update %d was served, its response lost: %v", i, err)
		}
	}
	all, pages := e.listAll(t, ecs.ListServiceDeploymentsInput{})
	if !cmp.Equal(pages, []int{20, 5}) {
		t.Errorf("default pages: %v, want [20 5]", pages)
	}
	for i := 1; i < len(all); i++ {
		if !aws.ToTime(all[i-1].CreatedAt).After(aws.ToTime(all[i].CreatedAt)) {
			t.Fatalf("not newest first at %d: %v then %v", i, all[i-1].CreatedAt, all[i].CreatedAt)
		}
	}
	// Each update stopped the one before; the last is ongoing.
	var statuses []string
	for _, b := range all[:3] {
		statuses = append(statuses, string(b.Status))
	}
	if !cmp.Equal(statuses, []string{"IN_PROGRESS", "STOPPED", "STOPPED"}) || all[24].Status != types.ServiceDeploymentStatusSuccessful {
		t.Errorf("statuses %v ... %s", statuses, all[24].Status)
	}
	if b := all[0]; aws.ToString(b.ClusterArn) != "arn:aws:ecs:us-east-1:123456789012:cluster/c" || aws.ToString(b.ServiceArn) != "arn:aws:ecs:us-east-1:123456789012:service/c/s" ||
		b.TargetServiceRevisionArn == nil || b.StartedAt == nil || b.FinishedAt != nil {
		t.Errorf("brief: %+v", b)
	}
	_, pages = e.listAll(t, ecs.ListServiceDeploymentsInput{MaxResults: aws.Int32(7)})
	if !cmp.Equal(pages, []int{7, 7, 7, 4}) {
		t.Errorf("pages of 7: %v", pages)
	}
	some, _ := e.listAll(t, ecs.ListServiceDeploymentsInput{Status: []types.ServiceDeploymentStatus{types.ServiceDeploymentStatusSuccessful, types.ServiceDeploymentStatusInProgress}})
	if len(some) != 2 || some[0].Status != types.ServiceDeploymentStatusInProgress || some[1].Status != types.ServiceDeploymentStatusSuccessful {
		t.Errorf("status filter: %+v", some)
	}
	stopped, pages := e.listAll(t, ecs.ListServiceDeploymentsInput{Status: []types.ServiceDeploymentStatus{types.ServiceDeploymentStatusStopped}, MaxResults: aws.Int32(10)})
	if len(stopped) != 23 || !cmp.Equal(pages, []int{10, 10, 3}) {
		t.Errorf("stopped: %d in pages %v", len(stopped), pages)
	}
	// createdAt: strictly after and strictly before.
	window, _ := e.listAll(t, ecs.ListServiceDeploymentsInput{CreatedAt: &types.CreatedAt{After: aws.Time(created[4]), Before: aws.Time(created[9])}})
	var got []time.Time
	for _, b := range window {
		got = append(got, aws.ToTime(b.CreatedAt))
	}
	if want := []time.Time{created[8], created[7], created[6], created[5]}; !cmp.Equal(got, want) {
		t.Errorf("createdAt window: %v, want %v", got, want)
	}

	_, err := e.ecs.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("s"), MaxResults: aws.Int32(101)})
	wantAPIErr(t, err, "InvalidParameterException", "maxResults")
	_, err = e.ecs.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("s"), NextToken: aws.String("nope")})
	wantAPIErr(t, err, "InvalidParameterException", "token")
	_, err = e.ecs.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("nope"), Service: aws.String("s")})
	wantAPIErr(t, err, "ClusterNotFoundException", "Cluster not found.")
	_, err = e.ecs.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{Cluster: aws.String("c"), Service: aws.String("ghost")})
	wantAPIErr(t, err, "ServiceNotFoundException", "Service not found.")
	// The service's ARN names it too.
	if out := must[*ecs.ListServiceDeploymentsOutput](t)(e.ecs.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{
		Cluster: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/c"), Service: aws.String("arn:aws:ecs:us-east-1:123456789012:service/c/s"), MaxResults: aws.Int32(1)})); len(out.ServiceDeployments) != 1 {
		t.Errorf("by ARN: %+v", out)
	}
}

func TestDescribeServiceDeploymentsErrors(t *testing.T) {
	e := strategyEnv(t, nil)
	ctx := ctxT(t)
	known := aws.ToString(e.latestSD(t).ServiceDeploymentArn)
	ghost := "arn:aws:ecs:us-east-1:123456789012:service-deployment/c/s/123"
	out := must[*ecs.DescribeServiceDeploymentsOutput](t)(e.ecs.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{ghost, known}}))
	if len(out.ServiceDeployments) != 1 || aws.ToString(out.ServiceDeployments[0].ServiceDeploymentArn) != known ||
		len(out.Failures) != 1 || aws.ToString(out.Failures[0].Arn) != ghost || aws.ToString(out.Failures[0].Reason) != "MISSING" {
		t.Errorf("one known, one missing: %+v", out)
	}
	many := make([]string, 21)
	for i := range many {
		many[i] = known
	}
	_, err := e.ecs.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: many})
	wantAPIErr(t, err, "InvalidParameterException", "at most 20")
	_, err = e.ecs.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{"nope"}})
	wantAPIErr(t, err, "InvalidParameterException", "ARN")
	_, err = e.ecs.DescribeServiceRevisions(ctx, &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: many})
	wantAPIErr(t, err, "InvalidParameterException", "at most 20")
	r := must[*ecs.DescribeServiceRevisionsOutput](t)(e.ecs.DescribeServiceRevisions(ctx, &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: []string{"arn:aws:ecs:us-east-1:123456789012:service-revision/c/s/9"}}))
	if len(r.ServiceRevisions) != 0 || len(r.Failures) != 1 || aws.ToString(r.Failures[0].Reason) != "MISSING" {
		t.Errorf("missing revision: %+v", r)
	}

	// A deleted service's revisions and deployments are gone.
	must[*ecs.DeleteServiceOutput](t)(e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), Force: aws.Bool(true)}))
	out = must[*ecs.DescribeServiceDeploymentsOutput](t)(e.ecs.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{known}}))
	if len(out.ServiceDeployments) != 0 || len(out.Failures) != 1 {
		t.Errorf("after DeleteService: %+v", out)
	}
	if all, _ := e.listAll(t, ecs.ListServiceDeploymentsInput{}); len(all) != 0 {
		t.Errorf("after DeleteService: %d listed", len(all))
	}
}

func TestDeploymentStrategyValidation(t *testing.T) {
	e := strategyEnv(t, nil)
	ctx := ctxT(t)
	for _, cfg := range []*types.DeploymentConfiguration{
		{Strategy: "SIDEWAYS"},
		{Strategy: types.DeploymentStrategyLinear, LinearConfiguration: &types.LinearConfiguration{StepPercent: aws.Float64(2)}},
		{Strategy: types.DeploymentStrategyLinear, LinearConfiguration: &types.LinearConfiguration{StepPercent: aws.Float64(10.05)}},
		{Strategy: types.DeploymentStrategyCanary, CanaryConfiguration: &types.CanaryConfiguration{CanaryBakeTimeInMinutes: aws.Int32(1441)}},
		{Strategy: types.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(-1)},
	} {
		_, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), DeploymentConfiguration: cfg})
		if code, _ := apiErr(t, err); code != "InvalidParameterException" {
			t.Errorf("%+v: %s", cfg, code)
		}
	}
	// A valid change of strategy applies to the next deployment.
	must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String("web:3"),
		DeploymentConfiguration: &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyCanary}}))
	e.clock.Advance(time.Minute)
	if v := e.view(t, e.latestSD(t)); v.Stage != "PRODUCTION_TRAFFIC_SHIFT" || v.Weight != 5 {
		t.Errorf("canary with defaults: %+v", v)
	}
	e.clock.Advance(10 * time.Minute) // canary bake 10 by default; no bake time
	if v := e.view(t, e.latestSD(t)); v.Status != "SUCCESSFUL" {
		t.Errorf("canary with defaults after 10 minutes: %+v", v)
	}
}
