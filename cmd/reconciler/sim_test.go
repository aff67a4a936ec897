package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/watch"
)

func TestSimFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--listen", "0.0.0.0:4566"}, "not a loopback address"},
		{[]string{"--listen", "192.0.2.1:4566"}, "not a loopback address"},
		{[]string{"--listen", "nope"}, "--listen"},
		{[]string{"--seed", "prod"}, `unknown seed "prod"`},
		{[]string{"--fail-image", "("}, "--fail-image"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--throttle-scale", "-1"}, "--throttle-scale: must not be negative"},
		{[]string{"--faults", "ecs:*:throttle=2"}, "--faults: fault \"ecs:*:throttle=2\": throttle=2: want a probability"},
		{[]string{"--faults", "ecs"}, "--faults: fault \"ecs\": want SERVICE:OPERATION:KEY=VALUE"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := realMain(env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}, append([]string{"sim"}, tc.args...))
			if code != exitUsage || !strings.Contains(stderr.String(), tc.msg) {
				t.Errorf("got exit %d, stderr %q; want %d and %q", code, stderr.String(), exitUsage, tc.msg)
			}
		})
	}
	if err := checkLoopback("[::1]:1", false); err != nil {
		t.Errorf("::1 refused: %v", err)
	}
	if err := checkLoopback("0.0.0.0:1", true); err != nil {
		t.Errorf("--allow-remote refused: %v", err)
	}
}

// freePort returns a TCP port free on 127.0.0.1 at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestSimWithAWSCLI builds the binary, serves `reconciler sim --seed demo`
// on loopback and talks to it with the real aws CLI, an independent client.
func TestSimWithAWSCLI(t *testing.T) {
	awsPath, err := exec.LookPath("aws")
	if err != nil {
		t.Fatalf("the aws CLI is required (installed on the machine and in CI): %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "reconciler")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port := freePort(t)
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	var simOut, simErr bytes.Buffer
	sim := exec.Command(bin, "sim", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--seed", "demo",
		"--rollout-delay", "0s", "--fail-image", ":broken$", "--log-level", "debug")
	sim.Stdout, sim.Stderr = &simOut, &simErr
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sim.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			sim.Process.Kill()
			<-exited
		}
	})
	waitReady(t, endpoint+"/_sim/state", exited)

	cliAt := func(endpoint string, args ...string) (map[string]any, string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsPath, append([]string{"--endpoint-url", endpoint, "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1",
			"AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
			"AWS_MAX_ATTEMPTS=1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var out map[string]any
		if err == nil && stdout.Len() > 0 {
			if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil {
				t.Fatalf("aws %v: output is not JSON: %v\n%s", args, jerr, stdout.String())
			}
		}
		return out, stderr.String(), err
	}
	cli := func(args ...string) (map[string]any, string, error) {
		t.Helper()
		return cliAt(endpoint, args...)
	}
	ok := func(args ...string) map[string]any {
		t.Helper()
		out, stderr, err := cli(args...)
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, stderr)
		}
		return out
	}

	out := ok("ecs", "list-clusters")
	if diff := cmp.Diff(out["clusterArns"], []any{"arn:aws:ecs:us-east-1:123456789012:cluster/demo"}); diff != "" {
		t.Errorf("list-clusters (-got +want):\n%s", diff)
	}
	// The CLI paginates by itself: pages of one service.
	out = ok("ecs", "list-services", "--cluster", "demo", "--page-size", "1")
	if got := len(out["serviceArns"].([]any)); got != 4 {
		t.Errorf("list-services: got %d services, want 4", got)
	}
	out = ok("ecs", "describe-task-definition", "--task-definition", "web:1", "--include", "TAGS")
	td := out["taskDefinition"].(map[string]any)
	if td["taskDefinitionArn"] != "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1" || td["status"] != "ACTIVE" {
		t.Errorf("describe-task-definition: got %v", td)
	}
	if diff := cmp.Diff(out["tags"], []any{map[string]any{"key": "ecs-sidecar/inject", "value": "true"}}); diff != "" {
		t.Errorf("tags (-got +want):\n%s", diff)
	}
	out = ok("ecs", "register-task-definition", "--family", "cli", "--requires-compatibilities", "FARGATE",
		"--network-mode", "awsvpc", "--cpu", "256", "--memory", "512",
		"--container-definitions", `[{"name":"app","image":"nginx:broken","essential":true}]`)
	if got := out["taskDefinition"].(map[string]any)["revision"]; got != float64(1) {
		t.Errorf("register-task-definition revision: got %v", got)
	}
	// The registration reached the demo queue through the demo rule, as
	// the CloudTrail event the reconciler parses.
	queueURL := awssim.DemoQueueURL(endpoint)
	out = ok("sqs", "receive-message", "--queue-url", queueURL, "--wait-time-seconds", "5", "--max-number-of-messages", "10")
	msgs, _ := out["Messages"].([]any)
	if len(msgs) != 1 {
		t.Fatalf("receive-message from %s: got %v, want the RegisterTaskDefinition event", queueURL, out)
	}
	msg := msgs[0].(map[string]any)
	ev, err := watch.Parse([]byte(msg["Body"].(string)))
	if err != nil || ev.Kind != watch.KindRegisterTaskDefinition || ev.Family != "cli" ||
		ev.TaskDefinitionArn != "arn:aws:ecs:us-east-1:123456789012:task-definition/cli:1" {
		t.Errorf("the event in the queue parsed as %+v, %v", ev, err)
	}
	ok("sqs", "delete-message", "--queue-url", queueURL, "--receipt-handle", msg["ReceiptHandle"].(string))
	out = ok("ecs", "list-task-definitions", "--family-prefix", "web", "--sort", "DESC")
	if diff := cmp.Diff(out["taskDefinitionArns"], []any{
		"arn:aws:ecs:us-east-1:123456789012:task-definition/web:2", "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1",
	}); diff != "" {
		t.Errorf("list-task-definitions (-got +want):\n%s", diff)
	}
	// A refused call: the CLI classifies the error by its code.
	_, stderr, err := cli("ecs", "update-service", "--cluster", "demo", "--service", "bluegreen", "--task-definition", "web:1")
	if err == nil || !strings.Contains(stderr, "(InvalidParameterException)") || !strings.Contains(stderr, "CODE_DEPLOY") {
		t.Errorf("update-service on CODE_DEPLOY: got %v, stderr %q", err, stderr)
	}
	// A bad image rolls back (the service has the circuit breaker's rollback on).
	ok("ecs", "update-service", "--cluster", "demo", "--service", "api", "--task-definition", "cli:1")
	var services []any
	for range 100 {
		out = ok("ecs", "describe-services", "--cluster", "demo", "--services", "api")
		services = out["services"].([]any)
		deps := services[0].(map[string]any)["deployments"].([]any)
		if len(deps) == 1 && deps[0].(map[string]any)["rolloutState"] == "COMPLETED" {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling the wall clock of a real server, not asserting on it
	}
	if got := services[0].(map[string]any)["taskDefinition"]; got != "arn:aws:ecs:us-east-1:123456789012:task-definition/api:1" {
		t.Errorf("api after a failed rollout: got %v, want rolled back to api:1", got)
	}
	out = ok("secretsmanager", "get-secret-value", "--secret-id", "ecs-sidecar/lacework-token")
	if out["SecretString"] != "demo-access-token" {
		t.Errorf("get-secret-value: got %v", out)
	}
	out = ok("ecr", "get-authorization-token")
	if len(out["authorizationData"].([]any)) != 1 {
		t.Errorf("get-authorization-token: got %v", out)
	}

	// SIGTERM stops it cleanly.
	if err := sim.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("sim exited with %v\nstderr:\n%s", err, simErr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("sim did not stop on SIGTERM")
	}
	if !strings.Contains(simOut.String(), "serving ECS, SQS, EventBridge, Secrets Manager and ECR on http://127.0.0.1:") ||
		!strings.Contains(simOut.String(), "events go to the queue "+queueURL) {
		t.Errorf("stdout: got %q", simOut.String())
	}
	if !strings.Contains(simErr.String(), "target=AmazonEC2ContainerServiceV20141113.ListClusters status=200") {
		t.Errorf("debug log lacks a request line:\n%s", simErr.String())
	}
}

