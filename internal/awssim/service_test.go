package awssim

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestServicesOverSDK(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	_, err := e.ecs.ListServices(ctx, &ecs.ListServicesInput{})
	wantAPIErr(t, err, "ClusterNotFoundException", "Cluster not found.")
	must[*ecs.CreateClusterOutput](t)(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}))
	must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, fargateTD("web")))
	var want []string
	for i := range 25 {
		name := fmt.Sprintf("svc-%02d", 24-i)
		must[*ecs.CreateServiceOutput](t)(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String(name),
			TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeFargate, NetworkConfiguration: demoNetwork}))
		want = append([]string{"arn:aws:ecs:us-east-1:123456789012:service/c/" + name}, want...)
	}
	_, err = e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("svc-00"),
		TaskDefinition: aws.String("web"), LaunchType: types.LaunchTypeFargate, NetworkConfiguration: demoNetwork})
	wantAPIErr(t, err, "InvalidParameterException", "Creation of service was not idempotent.")

	var got []string
	var sizes []int
	p := ecs.NewListServicesPaginator(e.ecs, &ecs.ListServicesInput{Cluster: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/c")})
	for p.HasMorePages() {
		out := must[*ecs.ListServicesOutput](t)(p.NextPage(ctx))
		got = append(got, out.ServiceArns...)
		sizes = append(sizes, len(out.ServiceArns))
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("ListServices (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(sizes, []int{10, 10, 5}); diff != "" {
		t.Errorf("page sizes with the default maxResults (-got +want):\n%s", diff)
	}

	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = fmt.Sprintf("svc-%02d", i)
	}
	_, err = e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: eleven})
	wantAPIErr(t, err, "InvalidParameterException", "at most 10")
	d := must[*ecs.DescribeServicesOutput](t)(e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"),
		Services: []string{"svc-03", "ghost", want[7]}, Include: []types.ServiceField{types.ServiceFieldTags}}))
	var names []string
	for _, s := range d.Services {
		names = append(names, aws.ToString(s.ServiceName)+" "+aws.ToString(s.TaskDefinition)+" "+aws.ToString(s.Status))
	}
	td := "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1"
	if diff := cmp.Diff(names, []string{"svc-03 " + td + " ACTIVE", "svc-07 " + td + " ACTIVE"}); diff != "" {
		t.Errorf("DescribeServices (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(d.Failures, []types.Failure{{Arn: aws.String("arn:aws:ecs:us-east-1:123456789012:service/c/ghost"), Reason: aws.String("MISSING")}}, cmpopts.IgnoreUnexported(types.Failure{})); diff != "" {
		t.Errorf("failures (-got +want):\n%s", diff)
	}
	s := d.Services[0]
	if s.DeploymentController == nil || s.DeploymentController.Type != types.DeploymentControllerTypeEcs {
		t.Errorf("deploymentController: got %+v, want ECS", s.DeploymentController)
	}
	if cb := s.DeploymentConfiguration.DeploymentCircuitBreaker; cb == nil || cb.Enable || cb.Rollback {
		t.Errorf("default circuit breaker: got %+v, want present and off", cb)
	}
	if s.Tags == nil {
		t.Errorf("include=TAGS: got nil tags, want an empty list")
	}

	_, err = e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("ghost"), TaskDefinition: aws.String("web")})
	wantAPIErr(t, err, "ServiceNotFoundException", "Service not found.")
	_, err = e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("nope"), Service: aws.String("svc-00")})
	wantAPIErr(t, err, "ClusterNotFoundException", "Cluster not found.")
	_, err = e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("svc-00")})
	wantAPIErr(t, err, "InvalidParameterException", "scaled above 0")
	must[*ecs.DeleteServiceOutput](t)(e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("c"), Service: aws.String("svc-00"), Force: aws.Bool(true)}))
	_, err = e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("svc-00"), DesiredCount: aws.Int32(3)})
	wantAPIErr(t, err, "ServiceNotActiveException", "Service was not ACTIVE.")
	l := must[*ecs.ListServicesOutput](t)(e.ecs.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("c"), MaxResults: aws.Int32(100)}))
	if got := len(l.ServiceArns); got != 24 {
		t.Errorf("services listed after a delete: got %d, want 24", got)
	}
}

