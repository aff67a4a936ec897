//go:build !noembedded

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// cmdSim serves the embedded AWS (internal/awssim) until SIGINT or SIGTERM.
func cmdSim(e env, args []string) int {
	fs := newFlagSet(e, "sim", "[flags]")
	listen := fs.String("listen", "127.0.0.1:4566", "address to serve the embedded AWS on (loopback only unless --allow-remote)")
	allowRemote := fs.Bool("allow-remote", false, "allow a --listen address that is not loopback (the simulator has no authentication)")
	seed := fs.String("seed", "", "initial state: empty, or \"demo\"")
	region := fs.String("region", awssim.DefaultRegion, "AWS Region the simulator answers for")
	rolloutDelay := fs.Duration("rollout-delay", 5*time.Second, "time a service deployment takes to reach its outcome")
	failImage := fs.String("fail-image", "", "regexp: rollouts of task definitions with a matching container image fail")
	logLevel := fs.String("log-level", "info", "debug (one line per request), info, warn or error")
	throttleScale := fs.Float64("throttle-scale", 0, "turn on ECS's token buckets (burst and refill per category, as AWS documents them), refill rates multiplied by this factor (1: AWS's rates, 10: ten times faster); 0: no throttling")
	faults := fs.String("faults", "", "inject faults, separated by ';': SERVICE:OPERATION:KEY=VALUE[,KEY=VALUE...]\n"+
		"SERVICE is ecs, sqs, events, secretsmanager, ecr, sts, iam, cloudtrail or *; OPERATION a name (UpdateService) or *;\n"+
		"keys: throttle=P (throttling error), error=P (500), drop=P (connection closed after serving; the call takes effect)\n"+
		"with P a probability in [0,1], and latency=D or latency=LO-HI (added delay, uniform: 100ms, 0-100ms, 10ms-1s).\n"+
		"The most specific key wins. Example: \"ecs:*:throttle=0.2,error=0.05,latency=0-100ms,drop=0.01;sqs:ReceiveMessage:latency=50ms\"")
	faultSeed := fs.Int64("fault-seed", 1, "seed of the random draws of --faults (the same seed and calls give the same faults)")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if code, done := noArgs(e, fs); done {
		return code
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "reconciler sim: "+format+"\n", a...)
		return exitUsage
	}
	if *seed != "" && *seed != "demo" {
		return usageErr("--seed: unknown seed %q (want \"\" or \"demo\")", *seed)
	}
	if err := checkLoopback(*listen, *allowRemote); err != nil {
		return usageErr("--listen: %v", err)
	}
	var rule awssim.RolloutRule
	if *failImage != "" {
		re, err := regexp.Compile(*failImage)
		if err != nil {
			return usageErr("--fail-image: %v", err)
		}
		rule = awssim.FailImages(re)
	}
	if *rolloutDelay < 0 {
		return usageErr("--rollout-delay: must not be negative")
	}
	if *throttleScale < 0 {
		return usageErr("--throttle-scale: must not be negative")
	}
	faultSpecs, err := awssim.ParseFaults(*faults)
	if err != nil {
		return usageErr("--faults: %v", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageErr("--log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sim := awssim.New(awssim.Options{
		Region: *region, Clock: awssim.RealClock(), RolloutDelay: *rolloutDelay, RolloutRule: rule, Logger: log,
		ThrottleScale: *throttleScale, Faults: faultSpecs, Seed: *faultSeed,
	})
	if *seed == "demo" {
		if err := sim.SeedDemo(ctx); err != nil {
			fmt.Fprintf(e.stderr, "reconciler sim: seeding: %v\n", err)
			return exitFail
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(e.stderr, "reconciler sim: %v\n", err)
		return exitFail
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	endpoint := "http://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "reconciler sim: serving ECS, SQS, EventBridge, Secrets Manager and ECR on %s (region %s, seed %q); journal at /_sim/journal, state at /_sim/state, counters at /_sim/stats\n",
		endpoint, *region, *seed)
	if *seed == "demo" {
		fmt.Fprintf(e.stdout, "reconciler sim: ECS's events go to the queue %s\n", awssim.DemoQueueURL(endpoint))
	}
	if *throttleScale > 0 || len(faultSpecs) > 0 {
		log.Info("throttling and faults", "throttle-scale", *throttleScale, "faults", *faults, "fault-seed", *faultSeed)
	}

	// Rollouts complete on the wall clock: Step makes them happen (and be
	// journaled) on time even when nobody calls.
	defer sim.StepEvery(100 * time.Millisecond)()
	for {
		select {
		case err := <-served:
			fmt.Fprintf(e.stderr, "reconciler sim: %v\n", err)
			return exitFail
		case <-ctx.Done():
			log.Info("stopping")
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(shutdownCtx); err != nil {
				fmt.Fprintf(e.stderr, "reconciler sim: shutdown: %v\n", err)
				return exitFail
			}
			if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintf(e.stderr, "reconciler sim: %v\n", err)
				return exitFail
			}
			return exitOK
		}
	}
}
