package controller

import (
	"context"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// forgedObserver counts forged twins.
type forgedObserver struct {
	NopObserver
	n int
}

func (o *forgedObserver) ForgedTwin() { o.n++ }

// describe returns a task definition and its tags.
func (w *world) describe(t *testing.T, arn string) (*types.TaskDefinition, []types.Tag) {
	t.Helper()
	out, err := w.ecs.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(arn), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	return out.TaskDefinition, out.Tags
}

func (w *world) deregistered(t *testing.T) []string {
	var out []string
	for _, c := range w.writes("DeregisterTaskDefinition") {
		out = append(out, aws.ToString(c.Input.(*ecs.DeregisterTaskDefinitionInput).TaskDefinition))
	}
	return out
}

// TestForgedTwinIsNeverDeployed: someone with only RegisterTaskDefinition
// registers a revision with the twin's marker tags (source and spec, as
// `reconciler render` computes them offline) but an image and a task role
// of theirs. The reconciler compares it with what the patch engine makes of
// the source, refuses it (logged, counted, audit action), registers the
// real twin and moves the service there; it deregisters nothing. A
// restarted process decides the same.
func TestForgedTwinIsNeverDeployed(t *testing.T) {
	w := newWorld(t)
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
	w.createService(t, "web", src, types.DeploymentControllerTypeEcs)

	// The forgery: the twin render would make, with another image and role.
	td, tags := w.describe(t, src)
	res, err := patch.Instrument(td, tags, patch.Profile{Name: "lacework", TokenSecretArn: tokenArn}.WithDefaults(), nil, patch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	forged := res.Input
	for i := range forged.ContainerDefinitions {
		if aws.ToString(forged.ContainerDefinitions[i].Name) == "app" {
			forged.ContainerDefinitions[i].Image = aws.String("attacker.example/miner:1")
		}
	}
	forged.TaskRoleArn = aws.String("arn:aws:iam::123456789012:role/attacker")
	out, err := w.ecs.RegisterTaskDefinition(context.Background(), forged)
	if err != nil {
		t.Fatal(err)
	}
	forgedArn := aws.ToString(out.TaskDefinition.TaskDefinitionArn)
	before := len(w.writes("RegisterTaskDefinition"))

	for round, fresh := range []bool{false, true} {
		obs := &forgedObserver{}
		var actions []Action
		c := w.controller(t, func(o *Options) {
			o.Observer = obs
			o.OnAction = func(a Action) { actions = append(actions, a) }
		})
		sweep(t, c)
		reconcile(t, c, "web")
		got := w.taskDefOf(t, "web")
		if got == forgedArn {
			t.Fatalf("round %d (restarted %v): the service was moved to the forged twin", round, fresh)
		}
		w.isTwinOf(t, got, 1)
		if d, _ := w.describe(t, got); aws.ToString(d.TaskRoleArn) != "" {
			t.Errorf("the twin the service runs has task role %s; the source has none", aws.ToString(d.TaskRoleArn))
		}
		if obs.n != 1 {
			t.Errorf("round %d: forged twins counted %d, want 1", round, obs.n)
		}
		reported := false
		for _, a := range actions {
			reported = reported || (a.Kind == ActionForgedTwin && a.Twin == forgedArn)
		}
		if !reported {
			t.Errorf("round %d: no %s action for the audit trail (actions %v)", round, ActionForgedTwin, actions)
		}
		if d := w.deregistered(t); len(d) != 0 {
			t.Errorf("round %d: deregistered %v because of a forgery", round, d)
		}
	}
	if n := len(w.writes("RegisterTaskDefinition")) - before; n != 1 {
		t.Errorf("%d twins registered, want the one real twin", n)
	}
}

// TestRetaggedOldTwinIsNoDowngrade: someone with only TagResource retags
// an old twin as the twin of the newest source. Its revision is lower than
// the real twin's, so a marker-trusting reconciler would take it as the
// canonical twin, move the service back to old code and deregister the real
// twin as a duplicate. A restarted reconciler (a fresh cache reads the new
// tags) keeps the service where it is and deregisters nothing.
func TestRetaggedOldTwinIsNoDowngrade(t *testing.T) {
	w := newWorld(t)
	v1 := w.register(t, "web", "myorg/web:1", map[string]string{"ecs-sidecar/inject": "true"})
	w.createService(t, "web", v1, types.DeploymentControllerTypeEcs)
	c := w.controller(t)
	sweep(t, c)
	reconcile(t, c, "web")
	oldTwin := w.taskDefOf(t, "web")
	w.isTwinOf(t, oldTwin, 1)

	v3 := w.register(t, "web", "myorg/web:2", nil)
	if _, err := w.ecs.UpdateService(context.Background(), &ecs.UpdateServiceInput{
		Cluster: aws.String(testCluster), Service: aws.String("web"), TaskDefinition: aws.String(v3)}); err != nil {
		t.Fatal(err)
	}
	sweep(t, c)
	reconcile(t, c, "web")
	newTwin := w.taskDefOf(t, "web")
	w.isTwinOf(t, newTwin, revisionNumber(v3))
	_, newTags := w.describe(t, newTwin)
	spec, _ := patch.TagValue(newTags, "ecs-sidecar/spec")

	// The retag: the old twin now claims to be the new source's.
	if _, err := w.ecs.TagResource(context.Background(), &ecs.TagResourceInput{ResourceArn: aws.String(oldTwin), Tags: []types.Tag{
		{Key: aws.String("ecs-sidecar/source"), Value: aws.String(strconv.Itoa(int(revisionNumber(v3))))},
		{Key: aws.String("ecs-sidecar/spec"), Value: aws.String(spec)},
	}}); err != nil {
		t.Fatal(err)
	}
	moves := len(w.writes("UpdateService"))
	obs := &forgedObserver{}
	restarted := w.controller(t, func(o *Options) { o.Observer = obs })
	sweep(t, restarted)
	reconcile(t, restarted, "web")
	if got := w.taskDefOf(t, "web"); got != newTwin {
		t.Fatalf("after the retag the service runs %s, want the real twin %s", got, newTwin)
	}
	if n := len(w.writes("UpdateService")); n != moves {
		t.Errorf("%d UpdateService calls after the retag, want none", n-moves)
	}
	if d := w.deregistered(t); len(d) != 0 {
		t.Errorf("deregistered %v after the retag", d)
	}
	if obs.n != 1 {
		t.Errorf("forged twins counted %d, want 1 (the retagged one)", obs.n)
	}
}

// registerInput registers in with the inject tag and returns its ARN.
func (w *world) registerInput(t *testing.T, in *ecs.RegisterTaskDefinitionInput) string {
	t.Helper()
	in.Tags = append(in.Tags, types.Tag{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")})
	out, err := w.ecs.RegisterTaskDefinition(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func fargateInput(family string, c types.ContainerDefinition) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []types.ContainerDefinition{c},
	}
}

// refusalObserver records refusal codes.
type refusalObserver struct {
	NopObserver
	codes []patch.Code
}

func (o *refusalObserver) Refused(r *patch.Refusal) {
	for _, x := range r.Reasons {
		o.codes = append(o.codes, x.Code)
	}
}

// TestDefaultExecutionRoleNotGivenToSourceSecrets: a source without an
// execution role but with a secret of its own (a database password) would,
// with the profile's default execution role, have that secret resolved
// through the reconciler's PassRole. It is refused (no_execution_role), no
// twin is registered, the service stays (issue 17, finding 3). The same
// source without the secret gets the default role.
func TestDefaultExecutionRoleNotGivenToSourceSecrets(t *testing.T) {
	for _, withSecret := range []bool{true, false} {
		w := newWorld(t)
		c := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("nginx:1.27"), Essential: aws.Bool(true),
			EntryPoint: []string{"/docker-entrypoint.sh"}, Command: []string{"nginx"}}
		if withSecret {
			c.Secrets = []types.Secret{{Name: aws.String("DB_PASSWORD"), ValueFrom: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf")}}
		}
		src := w.registerInput(t, fargateInput("web", c))
		w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
		obs := &refusalObserver{}
		ctl := w.controller(t, func(o *Options) {
			o.Observer = obs
			o.Profile = func(string) (patch.Profile, bool) {
				return patch.Profile{Name: "lacework", TokenSecretArn: tokenArn,
					DefaultExecutionRoleArn: "arn:aws:iam::123456789012:role/reconciler-default-exec"}.WithDefaults(), true
			}
		})
		sweep(t, ctl)
		reconcile(t, ctl, "web")
		got := w.taskDefOf(t, "web")
		if withSecret {
			if got != src || len(obs.codes) == 0 || obs.codes[0] != patch.CodeNoExecutionRole {
				t.Errorf("with its own secret: service on %s (source %s), refusals %v; want the source and no_execution_role", got, src, obs.codes)
			}
			continue
		}
		w.isTwinOf(t, got, 1)
		if d, _ := w.describe(t, got); aws.ToString(d.ExecutionRoleArn) == "" {
			t.Error("without secrets of its own the twin should get the default execution role")
		}
	}
}

// TestLabelAloneIsNotCoverage: a container labelled as the reconciler's
// sidecar, without the sidecar's content, used to make a task definition
// count as covered by hand and never be instrumented (issue 17, finding 6).
func TestLabelAloneIsNotCoverage(t *testing.T) {
	w := newWorld(t)
	c := types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("nginx:1.27"), Essential: aws.Bool(true),
		EntryPoint: []string{"/docker-entrypoint.sh"}, Command: []string{"nginx"},
		DockerLabels: map[string]string{"ecs-sidecar/source": "1", "ecs-sidecar/spec": "000000000000"}}
	in := fargateInput("web", c)
	in.ExecutionRoleArn = aws.String("arn:aws:iam::123456789012:role/ecsTaskExecutionRole")
	src := w.registerInput(t, in)
	w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
	ctl := w.controller(t)
	sweep(t, ctl)
	reconcile(t, ctl, "web")
	w.isTwinOf(t, w.taskDefOf(t, "web"), 1)
	for _, s := range coverage(ctl) {
		if s.State == StateCoveredManual {
			t.Errorf("a label alone counts as %s", s.State)
		}
	}
}