// rolloutEnv has a cluster c, family web (web:1 good, web:2 bad image,
// web:3 good) and a Fargate service s on web:1 whose first deployment has
// completed.
func rolloutEnv(t *testing.T, cb *types.DeploymentCircuitBreaker, controller types.DeploymentControllerType) *env {
	e := newEnv(t, Options{RolloutDelay: time.Minute, RolloutRule: FailImages(regexp.MustCompile(`:broken$`))})
	ctx := ctxT(t)
	must[*ecs.CreateClusterOutput](t)(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}))
	for _, img := range []string{"nginx:1", "nginx:broken", "nginx:3"} {
		must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, fargateTD("web", container("app", img, true))))
	}
	must[*ecs.CreateServiceOutput](t)(e.ecs.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String("c"), ServiceName: aws.String("s"), TaskDefinition: aws.String("web:1"), DesiredCount: aws.Int32(2),
		LaunchType: types.LaunchTypeFargate, NetworkConfiguration: demoNetwork,
		DeploymentConfiguration: &types.DeploymentConfiguration{DeploymentCircuitBreaker: cb},
		DeploymentController:    &types.DeploymentController{Type: controller},
	}))
	e.clock.Advance(time.Minute)
	return e
}

// deploymentView is what the reconciler reads of a deployment.
type deploymentView struct {
	Status, TaskDef, State, Reason string
}

func describe(t *testing.T, e *env) (string, []deploymentView) {
	t.Helper()
	d := must[*ecs.DescribeServicesOutput](t)(e.ecs.DescribeServices(ctxT(t), &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: []string{"s"}}))
	s := d.Services[0]
	var out []deploymentView
	for _, dep := range s.Deployments {
		td := aws.ToString(dep.TaskDefinition)
		out = append(out, deploymentView{aws.ToString(dep.Status), td[len(td)-5:], string(dep.RolloutState), aws.ToString(dep.RolloutStateReason)})
	}
	td := aws.ToString(s.TaskDefinition)
	return td[len(td)-5:], out
}

func TestRolloutCompletesAfterDelay(t *testing.T) {
	e := rolloutEnv(t, nil, types.DeploymentControllerTypeEcs)
	ctx := ctxT(t)
	td, deps := describe(t, e)
	if diff := cmp.Diff(deps, []deploymentView{{"PRIMARY", "web:1", "COMPLETED", "ECS deployment ecs-svc/1000000000000000001 completed."}}); diff != "" || td != "web:1" {
		t.Fatalf("after create: td %s, deployments (-got +want):\n%s", td, diff)
	}
	must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"),
		TaskDefinition: aws.String("arn:aws:ecs:us-east-1:123456789012:task-definition/web:3")}))
	e.clock.Advance(59 * time.Second)
	td, deps = describe(t, e)
	want := []deploymentView{
		{"PRIMARY", "web:3", "IN_PROGRESS", "ECS deployment ecs-svc/1000000000000000002 in progress."},
		{"ACTIVE", "web:1", "COMPLETED", "ECS deployment ecs-svc/1000000000000000001 completed."},
	}
	if diff := cmp.Diff(deps, want); diff != "" || td != "web:3" {
		t.Fatalf("during rollout: td %s, deployments (-got +want):\n%s", td, diff)
	}
	e.clock.Advance(time.Second)
	_, deps = describe(t, e)
	if diff := cmp.Diff(deps, []deploymentView{{"PRIMARY", "web:3", "COMPLETED", "ECS deployment ecs-svc/1000000000000000002 completed."}}); diff != "" {
		t.Fatalf("after rollout (-got +want):\n%s", diff)
	}
	// The same task definition again: no new deployment; forceNewDeployment: one.
	must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String("web:3")}))
	if _, deps = describe(t, e); len(deps) != 1 {
		t.Errorf("same task definition started a deployment: %v", deps)
	}
	must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), ForceNewDeployment: true}))
	if _, deps = describe(t, e); len(deps) != 2 || deps[0].State != "IN_PROGRESS" {
		t.Errorf("forceNewDeployment: got %v", deps)
	}
}

