// Package moto starts moto_server, the AWS emulator that comes with the
// machine's Python, on 127.0.0.1 for tests: an independent implementation
// that keeps our own simulator honest.
package moto

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// Start runs moto_server on a loopback port of its own choosing and returns
// its base URL. The server is stopped when the test ends. A missing
// moto_server fails the test: CI has it, and a skipped conformance test
// would hide a gap.
//
// The port is the one the server reports it bound (port 0 asks the kernel
// for a free one), not one found free beforehand: with a port picked by
// the test and released before moto_server bound it, two tests of packages
// running at once could be given the same one, the second server then
// failed to bind, and its test, whose readiness check the first server
// answered, shared the other test's account.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("moto_server not found (it comes with the machine's Python moto package): %v", err)
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	bound := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		bound <- boundURL(stderr)
		_, _ = io.Copy(io.Discard, stderr) // its request log, until it exits
	}()
	exited := make(chan struct{})
	var waitErr error
	go func() { <-drained; waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// moto_server may start workers: stop the whole process group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var url string
	select {
	case url = <-bound:
	case <-ctx.Done():
		t.Fatal("moto_server did not say which port it bound within 60s")
	}
	if url == "" {
		<-exited
		t.Fatalf("moto_server exited before it said which port it bound: %v", waitErr)
	}
	for {
		resp, err := http.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return url
		}
		select {
		case <-exited:
			t.Fatalf("moto_server exited before it answered: %v", waitErr)
		case <-ctx.Done():
			t.Fatalf("moto_server did not answer on %s within 60s", url)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// running is the line werkzeug (moto_server's HTTP server) writes once it
// listens: " * Running on http://127.0.0.1:PORT".
var running = regexp.MustCompile(`Running on (http://127\.0\.0\.1:[0-9]+)`)

// boundURL reads moto_server's output until it says where it listens, and
// returns that URL, or "" if the output ended first.
func boundURL(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if m := running.FindStringSubmatch(sc.Text()); m != nil {
			return m[1]
		}
	}
	return ""
}
