package controller

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// strategies are ECS's native deployment strategies (ECS deployment
// controller), each with short bakes so that a test steps through them.
var strategies = []struct {
	name string
	cfg  func(*types.DeploymentConfiguration)
}{
	{"rolling", func(c *types.DeploymentConfiguration) { c.Strategy = types.DeploymentStrategyRolling }},
	{"blue_green", func(c *types.DeploymentConfiguration) {
		c.Strategy, c.BakeTimeInMinutes = types.DeploymentStrategyBlueGreen, aws.Int32(5)
	}},
	{"linear", func(c *types.DeploymentConfiguration) {
		c.Strategy, c.BakeTimeInMinutes = types.DeploymentStrategyLinear, aws.Int32(2)
		c.LinearConfiguration = &types.LinearConfiguration{StepPercent: aws.Float64(50), StepBakeTimeInMinutes: aws.Int32(1)}
	}},
	{"canary", func(c *types.DeploymentConfiguration) {
		c.Strategy, c.BakeTimeInMinutes = types.DeploymentStrategyCanary, aws.Int32(2)
		c.CanaryConfiguration = &types.CanaryConfiguration{CanaryPercent: aws.Float64(10), CanaryBakeTimeInMinutes: aws.Int32(1)}
	}},
}

// createServiceWith creates a service with the circuit breaker and its
// rollback on, and the deployment configuration mod makes.
func (w *world) createServiceWith(t *testing.T, name, taskDef string, mod func(*types.DeploymentConfiguration)) {
	t.Helper()
	cfg := &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}}
	mod(cfg)
	_, err := w.ecs.CreateService(context.Background(), &ecs.CreateServiceInput{
		Cluster: aws.String(testCluster), ServiceName: aws.String(name), TaskDefinition: aws.String(taskDef),
		DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration:    &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}},
		DeploymentController:    &types.DeploymentController{Type: types.DeploymentControllerTypeEcs},
		DeploymentConfiguration: cfg,
	})
	if err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
}

func (w *world) failedMark(t *testing.T, arn string) string {
	t.Helper()
	out, err := w.ecs.ListTagsForResource(context.Background(), &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := tagOf(out.Tags, "ecs-sidecar/failed")
	return v
}

// settle advances the clock in minute steps, letting the sim's rollouts
// move, until every service's primary deployment has an outcome.
func settle(t *testing.T, w *world, clock *awssim.FakeClock) {
	t.Helper()
	for range 60 {
		if simInFlight(w) == 0 {
			return
		}
		clock.Advance(time.Minute)
		w.sim.Step()
	}
	t.Fatal("rollouts still in flight after an hour")
}

// TestRestartAfterRollbackDoesNotReapply: a process moves a service to its
// twin and is killed; ECS's circuit breaker rolls the rollout back and the
// rollback completes (DescribeServices no longer lists the failed
// deployment). A restarted process, which remembers nothing, must read the
// rollback from ECS's service deployments, mark the twin, and leave the
// service on its source: for every deployment strategy.
func TestRestartAfterRollbackDoesNotReapply(t *testing.T) {
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
			w := newWorld(t, awssim.Options{Clock: clock, RolloutDelay: time.Minute})
			src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
			w.createServiceWith(t, "web", src, st.cfg)
			settle(t, w, clock) // the service's own first deployment
			w.sim.SetRollout(time.Minute, awssim.FailImages(regexp.MustCompile(`datacollector`)))

			first := w.controller(t, func(o *Options) { o.Now = clock.Now })
			sweep(t, first)
			reconcile(t, first, "web")
			moves := w.writes("UpdateService")
			if len(moves) != 1 {
				t.Fatalf("%d UpdateService calls, want 1", len(moves))
			}
			twin := aws.ToString(moves[0].Input.(*ecs.UpdateServiceInput).TaskDefinition)
			// first is killed here. The rollout fails and is rolled back.
			settle(t, w, clock)
			if got := w.taskDefOf(t, "web"); got != src {
				t.Fatalf("after the rollback the service runs %s, want its source %s", got, src)
			}

			restarted := w.controller(t, func(o *Options) { o.Now = clock.Now })
			for range 3 {
				sweep(t, restarted)
				reconcile(t, restarted, "web")
				clock.Advance(time.Minute)
				w.sim.Step()
			}
			if n := len(w.writes("UpdateService")); n != 1 {
				t.Errorf("the restarted process moved the service to the rolled-back twin again (%d UpdateService calls)", n)
			}
			if got := w.failedMark(t, twin); got != FailedRolledBack {
				t.Errorf("twin's failed mark %q, want %q", got, FailedRolledBack)
			}
			if w.count("ListServiceDeployments") == 0 {
				t.Error("the rollback was not read from ECS's service deployments")
			}
		})
	}
}

