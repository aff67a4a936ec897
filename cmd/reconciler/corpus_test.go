package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

const corpusDir = "testdata/corpus"

// corpusCase is one task definition of the corpus: testdata/corpus/NAME.json
// (exactly what render reads: describe output, a bare task definition or
// register input), rendered with args and one --image-config per entry of
// images (container name -> file under testdata/corpus/images), compared
// with testdata/corpus/NAME.golden.
type corpusCase struct {
	name   string
	args   []string
	images map[string]string
	// shapes are the features the case covers (see corpusRequired).
	shapes []string
	// expect is the decision the engine should reach; a case whose expect
	// starts with "refused" must exit 1, any other must render.
	expect string
	// motoRefusesSource names a rule of moto's that real ECS does not have
	// and that refuses the twin: the test then requires moto to refuse the
	// source itself with the same error, so that the twin adds nothing moto
	// objects to.
	motoRefusesSource string
}

// corpusRequired: every shape must be covered by at least one case.
var corpusRequired = []string{
	"firelens-awsvpc", "firelens-bridge", "appmesh-envoy", "xray", "service-connect",
	"datadog", "cloudwatch-agent", "otel", "init-containers", "efs", "secrets", "arm64",
	"windows-fargate", "windows-ec2", "ec2-bridge-links", "host-volumes", "ulimits", "empty-strings",
	"cpu-zero", "console-export", "describe-output", "bare-task-definition", "register-input",
	"terraform", "ecspresso", "dependency-cycle", "ten-containers", "command-only",
	"readonly-rootfs", "already-covered", "non-root", "config-file",
}

var corpusToken = []string{"--token-secret-arn", testSecretArn}

