package patch

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

const rolesSecret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:LaceworkAccessToken-AbCdEf"

// fargate is a Fargate task definition of the given containers.
func fargate(cs ...types.ContainerDefinition) *types.TaskDefinition {
	return &types.TaskDefinition{
		Family: aws.String("web"), Revision: 3,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		NetworkMode:             types.NetworkModeAwsvpc, Cpu: aws.String("512"), Memory: aws.String("1024"),
		ExecutionRoleArn:     aws.String("arn:aws:iam::123456789012:role/exec"),
		ContainerDefinitions: cs,
	}
}

func ctr(name, image string, essential bool) types.ContainerDefinition {
	return types.ContainerDefinition{Name: aws.String(name), Image: aws.String(image), Essential: aws.Bool(essential),
		EntryPoint: []string{"/bin/" + name}}
}

func firelensLog() *types.LogConfiguration {
	return &types.LogConfiguration{LogDriver: types.LogDriverAwsfirelens, Options: map[string]string{"Name": "cloudwatch"}}
}

func skippedCodes(res *Result) map[string]Code {
	m := map[string]Code{}
	for _, s := range res.Skipped {
		m[s.Container] = s.Code
	}
	return m
}

func container(t *testing.T, res *Result, name string) *types.ContainerDefinition {
	t.Helper()
	for i := range res.Input.ContainerDefinitions {
		if aws.ToString(res.Input.ContainerDefinitions[i].Name) == name {
			return &res.Input.ContainerDefinitions[i]
		}
	}
	t.Fatalf("no container %s in the twin", name)
	return nil
}

func deps(c *types.ContainerDefinition) []string {
	var out []string
	for _, d := range c.DependsOn {
		out = append(out, aws.ToString(d.ContainerName)+":"+string(d.Condition))
	}
	return out
}