func TestRolloutFailsAndRollsBack(t *testing.T) {
	e := rolloutEnv(t, &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}, types.DeploymentControllerTypeEcs)
	must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctxT(t), &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String("web:2")}))
	e.clock.Advance(time.Minute)
	td, deps := describe(t, e)
	want := []deploymentView{
		{"PRIMARY", "web:1", "IN_PROGRESS", "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1000000000000000001."},
		{"ACTIVE", "web:2", "FAILED", "ECS deployment circuit breaker: tasks failed to start."},
	}
	if diff := cmp.Diff(deps, want); diff != "" || td != "web:1" {
		t.Fatalf("after failure: td %s, deployments (-got +want):\n%s", td, diff)
	}
	e.clock.Advance(time.Minute)
	td, deps = describe(t, e)
	if diff := cmp.Diff(deps, []deploymentView{{"PRIMARY", "web:1", "COMPLETED", "ECS deployment ecs-svc/1000000000000000003 completed."}}); diff != "" || td != "web:1" {
		t.Fatalf("after rollback: td %s, deployments (-got +want):\n%s", td, diff)
	}
	// The journal tells the story in order, with the outcome at its due time.
	var story []string
	for _, en := range e.sim.Journal() {
		if d := en.Deployment; d != nil {
			story = append(story, fmt.Sprintf("%s %s %s", en.Time.Sub(t0), d.TaskDefinition[len(d.TaskDefinition)-5:], d.State))
		}
	}
	wantStory := []string{"0s web:1 IN_PROGRESS", "1m0s web:1 COMPLETED", "1m0s web:2 IN_PROGRESS", "2m0s web:2 FAILED", "2m0s web:1 IN_PROGRESS", "3m0s web:1 COMPLETED"}
	if diff := cmp.Diff(story, wantStory); diff != "" {
		t.Errorf("deployment history (-got +want):\n%s", diff)
	}
}

func TestRolloutFailsWithoutRollback(t *testing.T) {
	e := rolloutEnv(t, &types.DeploymentCircuitBreaker{Enable: true}, types.DeploymentControllerTypeEcs)
	must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctxT(t), &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String("web:2")}))
	e.clock.Advance(time.Hour)
	td, deps := describe(t, e)
	want := []deploymentView{
		{"PRIMARY", "web:2", "FAILED", "ECS deployment circuit breaker: tasks failed to start."},
		{"ACTIVE", "web:1", "COMPLETED", "ECS deployment ecs-svc/1000000000000000001 completed."},
	}
	if diff := cmp.Diff(deps, want); diff != "" || td != "web:2" {
		t.Fatalf("td %s, deployments (-got +want):\n%s", td, diff)
	}
}

func TestRolloutStaysInProgressWithoutCircuitBreaker(t *testing.T) {
	e := rolloutEnv(t, nil, types.DeploymentControllerTypeEcs)
	must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctxT(t), &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String("web:2")}))
	e.clock.Advance(24 * time.Hour)
	td, deps := describe(t, e)
	if len(deps) != 2 || deps[0].State != "IN_PROGRESS" || deps[0].TaskDef != "web:2" || td != "web:2" {
		t.Fatalf("td %s, deployments: %+v, want web:2 IN_PROGRESS forever", td, deps)
	}
	impaired := 0
	for _, en := range e.sim.Journal() {
		if en.Deployment != nil && en.Deployment.Impaired {
			impaired++
		}
	}
	if impaired != 1 {
		t.Errorf("impaired reports: got %d, want 1", impaired)
	}
	// A new deployment supersedes the stuck one.
	must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctxT(t), &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String("web:3")}))
	e.clock.Advance(time.Minute)
	if _, deps = describe(t, e); len(deps) != 1 || deps[0].State != "COMPLETED" || deps[0].TaskDef != "web:3" {
		t.Errorf("after a good deployment: %+v", deps)
	}
}

func TestNonECSControllersRefuseTaskDefinition(t *testing.T) {
	for _, tc := range []struct {
		controller types.DeploymentControllerType
		msg        string
	}{
		{types.DeploymentControllerTypeCodeDeploy, "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment."},
		{types.DeploymentControllerTypeExternal, "EXTERNAL deployment controller"},
	} {
		t.Run(string(tc.controller), func(t *testing.T) {
			e := rolloutEnv(t, nil, tc.controller)
			_, err := e.ecs.UpdateService(ctxT(t), &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), TaskDefinition: aws.String("web:3")})
			wantAPIErr(t, err, "InvalidParameterException", tc.msg)
			// Scaling is allowed.
			out := must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctxT(t), &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"), DesiredCount: aws.Int32(5)}))
			if got := out.Service.DesiredCount; got != 5 {
				t.Errorf("desiredCount: got %d", got)
			}
			if got := aws.ToString(out.Service.TaskDefinition); got != "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1" {
				t.Errorf("taskDefinition: got %s", got)
			}
			if got := out.Service.DeploymentController.Type; got != tc.controller {
				t.Errorf("controller: got %s", got)
			}
		})
	}
}