// corpus is the manifest. Each case says in a comment which public example it
// is modelled on: the JSON files are our own, with that example's shape.
var corpus = []corpusCase{
	// aws-samples/amazon-ecs-firelens-examples examples/fluent-bit/cloudwatchlogs/task-definition.json,
	// given Fargate's awsvpc, cpu and memory.
	{name: "firelens-cloudwatch-awsvpc", args: corpusToken, images: map[string]string{"app": "nginx.json"},
		shapes: []string{"firelens-awsvpc", "register-input"},
		expect: "app instrumented; log_router skipped (firelens_router) and given no dependency, so ECS still starts it first"},
	// aws-samples/amazon-ecs-firelens-examples examples/fluent-bit/datadog/task-definition.json
	// (the API key in logConfiguration.secretOptions), on Fargate.
	{name: "firelens-datadog-secretoptions", args: corpusToken, images: map[string]string{"app": "httpd.json"},
		shapes: []string{"firelens-awsvpc", "secrets", "register-input"},
		expect: "app instrumented; log_router skipped (firelens_router)"},
	// aws-samples/amazon-ecs-firelens-examples examples/fluent-bit/cloudwatchlogs-emf/emf-over-tcp/task-definition-bridge.json,
	// requiresCompatibilities EC2 added.
	// Its profile opts EC2 in (launchTypes), so that the bridge-mode start order is shown.
	{name: "firelens-emf-bridge", args: []string{"--config", corpusDir + "/config.yaml", "--profile", "ec2"}, images: map[string]string{"app": "nginx.json"},
		shapes: []string{"firelens-bridge", "ec2-bridge-links", "register-input", "config-file"},
		expect: "app instrumented with an explicit START on log_router before the sidecar; log_router skipped (firelens_router)",
		// moto 5.2.1 (ecs/models.py _validate_container_defs) wants memory on every container
		// of an EC2 task definition without task memory; ECS wants memory or memoryReservation
		// (ContainerDefinition.memoryReservation, API reference), as AWS's example has it.
		motoRefusesSource: "At least one of 'memory' or 'memoryReservation' must be specified"},
	// aws/aws-app-mesh-examples examples/apps/colorapp/ecs/colorteller-base-task-def.json with
	// examples/apps/colorapp/ecs/envoy-container.json, and the X-Ray daemon container of
	// https://docs.aws.amazon.com/xray/latest/devguide/xray-daemon-ecs.html; as a bare task definition.
	{name: "appmesh-colorteller-xray", args: corpusToken, images: map[string]string{"app": "colorteller.json"},
		shapes: []string{"appmesh-envoy", "xray", "bare-task-definition", "ulimits"},
		expect: "app instrumented, keeping its HEALTHY dependency on envoy; envoy skipped (proxy); xray-daemon skipped (agent_image)"},
	// awsdocs/amazon-ecs-developer-guide doc_source/example_task_definitions.md, "Example: Container
	// dependency" (appmesh-gateway: an envoy without user 1337), given Fargate's cpu and memory.
	{name: "appmesh-gateway-docs", args: corpusToken, images: map[string]string{"app": "appmesh-gateway-app.json"},
		shapes: []string{"appmesh-envoy", "register-input"},
		expect: "app instrumented; envoy skipped (proxy) although it has no user"},
	// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/create-service-connect.html
	// (the service-connect-nginx task definition: named port mapping with appProtocol).
	{name: "service-connect-nginx", args: corpusToken, images: map[string]string{"webserver": "nginx.json"},
		shapes: []string{"service-connect", "register-input"},
		expect: "webserver instrumented; portMappings name and appProtocol kept"},
	// https://docs.datadoghq.com/integrations/ecs_fargate/ (datadog-agent beside the app,
	// ECS_FARGATE, the "agent health" health check; the API key as a secret).
	{name: "datadog-agent-fargate", args: corpusToken, images: map[string]string{"my-app": "ddtrace-app.json"},
		shapes: []string{"datadog", "secrets", "register-input"},
		expect: "my-app instrumented (keeps its HEALTHY dependency on the agent); datadog-agent skipped (agent_image) without its image config"},
	// aws-samples/amazon-cloudwatch-container-insights
	// ecs-task-definition-templates/deployment-mode/sidecar/cwagent-emf/cwagent-emf-fargate.json.
	{name: "cwagent-emf-fargate", args: corpusToken, images: map[string]string{"demo-app": "emf-demo-app.json"},
		shapes: []string{"cloudwatch-agent", "register-input"},
		expect: "demo-app instrumented; cloudwatch-agent skipped (agent_image) without its image config"},
	// aws-observability/aws-otel-collector examples/ecs/aws-cloudwatch/ecs-fargate-sidecar.json
	// (the collector essential, the applications not).
	{name: "otel-collector-fargate", args: corpusToken,
		shapes: []string{"otel", "register-input"},
		expect: "refused no_containers: aws-otel-collector skipped (agent_image), the three apps not essential (the default selection); --include would select them"},
	// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html#container_definition_dependson
	// (COMPLETE and SUCCESS on non-essential containers), the shape copilot writes for
	// depends_on: {startup: success} (aws/copilot-cli site/content/docs/include/image-depends-on-config.en.md).
	{name: "init-containers", args: corpusToken, images: map[string]string{"web": "web-init.json"},
		shapes: []string{"init-containers", "register-input"},
		expect: "web instrumented, keeping its SUCCESS and COMPLETE dependencies; init-config and migrate skipped (init_container)"},
	// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/efs-volumes.html
	// (container-using-efs, amazonlinux:2, sh -c "ls -la /mount/efs"; access point and IAM).
	{name: "efs-fargate", args: corpusToken,
		shapes: []string{"efs", "register-input"},
		expect: "container-using-efs instrumented from its own entryPoint (no image config needed); the EFS volume kept"},
	// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html
	// (JSON keys of a secret, an SSM parameter) and the splunk secretOptions of
	// awsdocs/amazon-ecs-developer-guide doc_source/example_task_definitions.md; profile from --config.
	{name: "secrets-and-secretoptions", args: []string{"--config", corpusDir + "/config.yaml", "--profile", "eu"},
		images: map[string]string{"api": "payments-api.json"},
		shapes: []string{"secrets", "config-file", "register-input"},
		expect: "api instrumented; LaceworkAccessToken appended to its secrets, LaceworkServerUrl (EU) and LaceworkConfig set; sidecar logs with splunk's secretOptions"},
	// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-arm64.html (arm64-testapp).
	{name: "arm64-graviton", args: corpusToken,
		shapes: []string{"arm64", "register-input"},
		expect: "arm-container instrumented; runtimePlatform ARM64 kept (the sidecar image is multi-arch)"},
	// awsdocs/amazon-ecs-developer-guide doc_source/example_task_definitions.md
	// (Windows containers on Fargate web server, WINDOWS_SERVER_2019_CORE).
	{name: "windows-fargate-iis", args: corpusToken,
		shapes: []string{"windows-fargate", "register-input"},
		expect: "refused windows"},
	// awsdocs/amazon-ecs-developer-guide doc_source/example_task_definitions.md, "Windows sample
	// task definitions" (windows-simple-iis: no runtimePlatform, no requiresCompatibilities).
	{name: "windows-ec2-iis", args: corpusToken,
		shapes: []string{"windows-ec2", "register-input"},
		expect: "refused windows (from the image and powershell, there is no runtimePlatform), and not Fargate"},
	// The ECS developer guide's classic hello_world task definition (wordpress linked to mysql,
	// hostPort 80), with host volumes from https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html.
	{name: "ec2-bridge-wordpress-links", args: corpusToken, images: map[string]string{"wordpress": "wordpress.json", "mysql": "mysql.json"},
		shapes: []string{"ec2-bridge-links", "host-volumes", "register-input"},
		expect: "refused: EC2-only (bridge, links, host volumes, requiresCompatibilities EC2)"},
	// https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Ulimit.html (core 0/0 turns core
	// dumps off) with a container cpu of 0 as the console writes it.
	{name: "ulimits-zero", args: corpusToken, images: map[string]string{"worker": "queue-worker.json"},
		shapes: []string{"ulimits", "cpu-zero", "register-input"},
		expect: "worker instrumented; ulimits softLimit/hardLimit 0 and cpu 0 kept (the CLI requires both limits)"},
	// An ecspresso task definition as found in public repositories (test_ecs_batch_django:
	// ipcMode "", pidMode "", appProtocol "", runtimePlatform ARM64), sorted keys.
	{name: "empty-strings-ecspresso", args: corpusToken, images: map[string]string{"django": "django-arm64.json"},
		shapes: []string{"empty-strings", "ecspresso", "arm64", "cpu-zero", "register-input"},
		expect: "django instrumented; the empty ipcMode, pidMode and appProtocol read as unset"},
	// The ECS console's JSON view of a revision made with its form (nginx-80-tcp, cpu 0, empty
	// lists, enableFaultInjection), the read-only members included, as in the AWS docs'
	// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/create-task-definition.html.
	{name: "console-export-nginx", args: corpusToken, images: map[string]string{"nginx": "nginx-inspect.json"},
		shapes: []string{"console-export", "bare-task-definition", "cpu-zero", "service-connect"},
		expect: "nginx instrumented; read-only members dropped; the image's digest from docker image inspect in the spec"},
	// aws ecs describe-task-definition --include TAGS output (the shape of
	// https://docs.aws.amazon.com/cli/latest/reference/ecs/describe-task-definition.html), a stack's aws: tags.
	{name: "describe-include-tags", args: corpusToken,
		shapes: []string{"describe-output", "secrets", "cpu-zero"},
		expect: "orders-api instrumented from its entryPoint; aws: tags dropped, team and inject kept; source revision 7"},
	// Register input made from Terraform's aws_ecs_task_definition, whose container_definitions
	// come from jsonencode of cloudposse/terraform-aws-ecs-container-definition (sorted keys,
	// explicit nulls); no execution role, given with --execution-role-arn.
	{name: "terraform-jsonencode", args: append([]string{"--execution-role-arn", "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"}, corpusToken...),
		images: map[string]string{"api": "api.json"},
		shapes: []string{"terraform", "register-input"},
		expect: "api instrumented (USER 0 is root); nulls read as unset; executionRoleArn set from the flag, with a warning"},
	// kayac/ecspresso tests/ci/ecs-task-def.json after `ecspresso render taskdef` (templates filled).
	{name: "ecspresso-nginx-bash", args: corpusToken, images: map[string]string{"nginx": "nginx.json", "bash": "debian-buster-slim.json"},
		shapes: []string{"ecspresso", "secrets", "command-only", "cpu-zero", "register-input"},
		expect: "nginx and bash instrumented; bash keeps its command and the image's (empty) ENTRYPOINT"},
	// The AWS docs container dependency example with the edge added back: two containers
	// waiting for each other to START (ECS rejects the registration).
	{name: "dependency-cycle", args: corpusToken,
		shapes: []string{"dependency-cycle", "register-input"},
		expect: "refused invalid_dependency (cycle app -> sidecar -> app)"},
	// A ten-container task (six services, redis, FireLens, X-Ray and CloudWatch agents) as in
	// aws-samples/amazon-ecs-firelens-examples and the container insights templates, at ECS's limit.
	{name: "ten-containers", args: corpusToken,
		shapes: []string{"ten-containers", "register-input"},
		expect: "refused too_many_containers (the sidecar would be the eleventh)"},
	// awsdocs/amazon-ecs-developer-guide doc_source/example_task_definitions.md, "Example:
	// Entrypoint with command" (alpine_ping, readonlyRootFilesystem), given Fargate's awsvpc.
	{name: "readonly-rootfs-ping", args: corpusToken,
		shapes: []string{"readonly-rootfs", "register-input"},
		expect: "refused readonly_root_filesystem"},
	// The Lacework guide's example task definition (/work/shared/reference/lacework-fargate-guide.txt,
	// "Example Task Definition JSON") without its sidecar, as describe output.
	{name: "guide-example", args: corpusToken, images: map[string]string{"main-application": "guide-app.json"},
		shapes: []string{"describe-output", "cpu-zero"},
		expect: "main-application instrumented exactly as the guide shows, token as a secret"},
	// The same guide example with its sidecar: already covered.
	{name: "guide-example-instrumented", args: corpusToken,
		shapes: []string{"already-covered", "describe-output"},
		expect: "refused already_covered (the guide's sidecar is there)"},
	// A Node.js image that runs as USER node (docker image inspect after a pull), with --non-root sudo.
	{name: "nonroot-node-sudo", args: append([]string{"--non-root", "sudo"}, corpusToken...), images: map[string]string{"storefront": "node-app-inspect.json"},
		shapes: []string{"non-root", "register-input"},
		expect: "storefront instrumented with sudo -E and SYS_PTRACE; warning nonroot_sudo_unverified"},
	// awsdocs/amazon-ecs-developer-guide doc_source/example_task_definitions.md, "Example: Amazon ECR
	// image and task definition IAM role" (aws-nodejs-sample) with a command, given Fargate's
	// awsvpc; no --image-config.
	{name: "command-only-no-image-config", args: corpusToken,
		shapes: []string{"command-only", "register-input"},
		expect: "refused unknown_command with a hint: line (crane config ... then --image-config sample-app=FILE)"},
}

