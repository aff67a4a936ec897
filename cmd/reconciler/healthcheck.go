package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// defaultHealthURL is /healthz on the default metrics port, from inside the
// reconciler's own container.
const defaultHealthURL = "http://127.0.0.1:9102/healthz"

// cmdHealthcheck probes /healthz: the container health check of an image
// with no shell and no curl (HEALTHCHECK / ECS healthCheck
// ["CMD", "/reconciler", "healthcheck"]). Exit 0 on 200, 1 otherwise.
func cmdHealthcheck(e env, args []string) int {
	fs := newFlagSet(e, "healthcheck", "[--url URL] [--timeout 2s]")
	target := fs.String("url", envOr(e, "RECONCILER_HEALTHCHECK_URL", defaultHealthURL), "URL to probe; env RECONCILER_HEALTHCHECK_URL")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if code, done := noArgs(e, fs); done {
		return code
	}
	u, err := url.Parse(*target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(e.stderr, "reconciler healthcheck: --url: want an http(s) URL, got %q\n", *target)
		return exitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintf(e.stderr, "reconciler healthcheck: --timeout: must be positive\n")
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		fmt.Fprintf(e.stderr, "reconciler healthcheck: %v\n", err)
		return exitFail
	}
	// No proxy: the probe is of this container, whatever the environment says.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(e.stderr, "reconciler healthcheck: %v\n", err)
		return exitFail
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(e.stderr, "reconciler healthcheck: %s: %s\n", u.Redacted(), resp.Status)
		return exitFail
	}
	fmt.Fprintf(e.stdout, "ok\n")
	return exitOK
}

func envOr(e env, name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}