// TestSimThrottleAndFaultFlags serves `reconciler sim` with --faults and
// --throttle-scale and checks, with the aws CLI, that they apply and are
// counted on /_sim/stats.
func TestSimThrottleAndFaultFlags(t *testing.T) {
	awsPath, err := exec.LookPath("aws")
	if err != nil {
		t.Fatalf("the aws CLI is required: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "reconciler")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port := freePort(t)
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	sim := exec.Command(bin, "sim", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--seed", "demo",
		"--throttle-scale", "1", "--faults", "ecs:ListClusters:error=1;sqs:*:latency=1ms", "--fault-seed", "3")
	var simErr bytes.Buffer
	sim.Stderr = &simErr
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sim.Wait() }()
	t.Cleanup(func() {
		sim.Process.Kill()
		<-exited
	})
	waitReady(t, endpoint+"/_sim/state", exited)
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsPath, append([]string{"--endpoint-url", endpoint, "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1",
			"AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_MAX_ATTEMPTS=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("ecs", "list-clusters"); err == nil || !strings.Contains(out, "(ServerException)") {
		t.Errorf("list-clusters with error=1: got %v\n%s", err, out)
	}
	if out, err := run("ecs", "list-services", "--cluster", "demo"); err != nil {
		t.Errorf("list-services (no fault): %v\n%s", err, out)
	}
	if out, err := run("sqs", "get-queue-attributes", "--queue-url", awssim.DemoQueueURL(endpoint), "--attribute-names", "RedrivePolicy"); err != nil ||
		!strings.Contains(out, awssim.DemoDLQ) {
		t.Errorf("get-queue-attributes of the demo queue: %v\n%s", err, out)
	}
	st, err := awssim.FetchStats(context.Background(), endpoint)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, c := range st.Calls {
		counts[c.Service+":"+c.Operation+":"+c.Result] = c.Count
	}
	if counts["ecs:ListClusters:ServerException"] != 1 || counts["ecs:ListServices:ok"] != 1 || counts["sqs:GetQueueAttributes:ok"] != 1 {
		t.Errorf("stats: %v", counts)
	}
	if len(st.Buckets) != len(awssim.ECSThrottleCategories) {
		t.Errorf("stats show %d buckets with --throttle-scale 1, want %d", len(st.Buckets), len(awssim.ECSThrottleCategories))
	}
}

// waitReady polls url until it answers 200, the process exits, or 30 s pass.
func waitReady(t *testing.T, url string, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("sim exited early: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("sim did not answer on %s", url)
}
