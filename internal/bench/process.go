package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processConfig is what the harness sets in the reconciler's config file;
// everything else is the default.
type processConfig struct {
	endpoint, queueURL, secretArn string
	bucketScale                   float64
	// share is aws.apiBudget.share; 0: 1 (the whole bucket, as the
	// convergence run has it). defaultShare: the default, 0.5.
	share       float64
	workers     int
	maxInFlight int // 0: the default
	// sweepInterval, when set, is both sweeps' interval, without jitter,
	// and familyRate the family sweep's calls per second.
	sweepInterval time.Duration
	familyRate    float64
	// serviceInterval and familyInterval, when set, are the sweeps'
	// intervals with the default jitter (the install runs: the defaults
	// scaled down); sweepInterval must be 0 then.
	serviceInterval, familyInterval time.Duration
	// rollouts, when set, replaces the rollouts section (canary off and
	// maxInFlight otherwise).
	rollouts *RolloutPacing
}

// defaultShare asks processConfig for the default aws.apiBudget.share.
const defaultShare = -1

// RolloutPacing is the rollouts section of a first install's config: the
// pacing keys, canary, and the deadline (set by the run: the default, scaled).
type RolloutPacing struct {
	MaxInFlight, PerCluster, RampStart int
	Canary                             bool
	deadline                           time.Duration
	poll                               time.Duration // rollouts.poll
}

func (c processConfig) yaml(metricsListen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "aws:\n  region: us-east-1\n  endpoint: %s\n  maxAttempts: 10\n", c.endpoint)
	switch c.share {
	case defaultShare:
		fmt.Fprintf(&b, "  apiBudget:\n    bucketScale: %g\n", c.bucketScale)
	case 0:
		fmt.Fprintf(&b, "  apiBudget:\n    share: 1\n    bucketScale: %g\n", c.bucketScale)
	default:
		fmt.Fprintf(&b, "  apiBudget:\n    share: %g\n    bucketScale: %g\n", c.share, c.bucketScale)
	}
	fmt.Fprintf(&b, "queue:\n  url: %s\n", c.queueURL)
	if c.workers > 0 {
		fmt.Fprintf(&b, "workers: %d\n", c.workers)
	}
	switch {
	case c.sweepInterval > 0:
		fmt.Fprintf(&b, "sweeps:\n  services: {interval: %s, jitter: 0}\n  families: {interval: %s, jitter: 0, maxCallsPerSecond: %g}\n",
			c.sweepInterval, c.sweepInterval, c.familyRate)
	case c.serviceInterval > 0:
		fmt.Fprintf(&b, "sweeps:\n  services: {interval: %s}\n  families: {interval: %s, maxCallsPerSecond: %g}\n",
			c.serviceInterval, c.familyInterval, c.familyRate)
	}
	if r := c.rollouts; r != nil {
		fmt.Fprintf(&b, "rollouts:\n  canary: %t\n  maxInFlight: %d\n  maxInFlightPerCluster: %d\n  rampStart: %d\n  deadline: %s\n  poll: %s\n",
			r.Canary, r.MaxInFlight, r.PerCluster, r.RampStart, r.deadline, r.poll)
	} else {
		b.WriteString("rollouts:\n  canary: false\n")
		if c.maxInFlight > 0 {
			fmt.Fprintf(&b, "  maxInFlight: %d\n  maxInFlightPerCluster: %d\n", c.maxInFlight, c.maxInFlight)
		}
	}
	b.WriteString("images:\n  resolve: false\n")
	fmt.Fprintf(&b, "metrics:\n  listen: %s\n", metricsListen)
	b.WriteString("log:\n  format: json\n  level: warn\n")
	fmt.Fprintf(&b, "profiles:\n  lacework:\n    tokenSecretArn: %s\n", c.secretArn)
	return b.String()
}

// process is a running `reconciler run --config FILE`.
type process struct {
	cmd     *exec.Cmd
	metrics string // http://127.0.0.1:port/metrics
	logPath string
	exited  chan struct{}
	err     error
}

// buildReconciler builds ./cmd/reconciler into dir.
func buildReconciler(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "reconciler")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/reconciler")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/reconciler: %v\n%s", err, out)
	}
	return bin, nil
}

// freePort returns a loopback port nobody listens on now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startProcess(bin, dir, name string, c processConfig) (*process, error) {
	listen, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(c.yaml(listen)), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	// Dummy credentials, and no shared config or instance metadata: the
	// process talks to the simulator only.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"),
		"AWS_EC2_METADATA_DISABLED=true",
	}
	for _, k := range []string{"GOMEMLIMIT", "GOGC"} {
		// The Go runtime's settings, as a deployment may set them.
		if v := os.Getenv(k); v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &process{cmd: cmd, metrics: "http://" + listen + "/metrics", logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM and waits (SIGKILL after 20 s).
func (p *process) stop() error {
	select {
	case <-p.exited:
		return fmt.Errorf("the reconciler had exited: %v; log %s:\n%s", p.err, p.logPath, p.logTail())
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("the reconciler did not stop within 20s of SIGTERM")
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		return p.err
	}
	if p.err != nil {
		return fmt.Errorf("the reconciler exited with %v; log %s:\n%s", p.err, p.logPath, p.logTail())
	}
	return nil
}

func (p *process) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("the reconciler exited: %v; log %s:\n%s", p.err, p.logPath, p.logTail())
	default:
		return nil
	}
}

func (p *process) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// memory reads VmHWM (peak resident set) and VmRSS from /proc, in bytes.
func (p *process) memory() (hwm, rss int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return parseStatus(f)
}

// parseStatus reads VmHWM and VmRSS (kB) of a /proc/PID/status.
func parseStatus(r io.Reader) (hwm, rss int64, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, 0, fmt.Errorf("%s: unexpected %q", k, v)
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if k == "VmHWM" {
			hwm = n << 10
		} else {
			rss = n << 10
		}
	}
	if hwm == 0 {
		return 0, 0, errors.New("no VmHWM in /proc status")
	}
	return hwm, rss, sc.Err()
}

// scrape reads the process's metrics: the sum of each series name's
// samples whose labels contain every one of the given label strings.
func (p *process) scrape(ctx context.Context) (promText, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.metrics, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return promText(b), nil
}

type promText []byte

// sum adds the samples of metric whose label set contains each of labels
// (`result="success"`).
func (t promText) sum(metric string, labels ...string) float64 {
	total := 0.0
	for _, line := range strings.Split(string(t), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		series := name
		if i := strings.IndexByte(name, '{'); i >= 0 {
			// Labels may hold spaces: cut at the closing brace.
			j := strings.LastIndexByte(line, '}')
			if j < 0 {
				continue
			}
			series, rest = line[:i], strings.TrimSpace(line[j+1:])
			name = line[:j+1]
		}
		if series != metric {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(name, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		if err == nil {
			total += v
		}
	}
	return total
}
