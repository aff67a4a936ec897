package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestQuickstartWithAWSCLI does what README's quick start tells a new user:
// `reconciler run --embedded`, then, with the aws CLI, register a revision of
// an opted-in family without tags and deploy it; the service ends on the
// twin of that revision. Then SIGTERM stops the reconciler cleanly.
func TestQuickstartWithAWSCLI(t *testing.T) {
	awsPath, err := exec.LookPath("aws")
	if err != nil {
		t.Fatalf("the aws CLI is required (installed on the machine and in CI): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "reconciler")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port := freePort(t)
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	var logs bytes.Buffer
	run := exec.Command(bin, "run", "--embedded", "--sim-listen", fmt.Sprintf("127.0.0.1:%d", port))
	run.Stdout, run.Stderr = &logs, &logs
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			run.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("reconciler logs:\n%s", logs.String())
		}
	})
	waitReady(t, endpoint+"/_sim/state", exited)

	cli := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsPath, append([]string{"--endpoint-url", endpoint}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1",
			"AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, stderr.String())
		}
		return strings.TrimSpace(stdout.String())
	}
	rev := cli("ecs", "register-task-definition", "--family", "web", "--requires-compatibilities", "FARGATE",
		"--network-mode", "awsvpc", "--cpu", "256", "--memory", "512",
		"--execution-role-arn", "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
		"--container-definitions", `[{"name":"app","image":"nginx:1.28","essential":true,`+
			`"entryPoint":["/docker-entrypoint.sh"],"command":["nginx","-g","daemon off;"]}]`,
		"--query", "taskDefinition.revision", "--output", "text")
	cli("ecs", "update-service", "--cluster", "demo", "--service", "web", "--task-definition", "web:"+rev)

	deadline := time.Now().Add(90 * time.Second)
	for {
		td := cli("ecs", "describe-services", "--cluster", "demo", "--services", "web", "--query", "services[0].taskDefinition", "--output", "text")
		if !strings.HasSuffix(td, "/web:"+rev) {
			var desc struct {
				TaskDefinition struct {
					ContainerDefinitions []struct {
						Name       string   `json:"name"`
						EntryPoint []string `json:"entryPoint"`
					} `json:"containerDefinitions"`
				} `json:"taskDefinition"`
				Tags []struct{ Key, Value string } `json:"tags"`
			}
			if err := json.Unmarshal([]byte(cli("ecs", "describe-task-definition", "--task-definition", td, "--include", "TAGS", "--output", "json")), &desc); err != nil {
				t.Fatal(err)
			}
			source := ""
			for _, tag := range desc.Tags {
				if tag.Key == "ecs-sidecar/source" {
					source = tag.Value
				}
			}
			names := []string{}
			for _, c := range desc.TaskDefinition.ContainerDefinitions {
				names = append(names, c.Name)
			}
			if source == rev && strings.Contains(strings.Join(names, ","), "datacollector-sidecar") {
				break
			}
			if source != "" { // the twin of the seed's revision, before our deploy was seen: wait
				t.Logf("service on %s (twin of %s); waiting for the twin of %s", td, source, rev)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not move to the twin of web:%s within 90s", rev)
		}
		time.Sleep(500 * time.Millisecond)
	}

	if err := run.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("reconciler run exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("reconciler run did not stop within 30s of SIGTERM")
	}
}