// TestCorpus renders every case through the CLI and compares exit code,
// stderr and stdout with testdata/corpus/NAME.golden (a missing golden file
// fails; -update rewrites them). Then every rendered twin is registered with
// the aws CLI against one moto_server and described back: the CLI's own
// parameter validation and moto must accept it, with its family and
// containers.
func TestCorpus(t *testing.T) {
	checkCorpusManifest(t)

	rendered := map[string]string{}
	t.Run("render", func(t *testing.T) {
		for _, c := range corpus {
			t.Run(c.name, func(t *testing.T) {
				args := append([]string{}, c.args...)
				for _, name := range slices.Sorted(maps.Keys(c.images)) {
					args = append(args, "--image-config", name+"="+filepath.Join(corpusDir, "images", c.images[name]))
				}
				args = append(args, filepath.Join(corpusDir, c.name+".json"))
				code, stdout, stderr := runRender(t, "", args...)
				checkGolden(t, filepath.Join(corpusDir, c.name+".golden"), renderTranscript(code, stdout, stderr))
				// The decision the manifest expects, checked apart from the
				// golden file so that -update cannot accept a changed one.
				if refuse := strings.HasPrefix(c.expect, "refused"); refuse != (code == exitFail) || (!refuse && code != exitOK) {
					t.Errorf("exit %d, but the manifest expects %q:\n%s", code, c.expect, stderr)
				}
				if code == exitOK {
					rendered[c.name] = stdout
				}
			})
		}
	})
	if len(rendered) == 0 {
		t.Fatal("no case rendered")
	}

	aws := newAWSCLI(t, requireMoto(t))
	dir := t.TempDir()
	t.Run("register", func(t *testing.T) {
		motoRule := map[string]string{}
		for _, c := range corpus {
			motoRule[c.name] = c.motoRefusesSource
		}
		for _, name := range slices.Sorted(maps.Keys(rendered)) {
			out := rendered[name]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				if rule := motoRule[name]; rule != "" {
					// The aws CLI's own validation passes; moto's rule refuses
					// the source and the twin alike.
					for _, in := range []struct{ what, file string }{
						{"source", filepath.Join(corpusDir, name+".json")},
						{"twin", filepath.Join(dir, name+".json")},
					} {
						if in.what == "twin" {
							writeFile(t, in.file, out)
						}
						_, err := aws.run("ecs", "register-task-definition", "--cli-input-json", "file://"+in.file)
						if err == nil || !strings.Contains(err.Error(), rule) || strings.Contains(err.Error(), "Parameter validation failed") {
							t.Errorf("%s: want moto's refusal %q, got %v", in.what, rule, err)
						}
					}
					return
				}
				var want struct {
					Family               string
					ContainerDefinitions []struct{ Name string }
					Tags                 []struct{ Key, Value string }
				}
				if err := json.Unmarshal([]byte(out), &want); err != nil {
					t.Fatalf("render output: %v", err)
				}
				file := filepath.Join(dir, name+".json")
				writeFile(t, file, out)
				reg, err := aws.run("ecs", "register-task-definition", "--cli-input-json", "file://"+file)
				if err != nil {
					t.Fatalf("the rendered twin is refused: %v", err)
				}
				var r struct {
					TaskDefinition struct{ TaskDefinitionArn string }
				}
				if err := json.Unmarshal(reg, &r); err != nil || r.TaskDefinition.TaskDefinitionArn == "" {
					t.Fatalf("register-task-definition answered %s (%v)", reg, err)
				}
				desc, err := aws.run("ecs", "describe-task-definition", "--task-definition", r.TaskDefinition.TaskDefinitionArn, "--include", "TAGS")
				if err != nil {
					t.Fatal(err)
				}
				var got struct {
					TaskDefinition struct {
						Family               string
						ContainerDefinitions []struct{ Name string }
					}
					Tags []struct{ Key, Value string }
				}
				if err := json.Unmarshal(desc, &got); err != nil {
					t.Fatal(err)
				}
				if got.TaskDefinition.Family != want.Family {
					t.Errorf("described family %q, rendered %q", got.TaskDefinition.Family, want.Family)
				}
				if g, w := len(got.TaskDefinition.ContainerDefinitions), len(want.ContainerDefinitions); g != w {
					t.Errorf("described %d containers, rendered %d", g, w)
				}
				if g, w := len(got.Tags), len(want.Tags); g != w {
					t.Errorf("described %d tags, rendered %d", g, w)
				}
			})
		}
	})
}

