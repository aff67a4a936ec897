package cfnmacro

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

const fixtures = "../../cmd/reconciler/testdata/cloudformation"

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.LoadWith(filepath.Join(fixtures, "config.yaml"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func loadFixture(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := ParseTemplate(b)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// CfnLint runs cfn-lint on template; without cfn-lint it skips, or fails
// when CI=true.
func CfnLint(t *testing.T, template map[string]any) {
	t.Helper()
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cfn-lint is not installed (pip package cfn-lint): %v", err)
		}
		t.Skipf("cfn-lint is not installed (pip install cfn-lint); CI=true makes this a failure")
	}
	b, err := json.MarshalIndent(template, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "out.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, f).CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint: %v\n%s", err, out)
	}
}

// intrinsics lists, as JSON, every intrinsic function of v (outermost only).
func intrinsics(v any) map[string]int {
	m := map[string]int{}
	var rec func(any)
	rec = func(v any) {
		if _, ok := intrinsic(v); ok {
			b, _ := json.Marshal(v)
			m[string(b)]++
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				rec(e)
			}
		case []any:
			for _, e := range x {
				rec(e)
			}
		}
	}
	rec(v)
	return m
}

func TestCloudFormationFixtures(t *testing.T) {
	cfg := testConfig(t)
	for _, tc := range []struct {
		file, resource string
		instrumented   []string
		untouched      []string // resources that must come out as they went in
	}{
		{"fargate-service.yaml", "TaskDefinition", []string{`{"Ref":"ServiceName"}`}, []string{"LogGroup", "ExecutionRole"}},
		{"cdk-synth.json", "ApiTaskDef9A1C3B55", []string{"api"}, []string{"ApiRepo4B6C2D10", "CDKMetadata", "ApiTaskDefTaskRole8D2B9E31"}},
		{"firelens-appmesh.yaml", "TaskDefinition", []string{"app"}, []string{"Untagged", "ExecutionRole"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			in := loadFixture(t, tc.file)
			orig := deepCopy(in)
			out, rep, err := Transform(in, nil, Options{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in, orig) {
				t.Error("Transform modified its input")
			}
			var rr *ResourceReport
			for i := range rep.Resources {
				if rep.Resources[i].LogicalID == tc.resource {
					rr = &rep.Resources[i]
				}
			}
			if rr == nil || rr.Outcome != Instrumented || !reflect.DeepEqual(rr.Instrumented, tc.instrumented) {
				t.Fatalf("report %+v, want %s instrumented %v", rep, tc.resource, tc.instrumented)
			}
			if _, ok := out["Transform"]; ok {
				t.Errorf("Transform %v left in the output", out["Transform"])
			}
			b, _ := json.Marshal(out)
			if strings.Contains(string(b), "cfn-intrinsic") {
				t.Errorf("a placeholder leaked into the output: %s", b)
			}
			res := out["Resources"].(map[string]any)
			ores := orig.(map[string]any)["Resources"].(map[string]any)
			for _, id := range tc.untouched {
				if !reflect.DeepEqual(res[id], ores[id]) {
					t.Errorf("resource %s changed: %v", id, cmp.Diff(ores[id], res[id]))
				}
			}
			// Every intrinsic function of the source is in the output, as
			// it was (the sidecar may copy some: at least as many).
			want := intrinsics(ores[tc.resource])
			got := intrinsics(res[tc.resource])
			for fn, n := range want {
				if got[fn] < n {
					t.Errorf("intrinsic %s: %d in the output, %d in the source", fn, got[fn], n)
				}
			}
			props := res[tc.resource].(map[string]any)["Properties"].(map[string]any)
			cs := props["ContainerDefinitions"].([]any)
			if name := cs[0].(map[string]any)["Name"]; name != patch.DefaultSidecarName {
				t.Errorf("first container %v, want the sidecar", name)
			}
			var deployTag bool
			for _, x := range props["Tags"].([]any) {
				tag := x.(map[string]any)
				if tag["Key"] == "ecs-sidecar/deploy-time" && tag["Value"] == DeployTimeTool {
					deployTag = true
				}
				if tag["Key"] == "ecs-sidecar/source" {
					t.Errorf("a deploy-time revision has a source tag: %v", tag)
				}
			}
			if !deployTag {
				t.Errorf("no deploy-time tag in %v", props["Tags"])
			}
			CfnLint(t, out)

			// The output, given to the macro again, is left alone.
			again, rep2, err := Transform(out, nil, Options{Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rep2.Resources {
				if r.LogicalID == tc.resource && r.Outcome != Covered {
					t.Errorf("second pass: %s is %s, want covered", r.LogicalID, r.Outcome)
				}
			}
			if !reflect.DeepEqual(again["Resources"], out["Resources"]) {
				t.Error("second pass changed the template")
			}
		})
	}
}

// TestRefusedLikeRender: an opted-in container with no command and an
// intrinsic image is refused with unknown_command, as render refuses it
// offline; the template comes back with the resource unchanged.
func TestRefusedLikeRender(t *testing.T) {
	in := loadFixture(t, "refused-unknown-command.yaml")
	out, rep, err := Transform(in, nil, Options{Config: testConfig(t)})
	var re *RefusedError
	if !errors.As(err, &re) || len(re.Resources) != 1 || re.Resources[0].Reasons[0].Code != patch.CodeUnknownCommand {
		t.Fatalf("err = %v, want a refusal with unknown_command", err)
	}
	if rep.Resources[0].Outcome != Refused || !strings.Contains(err.Error(), "Worker: unknown_command: worker:") {
		t.Errorf("report %+v, error %q", rep, err)
	}
	if !reflect.DeepEqual(out["Resources"], in["Resources"]) {
		t.Error("the refused resource was changed")
	}
}

func TestNotOptedInAndIntrinsicTags(t *testing.T) {
	tmpl := func(tagValue any) map[string]any {
		return map[string]any{"Resources": map[string]any{"TD": map[string]any{
			"Type": ResourceType,
			"Properties": map[string]any{
				"Cpu": "256", "Memory": "512", "NetworkMode": "awsvpc", "RequiresCompatibilities": []any{"FARGATE"},
				"ExecutionRoleArn":     "arn:aws:iam::123456789012:role/exec",
				"ContainerDefinitions": []any{map[string]any{"Name": "app", "Image": "nginx", "EntryPoint": []any{"/docker-entrypoint.sh"}}},
				"Tags":                 []any{map[string]any{"Key": "ecs-sidecar/inject", "Value": tagValue}},
			}}}}
	}
	for _, tc := range []struct {
		name   string
		tag    any
		params map[string]any
		want   Outcome
	}{
		{"false", "false", nil, NotOptedIn},
		{"true", "true", nil, Instrumented},
		{"ref to a true parameter", map[string]any{"Ref": "Inject"}, map[string]any{"Inject": "true"}, Instrumented},
		{"ref to a false parameter", map[string]any{"Ref": "Inject"}, map[string]any{"Inject": "false"}, NotOptedIn},
		{"other function: not evaluated", map[string]any{"Fn::If": []any{"C", "true", "false"}}, nil, NotOptedIn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rep, err := Transform(tmpl(tc.tag), tc.params, Options{Config: testConfig(t)})
			if err != nil {
				t.Fatal(err)
			}
			if got := rep.Resources[0].Outcome; got != tc.want {
				t.Errorf("outcome %s, want %s", got, tc.want)
			}
		})
	}
}

// TestIntrinsicWhereLiteralNeeded: a list given by a function cannot be
// read; the resource is refused with intrinsic_value, unchanged.
func TestIntrinsicWhereLiteralNeeded(t *testing.T) {
	tm := map[string]any{"Resources": map[string]any{"TD": map[string]any{"Type": ResourceType, "Properties": map[string]any{
		"Cpu": "256", "Memory": "512", "NetworkMode": "awsvpc", "RequiresCompatibilities": []any{"FARGATE"},
		"ContainerDefinitions": []any{map[string]any{"Name": "app", "Image": "nginx", "EntryPoint": map[string]any{"Fn::Split": []any{" ", map[string]any{"Ref": "Cmd"}}}}},
		"Tags":                 []any{map[string]any{"Key": "ecs-sidecar/inject", "Value": "true"}},
	}}}}
	_, rep, err := Transform(tm, nil, Options{Config: testConfig(t)})
	var re *RefusedError
	if !errors.As(err, &re) || rep.Resources[0].Reasons[0].Code != CodeIntrinsic ||
		!strings.Contains(rep.Resources[0].Reasons[0].Detail, "ContainerDefinitions[0].EntryPoint is an intrinsic function (Fn::Split)") {
		t.Fatalf("err %v, report %+v", err, rep)
	}
}

// TestCaseMapping: every property the fixtures use, and the exceptions to
// the PascalCase rule, are read into the SDK fields and written back under
// the same names.
func TestCaseMapping(t *testing.T) {
	props := map[string]any{
		"Family": "f", "Cpu": 256, "Memory": "512", "NetworkMode": "awsvpc", "PidMode": "task", "IpcMode": "none",
		"RequiresCompatibilities": []any{"FARGATE"}, "ExecutionRoleArn": "e", "TaskRoleArn": "r",
		"RuntimePlatform":  map[string]any{"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"},
		"EphemeralStorage": map[string]any{"SizeInGiB": 30},
		"ProxyConfiguration": map[string]any{"Type": "APPMESH", "ContainerName": "envoy",
			"ProxyConfigurationProperties": []any{map[string]any{"Name": "IgnoredUID", "Value": "1337"}}},
		"Volumes": []any{
			map[string]any{"Name": "efs", "EFSVolumeConfiguration": map[string]any{"FilesystemId": "fs-1", "TransitEncryption": "ENABLED",
				"AuthorizationConfig": map[string]any{"AccessPointId": "fsap-1", "IAM": "ENABLED"}}},
			map[string]any{"Name": "fsx", "FSxWindowsFileServerVolumeConfiguration": map[string]any{"FileSystemId": "fs-2", "RootDirectory": `\share`}},
			map[string]any{"Name": "dock", "DockerVolumeConfiguration": map[string]any{"Driver": "local", "Scope": "task", "DriverOpts": map[string]any{"Type": "tmpfs"}, "Labels": map[string]any{"MixedCase": "x"}}},
			map[string]any{"Name": "host", "Host": map[string]any{"SourcePath": "/data"}},
		},
		"PlacementConstraints": []any{map[string]any{"Type": "memberOf", "Expression": "attribute:ecs.os-type == linux"}},
		"ContainerDefinitions": []any{map[string]any{
			"Name": "app", "Image": "i", "Essential": true, "Cpu": 128, "Memory": 256, "MemoryReservation": 128,
			"EntryPoint": []any{"/a"}, "Command": []any{"b"}, "User": "0", "WorkingDirectory": "/w",
			"PortMappings":          []any{map[string]any{"ContainerPort": 80, "HostPort": 80, "Protocol": "tcp", "Name": "web", "AppProtocol": "http"}},
			"Environment":           []any{map[string]any{"Name": "A", "Value": "1"}},
			"EnvironmentFiles":      []any{map[string]any{"Type": "s3", "Value": "arn:aws:s3:::b/k.env"}},
			"Secrets":               []any{map[string]any{"Name": "S", "ValueFrom": "arn"}},
			"DockerLabels":          map[string]any{"com.Example.Label": "v"},
			"DependsOn":             []any{map[string]any{"ContainerName": "x", "Condition": "START"}},
			"MountPoints":           []any{map[string]any{"ContainerPath": "/m", "SourceVolume": "efs", "ReadOnly": true}},
			"VolumesFrom":           []any{map[string]any{"SourceContainer": "x", "ReadOnly": false}},
			"HealthCheck":           map[string]any{"Command": []any{"CMD", "true"}, "Interval": 30, "Timeout": 5, "Retries": 3, "StartPeriod": 10},
			"LogConfiguration":      map[string]any{"LogDriver": "awslogs", "Options": map[string]any{"awslogs-group": "g"}, "SecretOptions": []any{map[string]any{"Name": "n", "ValueFrom": "v"}}},
			"FirelensConfiguration": map[string]any{"Type": "fluentbit", "Options": map[string]any{"enable-ecs-log-metadata": "true"}},
			"LinuxParameters": map[string]any{"Capabilities": map[string]any{"Add": []any{"SYS_PTRACE"}, "Drop": []any{"NET_RAW"}}, "InitProcessEnabled": true,
				"Tmpfs": []any{map[string]any{"ContainerPath": "/t", "Size": 64, "MountOptions": []any{"rw"}}}},
			"Ulimits":                []any{map[string]any{"Name": "nofile", "SoftLimit": 1024, "HardLimit": 4096}},
			"SystemControls":         []any{map[string]any{"Namespace": "net.core.somaxconn", "Value": "1024"}},
			"ExtraHosts":             []any{map[string]any{"Hostname": "h", "IpAddress": "10.0.0.1"}},
			"RepositoryCredentials":  map[string]any{"CredentialsParameter": "arn"},
			"ResourceRequirements":   []any{map[string]any{"Type": "GPU", "Value": "1"}},
			"ReadonlyRootFilesystem": false, "StartTimeout": 30, "StopTimeout": 30, "Privileged": false,
			"DnsServers": []any{"10.0.0.2"}, "DockerSecurityOptions": []any{"no-new-privileges"},
			"Interactive": false, "PseudoTerminal": false,
		}},
		"Tags": []any{map[string]any{"Key": "k", "Value": "v"}},
	}
	var in ecs.RegisterTaskDefinitionInput
	d := decoder{ph: newPlaceholders(props)}
	if err := d.value(reflect.ValueOf(&in).Elem(), props, "Properties"); err != nil {
		t.Fatal(err)
	}
	v := in.Volumes
	if aws.ToString(v[0].EfsVolumeConfiguration.FileSystemId) != "fs-1" || v[0].EfsVolumeConfiguration.AuthorizationConfig.Iam != types.EFSAuthorizationConfigIAMEnabled ||
		aws.ToString(v[1].FsxWindowsFileServerVolumeConfiguration.FileSystemId) != "fs-2" || len(in.ProxyConfiguration.Properties) != 1 ||
		in.ContainerDefinitions[0].DockerLabels["com.Example.Label"] != "v" || aws.ToString(in.Cpu) != "256" || in.ContainerDefinitions[0].Cpu != 128 {
		t.Errorf("decoded %+v", in)
	}
	got, _ := encode(reflect.ValueOf(&in))
	if !equal(got, props) {
		// "Cpu": 256 comes back as the string ECS's API holds; false
		// booleans are written back as set (pointers).
		want := deepCopy(props).(map[string]any)
		want["Cpu"] = "256"
		if !equal(got, want) {
			t.Errorf("round trip differs:\n%s", cmp.Diff(want, got))
		}
	}
}
