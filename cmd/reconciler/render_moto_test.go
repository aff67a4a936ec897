package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRenderRegistersOnMoto does what docs/render.md tells a new user to
// do: render the guide's example, register the result with the aws CLI
// (against moto_server on 127.0.0.1, an AWS emulator written by others),
// describe it back, and check that the revision is the guide's. The
// described twin, rendered again, is refused as already_twin. moto_server
// and aws are on every development machine and in CI: their absence fails.
func TestRenderRegistersOnMoto(t *testing.T) {
	endpoint := requireMoto(t)
	aws := newAWSCLI(t, endpoint)
	awsCLI := func(args ...string) []byte { t.Helper(); return aws.must(t, args...) }
	dir := t.TempDir()

	code, out, stderr := runRender(t, guideDescribe, "--token-secret-arn", testSecretArn, "--image-cmd", `["/your-app/run.sh"]`)
	if code != exitOK {
		t.Fatalf("render: exit %d: %s", code, stderr)
	}
	outFile := filepath.Join(dir, "out.json")
	writeFile(t, outFile, out)

	var reg struct {
		TaskDefinition struct {
			TaskDefinitionArn string
			Revision          int
		}
	}
	if err := json.Unmarshal(awsCLI("ecs", "register-task-definition", "--cli-input-json", "file://"+outFile), &reg); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(reg.TaskDefinition.TaskDefinitionArn, ":task-definition/datacollector-sidecar-demo:1") {
		t.Errorf("registered %q, want datacollector-sidecar-demo:1", reg.TaskDefinition.TaskDefinitionArn)
	}

	described := awsCLI("ecs", "describe-task-definition", "--task-definition", "datacollector-sidecar-demo", "--include", "TAGS")
	var desc struct {
		TaskDefinition struct {
			ContainerDefinitions []struct {
				Name        string
				Image       string
				Essential   bool
				EntryPoint  []string
				Command     []string
				VolumesFrom []struct {
					SourceContainer string
					ReadOnly        bool
				}
				DependsOn []struct{ ContainerName, Condition string }
				Secrets   []struct{ Name, ValueFrom string }
			}
		}
		Tags []struct{ Key, Value string }
	}
	if err := json.Unmarshal(described, &desc); err != nil {
		t.Fatal(err)
	}
	type container struct {
		Name, Image, EntryPoint, Command, VolumesFrom, DependsOn, Secrets string
		Essential                                                         bool
	}
	var got []container
	for _, c := range desc.TaskDefinition.ContainerDefinitions {
		g := container{Name: c.Name, Image: c.Image, Essential: c.Essential,
			EntryPoint: strings.Join(c.EntryPoint, " "), Command: strings.Join(c.Command, " ")}
		for _, v := range c.VolumesFrom {
			g.VolumesFrom += v.SourceContainer + ":ro=" + strconv.FormatBool(v.ReadOnly)
		}
		for _, d := range c.DependsOn {
			g.DependsOn += d.ContainerName + ":" + d.Condition
		}
		for _, s := range c.Secrets {
			g.Secrets += s.Name + "=" + s.ValueFrom
		}
		got = append(got, g)
	}
	want := []container{
		{Name: "datacollector-sidecar", Image: "lacework/datacollector:latest-sidecar", Essential: false},
		{Name: "main-application", Image: "youroganization/application-name:latest-main", Essential: true,
			EntryPoint: "/var/lib/lacework-backup/lacework-sidecar.sh", Command: "/your-app/run.sh",
			VolumesFrom: "datacollector-sidecar:ro=true", DependsOn: "datacollector-sidecar:SUCCESS",
			Secrets: "LaceworkAccessToken=" + testSecretArn},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("described containers (-got +want):\n%s", diff)
	}
	tags := map[string]string{}
	for _, tg := range desc.Tags {
		tags[tg.Key] = tg.Value
	}
	if tags["ecs-sidecar/source"] != "1" || len(tags["ecs-sidecar/spec"]) != 12 {
		t.Errorf("described tags %v, want ecs-sidecar/source=1 and a 12-character ecs-sidecar/spec", tags)
	}

	// The twin, described by the CLI, given back to render: recognised.
	descFile := filepath.Join(dir, "described.json")
	writeFile(t, descFile, string(described))
	code, out, stderr = runRender(t, "", "--token-secret-arn", testSecretArn, descFile)
	if code != exitFail || out != "" || !strings.HasPrefix(stderr, "refused: already_twin: ") {
		t.Errorf("render of the registered twin: exit %d, stdout %q, stderr %q; want 1 and refused: already_twin", code, out, stderr)
	}
}

// requireMoto starts moto_server (see startMoto) and returns its endpoint;
// a missing moto_server fails the test.
func requireMoto(t *testing.T) string {
	t.Helper()
	motoBin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("moto_server is required (pip install 'moto[server]'): %v", err)
	}
	return startMoto(t, motoBin)
}

// awsCLI runs the aws CLI against one endpoint with dummy credentials and
// none of the user's configuration.
type awsCLI struct {
	bin, endpoint string
	env           []string
}

// newAWSCLI finds the aws CLI (its absence fails the test).
func newAWSCLI(t *testing.T, endpoint string) *awsCLI {
	t.Helper()
	bin, err := exec.LookPath("aws")
	if err != nil {
		t.Fatalf("the aws CLI is required (pip install awscli): %v", err)
	}
	none := filepath.Join(t.TempDir(), "none")
	return &awsCLI{bin: bin, endpoint: endpoint, env: append(os.Environ(),
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none)}
}

// run returns the command's stdout, or an error with its stderr.
func (a *awsCLI) run(args ...string) ([]byte, error) {
	cmd := exec.Command(a.bin, append([]string{"--endpoint-url", a.endpoint, "--output", "json"}, args...)...)
	cmd.Env = a.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// must is run that fails the test on an error.
func (a *awsCLI) must(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := a.run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// startMoto starts moto_server on a free loopback port in its own process
// group, waits until it accepts connections, and stops it when the test ends.
func startMoto(t *testing.T, bin string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close()

	logs := &lockedBuffer{}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", port)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting moto_server: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // the group we created: moto and its shim
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	// Startup takes a few seconds (Python imports); a minute is a generous
	// deadline for a loaded machine, not an assertion about speed.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("moto_server exited: %v\n%s", waitErr, logs.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not listen on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lockedBuffer collects a child's output while the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