// checkCorpusManifest: at least 25 cases, every required shape covered, one
// input file per case and no stray one, every image config used exists, and
// each case's input shape tag agrees with its file.
func checkCorpusManifest(t *testing.T) {
	t.Helper()
	if len(corpus) < 25 {
		t.Errorf("the corpus has %d cases, want at least 25", len(corpus))
	}
	required := map[string]bool{}
	for _, s := range corpusRequired {
		required[s] = true
	}
	covered := map[string]bool{}
	names := map[string]bool{}
	usedImages := map[string]bool{}
	for _, c := range corpus {
		if names[c.name] {
			t.Errorf("case %s is listed twice", c.name)
		}
		names[c.name] = true
		if c.expect == "" {
			t.Errorf("case %s says nothing of the decision it expects", c.name)
		}
		for _, s := range c.shapes {
			if !required[s] {
				t.Errorf("case %s: shape %q is not in corpusRequired", c.name, s)
			}
			covered[s] = true
		}
		for _, f := range c.images {
			usedImages[f] = true
			if _, err := os.Stat(filepath.Join(corpusDir, "images", f)); err != nil {
				t.Errorf("case %s: %v", c.name, err)
			}
		}
		data, err := os.ReadFile(filepath.Join(corpusDir, c.name+".json"))
		if err != nil {
			t.Errorf("case %s: %v", c.name, err)
			continue
		}
		shape := inputShape(data)
		if !contains(c.shapes, shape) {
			t.Errorf("case %s: its file is %s; say so in its shapes %v", c.name, shape, c.shapes)
		}
	}
	for _, s := range corpusRequired {
		if !covered[s] {
			t.Errorf("no case covers %s", s)
		}
	}
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*.json"))
	for _, f := range files {
		if n := strings.TrimSuffix(filepath.Base(f), ".json"); !names[n] {
			t.Errorf("%s has no case in the manifest", f)
		}
	}
	goldens, _ := filepath.Glob(filepath.Join(corpusDir, "*.golden"))
	for _, f := range goldens {
		if n := strings.TrimSuffix(filepath.Base(f), ".golden"); !names[n] {
			t.Errorf("%s has no case in the manifest (remove it)", f)
		}
	}
	images, _ := filepath.Glob(filepath.Join(corpusDir, "images", "*.json"))
	var unused []string
	for _, f := range images {
		if !usedImages[filepath.Base(f)] {
			unused = append(unused, filepath.Base(f))
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("image configs no case uses: %s", strings.Join(unused, ", "))
	}
}

// inputShape names which of render's three input shapes data is.
func inputShape(data []byte) string {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return "not JSON"
	}
	if _, ok := top["taskDefinition"]; ok {
		return "describe-output"
	}
	for _, k := range []string{"taskDefinitionArn", "revision", "status", "registeredAt", "compatibilities", "requiresAttributes"} {
		if _, ok := top[k]; ok {
			return "bare-task-definition"
		}
	}
	if bytes.Contains(data, []byte(`"containerDefinitions"`)) {
		return "register-input"
	}
	return "not a task definition"
}