// TestRoles: the containers that are not the application are left alone,
// each with its reason, and only the application is instrumented.
func TestRoles(t *testing.T) {
	// AWS's FireLens example task definitions: a log_router container
	// (aws-for-fluent-bit, firelensConfiguration) and the app logging
	// through it with the awsfirelens driver.
	router := ctr("log_router", "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable", true)
	router.FirelensConfiguration = &types.FirelensConfiguration{Type: types.FirelensConfigurationTypeFluentbit}
	// App Mesh: the proxyConfiguration container is envoy (user 1337); the
	// X-Ray daemon rides along; app containers wait for envoy HEALTHY.
	envoy := ctr("envoy", "840364872350.dkr.ecr.us-west-2.amazonaws.com/aws-appmesh-envoy:v1.29.5.0-prod", true)
	envoy.HealthCheck = &types.HealthCheck{Command: []string{"CMD-SHELL", "curl -s http://localhost:9901/server_info | grep state | grep -q LIVE"}}
	xray := ctr("xray-daemon", "public.ecr.aws/xray/aws-xray-daemon:3.3.7", true)
	// An init container: non-essential, the app waits for it to succeed.
	migrate := ctr("migrate", "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.4", false)
	dd := ctr("datadog-agent", "public.ecr.aws/datadog/agent:latest", true)
	cw := ctr("cloudwatch-agent", "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:latest", true)
	otel := ctr("aws-otel-collector", "public.ecr.aws/aws-observability/aws-otel-collector:latest", true)
	app := ctr("app", "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.4", true)
	app.LogConfiguration = firelensLog()
	app.DependsOn = []types.ContainerDependency{
		{ContainerName: aws.String("envoy"), Condition: types.ContainerConditionHealthy},
		{ContainerName: aws.String("migrate"), Condition: types.ContainerConditionSuccess},
	}
	td := fargate(app, router, envoy, xray, migrate, dd, cw, otel)
	td.ProxyConfiguration = &types.ProxyConfiguration{Type: types.ProxyConfigurationTypeAppmesh, ContainerName: aws.String("envoy")}

	for _, nonRoot := range []string{NonRootSkip, NonRootSudo} {
		t.Run(nonRoot, func(t *testing.T) {
			res, err := Instrument(td, nil, Profile{TokenSecretArn: rolesSecret, NonRoot: nonRoot}, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(res.Instrumented, []string{"app"}); diff != "" {
				t.Errorf("instrumented (-got +want):\n%s", diff)
			}
			want := map[string]Code{
				"log_router": SkipFirelensRouter, "envoy": SkipProxy, "xray-daemon": SkipAgentImage,
				"migrate": SkipInitContainer, "datadog-agent": SkipAgentImage, "cloudwatch-agent": SkipAgentImage,
				"aws-otel-collector": SkipAgentImage,
			}
			if diff := cmp.Diff(skippedCodes(res), want); diff != "" {
				t.Errorf("skipped (-got +want):\n%s", diff)
			}
			for name := range want {
				got, orig := container(t, res, name), findContainer(td, name)
				if diff := cmp.Diff(wire(got), wire(orig)); diff != "" {
					t.Errorf("%s changed in the twin:\n%s", name, diff)
				}
			}
		})
	}
}

func findContainer(td *types.TaskDefinition, name string) *types.ContainerDefinition {
	for i := range td.ContainerDefinitions {
		if aws.ToString(td.ContainerDefinitions[i].Name) == name {
			return &td.ContainerDefinitions[i]
		}
	}
	return nil
}

// TestFirelensStartOrder: the ECS agent starts the log router before each
// container that logs through it (awsfirelens) and does not name it in
// dependsOn, but only while the router depends on nothing
// (amazon-ecs-agent agent/api/task/task.go, addFirelensContainerDependency;
// AWS docs, using_firelens.html: "Amazon ECS adds a start container order
// dependency between the application containers and the FireLens container
// by default", and "If you use dependency condition parameters in container
// definitions with a FireLens configuration, ensure that each container has
// a START or HEALTHY condition requirement"). The twin states it, and the
// sidecar, which copies the app's awsfirelens log configuration, waits for
// the router too.
func TestFirelensStartOrder(t *testing.T) {
	router := ctr("log_router", "amazon/aws-for-fluent-bit:latest", true)
	router.FirelensConfiguration = &types.FirelensConfiguration{Type: types.FirelensConfigurationTypeFluentbit}
	app := ctr("app", "httpd:2.4", true)
	app.LogConfiguration = firelensLog()
	other := ctr("worker", "worker:1", true)
	other.LogConfiguration = &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{"awslogs-group": "/ecs/w"}}

	for _, mode := range []types.NetworkMode{types.NetworkModeAwsvpc, types.NetworkModeBridge} {
		t.Run(string(mode), func(t *testing.T) {
			td := fargate(app, router, other)
			td.NetworkMode = mode
			if mode == types.NetworkModeBridge {
				td.RequiresCompatibilities = []types.Compatibility{types.CompatibilityEc2}
			}
			p := Profile{TokenSecretArn: rolesSecret, LaunchTypes: []string{"FARGATE", "EC2"}}
			res, err := Instrument(td, nil, p, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(deps(container(t, res, "app")), []string{"log_router:START", "datacollector-sidecar:SUCCESS"}); diff != "" {
				t.Errorf("app dependsOn (-got +want):\n%s", diff)
			}
			// awslogs: the agent adds nothing, neither does the twin.
			if diff := cmp.Diff(deps(container(t, res, "worker")), []string{"datacollector-sidecar:SUCCESS"}); diff != "" {
				t.Errorf("worker dependsOn (-got +want):\n%s", diff)
			}
			side := container(t, res, "datacollector-sidecar")
			if side.LogConfiguration == nil || side.LogConfiguration.LogDriver != types.LogDriverAwsfirelens {
				t.Fatalf("sidecar log configuration %+v, want the app's awsfirelens one", side.LogConfiguration)
			}
			if diff := cmp.Diff(deps(side), []string{"log_router:START"}); diff != "" {
				t.Errorf("sidecar dependsOn (-got +want):\n%s", diff)
			}
			if r := container(t, res, "log_router"); len(r.DependsOn) != 0 {
				t.Errorf("the router gained dependsOn %v: ECS would drop its implicit START", deps(r))
			}
			// Source undoes it exactly.
			back, err := Source(taskDefinitionOf(res.Input), res.Input.Tags, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(normalize(t, wire(back)), normalize(t, wire(registerInput(td)))); diff != "" {
				t.Errorf("Source(twin) (-got +want):\n%s", diff)
			}
		})
	}

	t.Run("router with dependsOn", func(t *testing.T) {
		// No implicit START in the source: the twin adds none either.
		r := router
		r.DependsOn = []types.ContainerDependency{{ContainerName: aws.String("worker"), Condition: types.ContainerConditionStart}}
		res, err := Instrument(fargate(app, r, other), nil, Profile{TokenSecretArn: rolesSecret}, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(deps(container(t, res, "app")), []string{"datacollector-sidecar:SUCCESS"}); diff != "" {
			t.Errorf("app dependsOn (-got +want):\n%s", diff)
		}
		// The sidecar cannot wait for a router that waits for others
		// (a cycle through worker), so it does not log there.
		if side := container(t, res, "datacollector-sidecar"); side.LogConfiguration != nil || len(side.DependsOn) > 0 {
			t.Errorf("sidecar logs to a router it cannot wait for: %+v %v", side.LogConfiguration, deps(side))
		}
	})
	t.Run("router logs with awslogs", func(t *testing.T) {
		// AWS's FireLens examples give the router its own awslogs
		// configuration: the sidecar logs there, under its own stream
		// prefix, and need not wait for the router.
		r := router
		r.LogConfiguration = &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{
			"awslogs-group": "firelens-container", "awslogs-region": "us-west-2", "awslogs-stream-prefix": "firelens"}}
		res, err := Instrument(fargate(app, r), nil, Profile{TokenSecretArn: rolesSecret}, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		side := container(t, res, "datacollector-sidecar")
		want := &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{
			"awslogs-group": "firelens-container", "awslogs-region": "us-west-2", "awslogs-stream-prefix": "datacollector-sidecar"}}
		if diff := cmp.Diff(wire(side.LogConfiguration), wire(want)); diff != "" {
			t.Errorf("sidecar log configuration (-got +want):\n%s", diff)
		}
		if len(side.DependsOn) != 0 {
			t.Errorf("sidecar dependsOn %v, want none", deps(side))
		}
		if diff := cmp.Diff(deps(container(t, res, "app")), []string{"log_router:START", "datacollector-sidecar:SUCCESS"}); diff != "" {
			t.Errorf("app dependsOn (-got +want):\n%s", diff)
		}
	})
	t.Run("explicit dependency kept", func(t *testing.T) {
		a := app
		a.DependsOn = []types.ContainerDependency{{ContainerName: aws.String("log_router"), Condition: types.ContainerConditionHealthy}}
		rh := router
		rh.HealthCheck = &types.HealthCheck{Command: []string{"CMD-SHELL", "exit 0"}}
		res, err := Instrument(fargate(a, rh), nil, Profile{TokenSecretArn: rolesSecret}, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(deps(container(t, res, "app")), []string{"log_router:HEALTHY", "datacollector-sidecar:SUCCESS"}); diff != "" {
			t.Errorf("app dependsOn (-got +want):\n%s", diff)
		}
	})
}

// TestScope: Fargate only by default; EC2-only task definitions are left
// alone with a reason unless a profile opts EC2 in. Fargate requires awsvpc
// and task-level cpu and memory (AWS docs, AWS_Fargate.html), so a task
// definition without requiresCompatibilities or compatibilities is Fargate
// capable only with those.
func TestScope(t *testing.T) {
	app := ctr("app", "nginx:1.27", true)
	bridge := &types.TaskDefinition{Family: aws.String("legacy"), NetworkMode: types.NetworkModeBridge,
		ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/exec"), ContainerDefinitions: []types.ContainerDefinition{app}}
	bridge.ContainerDefinitions[0].Memory = aws.Int32(256)
	ec2 := fargate(app)
	ec2.RequiresCompatibilities = []types.Compatibility{types.CompatibilityEc2}
	described := fargate(app) // describe output of a task definition registered without requiresCompatibilities
	described.RequiresCompatibilities = nil
	described.Compatibilities = []types.Compatibility{types.CompatibilityEc2, types.CompatibilityFargate}
	shaped := fargate(app)
	shaped.RequiresCompatibilities = nil

	for _, tc := range []struct {
		name        string
		td          *types.TaskDefinition
		launchTypes []string
		refused     bool
	}{
		{"fargate", fargate(app), nil, false},
		{"ec2 required", ec2, nil, true},
		{"ec2 opted in", ec2, []string{"EC2"}, false},
		{"bridge, none stated", bridge, nil, true},
		{"bridge, EC2 opted in", bridge, []string{"FARGATE", "EC2"}, false},
		{"computed compatibilities", described, nil, false},
		{"fargate shaped, none stated", shaped, nil, false},
		{"fargate required, EC2 only", fargate(app), []string{"EC2"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Instrument(tc.td, nil, Profile{TokenSecretArn: rolesSecret, LaunchTypes: tc.launchTypes}, nil, Options{})
			var ref *Refusal
			refused := errors.As(err, &ref) && ref.Has(CodeLaunchType)
			if refused != tc.refused {
				t.Fatalf("refused for launch type: %v, want %v (err %v)", refused, tc.refused, err)
			}
			if err != nil && !refused {
				t.Fatal(err)
			}
		})
	}
	if _, err := Instrument(fargate(app), nil, Profile{TokenSecretArn: rolesSecret, LaunchTypes: []string{"LAMBDA"}}, nil, Options{}); err == nil || !errors.As(err, new(*Refusal)) {
		t.Errorf("an unknown launch type is accepted: %v", err)
	}
}

// TestWindowsSignals: on EC2 runtimePlatform is optional and AWS's own
// Windows IIS sample (example_task_definitions.html, windows-simple-iis)
// has none: its image, its powershell entrypoint and its C:\ paths say it.
func TestWindowsSignals(t *testing.T) {
	iis := types.ContainerDefinition{
		Name: aws.String("windows_sample_app"), Image: aws.String("mcr.microsoft.com/windows/servercore/iis"), Essential: aws.Bool(true),
		EntryPoint: []string{"powershell", "-Command"}, Command: []string{`New-Item -Path C:\inetpub\wwwroot\index.html -Type file; C:\ServiceMonitor.exe w3svc`},
	}
	base := func(mod func(*types.TaskDefinition)) *types.TaskDefinition {
		td := fargate(ctr("app", "myorg/app:1", true))
		mod(td)
		return td
	}
	for _, tc := range []struct {
		name string
		td   *types.TaskDefinition
	}{
		{"aws iis sample", &types.TaskDefinition{Family: aws.String("windows-simple-iis"), NetworkMode: types.NetworkModeAwsvpc,
			Cpu: aws.String("1024"), Memory: aws.String("1024"), ContainerDefinitions: []types.ContainerDefinition{iis}}},
		{"runtime platform", base(func(td *types.TaskDefinition) {
			td.RuntimePlatform = &types.RuntimePlatform{OperatingSystemFamily: types.OSFamilyWindowsServer2019Core}
		})},
		{"placement", base(func(td *types.TaskDefinition) {
			td.PlacementConstraints = []types.TaskDefinitionPlacementConstraint{{Type: "memberOf", Expression: aws.String("attribute:ecs.os-type == windows")}}
		})},
		{"network mode default", base(func(td *types.TaskDefinition) { td.NetworkMode = "default" })},
		{"image tag", base(func(td *types.TaskDefinition) {
			td.ContainerDefinitions[0].Image = aws.String("myorg/app:1.0-windowsservercore-ltsc2022")
		})},
		{"volume", base(func(td *types.TaskDefinition) {
			td.Volumes = []types.Volume{{Name: aws.String("data"), Host: &types.HostVolumeProperties{SourcePath: aws.String(`C:\ProgramData\app`)}}}
		})},
		{"working directory", base(func(td *types.TaskDefinition) {
			td.ContainerDefinitions[0].WorkingDirectory = aws.String(`C:\app`)
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if k := Classify(tc.td, nil, nil, Options{}).Kind; k != KindWindows {
				t.Errorf("classified %s, want windows", k)
			}
			_, err := Instrument(tc.td, nil, Profile{TokenSecretArn: rolesSecret}, nil, Options{})
			var ref *Refusal
			if !errors.As(err, &ref) || !ref.Has(CodeWindows) {
				t.Errorf("not refused as windows: %v", err)
			}
		})
	}
	// Linux look-alikes stay plain.
	for _, img := range []string{"nginx:1.27", "myorg/windows-exporter-linux-build:1", "public.ecr.aws/docker/library/python:3.12"} {
		td := fargate(ctr("app", img, true))
		if k := Classify(td, nil, nil, Options{}).Kind; k != KindPlain {
			t.Errorf("%s classified %s, want plain", img, k)
		}
	}
}

// TestDependencyCycles: ECS's agent stops a task whose containers wait for
// each other ("Task has circular dependencies"); a twin of such a task
// definition is refused whatever the cycle's length.
func TestDependencyCycles(t *testing.T) {
	dep := func(c types.ContainerDefinition, on ...string) types.ContainerDefinition {
		for _, o := range on {
			c.DependsOn = append(c.DependsOn, types.ContainerDependency{ContainerName: aws.String(o), Condition: types.ContainerConditionStart})
		}
		return c
	}
	for _, tc := range []struct {
		name  string
		td    *types.TaskDefinition
		cycle bool
	}{
		{"two", fargate(dep(ctr("a", "a:1", true), "b"), dep(ctr("b", "b:1", true), "a")), true},
		{"three", fargate(dep(ctr("a", "a:1", true), "b"), dep(ctr("b", "b:1", true), "c"), dep(ctr("c", "c:1", true), "a")), true},
		{"chain", fargate(dep(ctr("a", "a:1", true), "b"), dep(ctr("b", "b:1", true), "c"), ctr("c", "c:1", true)), false},
		{"diamond", fargate(dep(ctr("a", "a:1", true), "b", "c"), dep(ctr("b", "b:1", true), "d"), dep(ctr("c", "c:1", true), "d"), ctr("d", "d:1", true)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Instrument(tc.td, nil, Profile{TokenSecretArn: rolesSecret}, nil, Options{})
			var ref *Refusal
			got := errors.As(err, &ref) && ref.Has(CodeDependencyCycle)
			if got != tc.cycle {
				t.Fatalf("refused as a cycle: %v, want %v (err %v)", got, tc.cycle, err)
			}
			if !tc.cycle && err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSkipBeforeImage: a container the task definition alone rules out
// (non-root user, a role, a label) needs no image config: App Mesh's envoy
// and X-Ray run as user 1337 and state only a command.
func TestSkipBeforeImage(t *testing.T) {
	envoy := types.ContainerDefinition{Name: aws.String("envoy"), Image: aws.String("myorg/mesh-proxy:1"), Essential: aws.Bool(true), User: aws.String("1337")}
	xray := types.ContainerDefinition{Name: aws.String("xray"), Image: aws.String("myorg/tracing:1"), Essential: aws.Bool(true), User: aws.String("1337"), Command: []string{"-o"}}
	app := ctr("app", "myorg/app:1", true)
	res, err := Instrument(fargate(app, envoy, xray), nil, Profile{TokenSecretArn: rolesSecret}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(skippedCodes(res), map[string]Code{"envoy": SkipNonRoot, "xray": SkipNonRoot}); diff != "" {
		t.Errorf("skipped (-got +want):\n%s", diff)
	}
}

func TestMatchImage(t *testing.T) {
	for ref, want := range map[string]bool{
		"public.ecr.aws/aws-observability/aws-for-fluent-bit:stable":                                true,
		"906394416424.dkr.ecr.us-east-1.amazonaws.com/aws-for-fluent-bit:2.32.0":                    true,
		"123456789012.dkr.ecr.us-east-1.amazonaws.com/mirror/amazon/aws-xray-daemon@sha256:" + "ab": true,
		"gcr.io/datadoghq/agent:7":                  true,
		"datadog/agent:latest":                      true,
		"otel/opentelemetry-collector-contrib:0.98": true,
		"envoyproxy/envoy:v1.30-latest":             true,
		"localhost:5000/fluent/fluentd:v1":          true,
		"nginx:1.27":                                false,
		"myorg/agent-api:1":                         false,
		"myorg/datadog-dashboard:1":                 false,
	} {
		_, got := matchImage(DefaultAgentImages, ref)
		if got != want {
			t.Errorf("matchImage(%q) = %v, want %v", ref, got, want)
		}
	}
	if !slices.Contains(DefaultAgentImages, "aws-appmesh-envoy") {
		t.Error("aws-appmesh-envoy is not a default agent image")
	}
	// An empty list turns the defaults off; the profile's own list replaces them.
	if _, ok := matchImage(Profile{AgentImages: []string{}}.agentImages(), "datadog/agent:7"); ok {
		t.Error("an empty agentImages still matches the defaults")
	}
	if _, ok := matchImage(Profile{AgentImages: []string{"myorg/agent-*"}}.agentImages(), "myorg/agent-api:1"); !ok {
		t.Error("the profile's pattern does not match")
	}
}

// TestSpecIsTheRegisteredSources: a source hashes alike as its author wrote
// it (render) and as ECS describes it once registered (run): ECS answers []
// for a container's environment, mountPoints, portMappings and volumesFrom
// and a task's volumes and placementConstraints, and true for an unset
// essential. Otherwise render's twin would not carry the spec run writes,
// and a twin registered from render's output would be made again.
func TestSpecIsTheRegisteredSources(t *testing.T) {
	raw := fargate(types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("nginx:1.27"), EntryPoint: []string{"/start"}})
	described := fargate(types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("nginx:1.27"), EntryPoint: []string{"/start"},
		Essential: aws.Bool(true), Environment: []types.KeyValuePair{}, MountPoints: []types.MountPoint{},
		PortMappings: []types.PortMapping{}, VolumesFrom: []types.VolumeFrom{}})
	described.Volumes, described.PlacementConstraints = []types.Volume{}, []types.TaskDefinitionPlacementConstraint{}
	p := Profile{TokenSecretArn: rolesSecret}
	a, err := Instrument(raw, nil, p, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Instrument(described, nil, p, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Spec != b.Spec {
		t.Errorf("spec %s as written, %s as described", a.Spec, b.Spec)
	}
	// A real change still changes it.
	changed := fargate(types.ContainerDefinition{Name: aws.String("app"), Image: aws.String("nginx:1.28"), EntryPoint: []string{"/start"}})
	if c, err := Instrument(changed, nil, p, nil, Options{}); err != nil || c.Spec == a.Spec {
		t.Errorf("another image kept the spec %s (%v)", a.Spec, err)
	}
}

// TestDefaultExecutionRoleOnlyForTheToken: the profile's default execution
// role is given only to a source that references no secret or registry
// credential of its own (ECS would resolve them with it, through the
// reconciler's PassRole); otherwise no_execution_role says why and what to
// do. The task role is never added or changed.
func TestDefaultExecutionRoleOnlyForTheToken(t *testing.T) {
	const defaultRole = "arn:aws:iam::123456789012:role/reconciler-default-exec"
	const taskRole = "arn:aws:iam::123456789012:role/app-task"
	p := Profile{TokenSecretArn: rolesSecret, DefaultExecutionRoleArn: defaultRole}
	secret := func(name string) types.Secret {
		return types.Secret{Name: aws.String(name), ValueFrom: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-Xy12Ab")}
	}
	tests := []struct {
		name string
		edit func(td *types.TaskDefinition)
		want string // "" for the default role given, else what the detail names
	}{
		{"nothing of its own", func(*types.TaskDefinition) {}, ""},
		{"app secrets", func(td *types.TaskDefinition) {
			td.ContainerDefinitions[0].Secrets = []types.Secret{secret("DB_PASSWORD")}
		}, "container app: secrets DB_PASSWORD"},
		{"its own LaceworkAccessToken secret in another container", func(td *types.TaskDefinition) {
			c := ctr("worker", "example/worker:1", true)
			c.Secrets = []types.Secret{secret(EnvAccessToken)}
			td.ContainerDefinitions = append(td.ContainerDefinitions, c)
		}, "container worker: secrets LaceworkAccessToken"},
		{"secrets of a container left alone", func(td *types.TaskDefinition) {
			c := ctr("envoy", "public.ecr.aws/appmesh/aws-appmesh-envoy:v1", true)
			c.Secrets = []types.Secret{secret("MESH_KEY")}
			td.ContainerDefinitions = append(td.ContainerDefinitions, c)
		}, "container envoy: secrets MESH_KEY"},
		{"repositoryCredentials", func(td *types.TaskDefinition) {
			td.ContainerDefinitions[0].RepositoryCredentials = &types.RepositoryCredentials{CredentialsParameter: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:registry-Ab12Cd")}
		}, "container app: repositoryCredentials"},
		{"logConfiguration.secretOptions", func(td *types.TaskDefinition) {
			td.ContainerDefinitions[0].LogConfiguration = &types.LogConfiguration{LogDriver: types.LogDriverSplunk,
				Options: map[string]string{"splunk-url": "https://splunk.example.com"}, SecretOptions: []types.Secret{secret("splunk-token")}}
		}, "container app: logConfiguration.secretOptions splunk-token"},
		{"environmentFiles", func(td *types.TaskDefinition) {
			td.ContainerDefinitions[0].EnvironmentFiles = []types.EnvironmentFile{{Type: types.EnvironmentFileTypeS3, Value: aws.String("arn:aws:s3:::bucket/app.env")}}
		}, "container app: environmentFiles"},
		{"FireLens configuration file in S3", func(td *types.TaskDefinition) {
			r := ctr("log_router", "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable", true)
			r.FirelensConfiguration = &types.FirelensConfiguration{Type: types.FirelensConfigurationTypeFluentbit,
				Options: map[string]string{"config-file-type": "s3", "config-file-value": "arn:aws:s3:::bucket/fluent-bit.conf"}}
			td.ContainerDefinitions = append(td.ContainerDefinitions, r)
		}, "container log_router: firelensConfiguration config file in S3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td := fargate(ctr("app", "example/app:1", true))
			td.ExecutionRoleArn = nil
			td.TaskRoleArn = aws.String(taskRole)
			tt.edit(td)
			res, err := Instrument(td, nil, p, nil, Options{})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := aws.ToString(res.Input.ExecutionRoleArn); got != defaultRole {
					t.Errorf("executionRoleArn %q, want the default %q", got, defaultRole)
				}
				if got := aws.ToString(res.Input.TaskRoleArn); got != taskRole {
					t.Errorf("taskRoleArn %q, want the source's %q", got, taskRole)
				}
				checkRoles(t, td, p, res)
				return
			}
			var ref *Refusal
			if !errors.As(err, &ref) || !ref.Has(CodeNoExecutionRole) {
				t.Fatalf("Instrument = %v, want refusal no_execution_role", err)
			}
			for _, r := range ref.Reasons {
				if r.Code != CodeNoExecutionRole {
					continue
				}
				for _, part := range []string{tt.want, "readable", "give the task definition its own executionRoleArn"} {
					if !strings.Contains(r.Detail, part) {
						t.Errorf("detail %q does not say %q", r.Detail, part)
					}
				}
				if strings.Contains(r.Detail, "arn:aws:secretsmanager:us-east-1:123456789012:secret:db") || strings.Contains(r.Detail, "s3:::bucket") {
					t.Errorf("detail %q names a secret's ARN", r.Detail)
				}
			}
		})
	}

	// With its own execution role, a source keeps it and its secrets: the
	// reconciler adds the token only.
	td := fargate(ctr("app", "example/app:1", true))
	td.TaskRoleArn = aws.String(taskRole)
	td.ContainerDefinitions[0].Secrets = []types.Secret{secret("DB_PASSWORD")}
	res, err := Instrument(td, nil, p, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(res.Input.ExecutionRoleArn), aws.ToString(td.ExecutionRoleArn); got != want {
		t.Errorf("executionRoleArn %q, want the source's %q", got, want)
	}
	checkRoles(t, td, p, res)
}