// TestRestartDuringRolloutFollowsIt: a process killed while a twin rolls
// out (under any strategy, during its bake) is followed by one that does
// not start the rollout again and sees it complete; a rollout that fails
// under the new process is marked and left on the source.
func TestRestartDuringRolloutFollowsIt(t *testing.T) {
	for _, st := range strategies {
		for _, fail := range []bool{false, true} {
			name := st.name + "/completes"
			if fail {
				name = st.name + "/rolls_back"
			}
			t.Run(name, func(t *testing.T) {
				clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
				w := newWorld(t, awssim.Options{Clock: clock, RolloutDelay: 2 * time.Minute})
				src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
				w.createServiceWith(t, "web", src, st.cfg)
				settle(t, w, clock)

				first := w.controller(t, func(o *Options) { o.Now = clock.Now })
				sweep(t, first)
				reconcile(t, first, "web")
				twin := aws.ToString(w.writes("UpdateService")[0].Input.(*ecs.UpdateServiceInput).TaskDefinition)
				clock.Advance(time.Minute) // mid scale-up; first is killed
				w.sim.Step()
				if fail {
					w.sim.SetRollout(2*time.Minute, awssim.FailImages(regexp.MustCompile(`datacollector`)))
				}

				restarted := w.controller(t, func(o *Options) { o.Now = clock.Now })
				for range 20 {
					sweep(t, restarted)
					reconcile(t, restarted, "web")
					if simInFlight(w) == 0 {
						break
					}
					clock.Advance(time.Minute)
					w.sim.Step()
				}
				settle(t, w, clock)
				sweep(t, restarted)
				reconcile(t, restarted, "web")
				if n := len(w.writes("UpdateService")); n != 1 {
					t.Errorf("%d UpdateService calls, want only the first process's", n)
				}
				got, mark := w.taskDefOf(t, "web"), w.failedMark(t, twin)
				if fail {
					if got != src || mark == "" {
						t.Errorf("service on %s, twin mark %q: want the source and a failed mark", got, mark)
					}
				} else if got != twin || mark != "" {
					t.Errorf("service on %s, twin mark %q: want the twin and no mark", got, mark)
				}
			})
		}
	}
}

// TestInterruptedRollbackIsStillARollback: the soak's #1011 (seed 1001). A
// service moves to its twin; ECS's circuit breaker fails the rollout and
// starts rolling back; before the rollback ends a pipeline deploys a new
// revision and then the source again. ECS stops the twin's service
// deployment (STOPPED, not ROLLBACK_SUCCESSFUL) but keeps its rollback and
// the circuit breaker's TRIGGERED on it (ServiceDeployment.rollback,
// deploymentCircuitBreaker.status, ECS API reference). The service is back
// on the source with nothing in DescribeServices saying that the twin
// failed; whether the process kept running or restarted, it must read the
// failure from the service deployment, mark the twin and not move the
// service there again.
func TestInterruptedRollbackIsStillARollback(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "same_process"
		if restart {
			name = "restarted"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clock := awssim.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
			w := newWorld(t, awssim.Options{Clock: clock, RolloutDelay: time.Minute})
			src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
			w.createServiceWith(t, "web", src, strategies[0].cfg)
			settle(t, w, clock)
			w.sim.SetRollout(time.Minute, awssim.FailImages(regexp.MustCompile(`datacollector`)))

			c := w.controller(t, func(o *Options) { o.Now = clock.Now })
			sweep(t, c)
			reconcile(t, c, "web")
			moves := w.writes("UpdateService")
			if len(moves) != 1 {
				t.Fatalf("%d UpdateService calls, want 1", len(moves))
			}
			twin := aws.ToString(moves[0].Input.(*ecs.UpdateServiceInput).TaskDefinition)

			// Step until ECS is rolling the twin back.
			arn := w.serviceArn(t, "web")
			var twinDeployment string
			for range 10 {
				clock.Advance(time.Minute)
				w.sim.Step()
				out, err := w.ecs.ListServiceDeployments(ctx, &ecs.ListServiceDeploymentsInput{
					Cluster: aws.String(testCluster), Service: aws.String(arn),
					Status: []types.ServiceDeploymentStatus{types.ServiceDeploymentStatusRollbackInProgress},
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(out.ServiceDeployments) == 1 {
					twinDeployment = aws.ToString(out.ServiceDeployments[0].ServiceDeploymentArn)
					break
				}
			}
			if twinDeployment == "" {
				t.Fatal("ECS never started rolling the twin back")
			}
			// The pipeline deploys a new revision, then the source again.
			next := w.register(t, "web", "nginx:1.28", nil)
			for _, td := range []string{next, src} {
				if _, err := w.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{
					Cluster: aws.String(testCluster), Service: aws.String(arn), TaskDefinition: aws.String(td),
				}); err != nil {
					t.Fatal(err)
				}
			}
			settle(t, w, clock)
			out, err := w.ecs.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{twinDeployment}})
			if err != nil || len(out.ServiceDeployments) != 1 {
				t.Fatalf("describe the twin's service deployment: %v", err)
			}
			if got := out.ServiceDeployments[0].Status; got != types.ServiceDeploymentStatusStopped {
				t.Fatalf("the twin's interrupted rollback ended %s; the test needs STOPPED", got)
			}
			if got := w.taskDefOf(t, "web"); got != src {
				t.Fatalf("the service runs %s, want its source %s", got, src)
			}

			if restart {
				c = w.controller(t, func(o *Options) { o.Now = clock.Now })
			}
			for range 3 {
				sweep(t, c)
				reconcile(t, c, "web")
				clock.Advance(time.Minute)
				w.sim.Step()
			}
			for _, m := range w.writes("UpdateService")[1:] {
				if got := aws.ToString(m.Input.(*ecs.UpdateServiceInput).TaskDefinition); got == twin {
					t.Errorf("the service was moved to the twin ECS had rolled back again")
				}
			}
			if got := w.failedMark(t, twin); got != FailedRolledBack {
				t.Errorf("twin's failed mark %q, want %q", got, FailedRolledBack)
			}
		})
	}
}
