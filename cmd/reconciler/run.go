package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecs-sidecar/reconciler/internal/audit"
	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/lease"
	"github.com/ecs-sidecar/reconciler/internal/watch"
)

func cmdRun(e env, args []string) int {
	fs := newFlagSet(e, "run", "[--config FILE] [--embedded]")
	configPath := fs.String("config", e.getenv("RECONCILER_CONFIG"), "configuration file (YAML); env RECONCILER_CONFIG")
	embedded := fs.Bool("embedded", false, "run against the embedded AWS (demo seed) served on --sim-listen: no account needed")
	simListen := fs.String("sim-listen", "127.0.0.1:4566", "with --embedded: loopback address of the embedded AWS, for the aws CLI")
	perFamily := fs.Bool("metrics-per-family", e.getenv("RECONCILER_METRICS_PER_FAMILY") == "true",
		"add ecs_sidecar_family_services{cluster,family,state,reason}: one series per family and state; env RECONCILER_METRICS_PER_FAMILY")
	pprofAddr := fs.String("pprof", e.getenv("RECONCILER_PPROF"),
		"serve Go's runtime profiles (/debug/pprof/) on this loopback address, e.g. 127.0.0.1:6060; off when empty; env RECONCILER_PPROF")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if code, done := noArgs(e, fs); done {
		return code
	}
	if *embedded {
		if err := checkLoopback(*simListen, false); err != nil {
			fmt.Fprintf(e.stderr, "reconciler run: --sim-listen: %v\n", err)
			return exitUsage
		}
	}
	cfg, err := loadConfig(e, *configPath)
	if err != nil {
		printConfigErrors(e.stderr, "reconciler run", err)
		return exitFail
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *embedded && *configPath == "" {
		cfg.Log.Format = config.LogFormatText // a demo read by a person
	}
	obs := observability{perFamily: *perFamily}
	if *embedded && cfg.Metrics.Listen == config.DefaultMetricsListen {
		cfg.Metrics.Listen, obs.anyPortIfBusy = demoMetricsListen, true
	}
	log := newLogger(e.stderr, cfg.Log)
	if *pprofAddr != "" {
		_, stopPprof, err := servePprof(log, *pprofAddr)
		if err != nil {
			fmt.Fprintf(e.stderr, "reconciler run: --pprof: %v\n", err)
			return exitUsage
		}
		defer stopPprof()
	}

	var creds *aws.Credentials
	if *embedded {
		sim, err := startEmbedded(ctx, log, *simListen, cfg, *configPath != "")
		if err != nil {
			fmt.Fprintf(e.stderr, "reconciler run: embedded AWS: %v\n", err)
			return exitFail
		}
		defer sim.stop()
		creds = &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "embedded"}
	}
	if err := cfg.ValidateRun(*embedded); err != nil {
		printConfigErrors(e.stderr, "reconciler run", err)
		return exitFail
	}
	if err := runReconciler(ctx, log, cfg, creds, obs); err != nil {
		log.Error("reconciler stopped", "err", err)
		return exitFail
	}
	return exitOK
}

// loadConfig reads the file; without one, the whole YAML document in
// RECONCILER_CONFIG_YAML (a container with a read-only root filesystem gets
// its configuration that way, see deploy/cloudformation); without either, the
// defaults. The environment's fallbacks (aws.region from AWS_REGION, then
// AWS_DEFAULT_REGION) apply in every case.
func loadConfig(e env, path string) (*config.Config, error) {
	if path != "" {
		return config.LoadWith(path, e.getenv)
	}
	doc := e.getenv("RECONCILER_CONFIG_YAML")
	if strings.TrimSpace(doc) == "" {
		return config.FromEnv(e.getenv)
	}
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		return nil, fmt.Errorf("config from RECONCILER_CONFIG_YAML: %w", err)
	}
	for _, v := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if cfg.AWS.Region == "" {
			cfg.AWS.Region = e.getenv(v)
		}
	}
	return cfg, nil
}

// printConfigErrors lists every problem of the configuration, one an
// indented line. The config package joins problems with errors.Join at more
// than one level (the decoder's, then Validate's inside them) and wraps the
// result in where it came from ("config FILE: ..."): the joins are flattened,
// and the wrapping's prefix goes into the header line.
func printConfigErrors(w io.Writer, cmd string, err error) {
	where, problems := configProblems(err)
	if where != "" {
		fmt.Fprintf(w, "%s: %s: invalid configuration:\n", cmd, where)
	} else {
		fmt.Fprintf(w, "%s: invalid configuration:\n", cmd)
	}
	for _, p := range problems {
		first, rest, _ := strings.Cut(p, "\n")
		fmt.Fprintf(w, "  %s\n", first)
		if rest != "" {
			fmt.Fprintf(w, "%s\n", indent(rest, "    "))
		}
	}
}

// configProblems returns the problems of a (joined) configuration error, each
// on its own, and the prefix the joined error was wrapped in, if any.
func configProblems(err error) (where string, problems []string) {
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		return "", []string{err.Error()}
	}
	je, ok := joined.(error)
	if !ok {
		return "", []string{err.Error()}
	}
	if msg, inner := err.Error(), je.Error(); msg != inner {
		if !strings.HasSuffix(msg, ": "+inner) {
			return "", []string{msg} // a wrapping that rewrites the message: keep it whole
		}
		where = strings.TrimSuffix(msg, ": "+inner)
	}
	for _, e := range joined.Unwrap() {
		if e == nil {
			continue
		}
		ctx, ps := configProblems(e)
		for _, p := range ps {
			if ctx != "" {
				p = ctx + ": " + p
			}
			problems = append(problems, p)
		}
	}
	return where, problems
}

func newLogger(w io.Writer, l config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.SlogLevel()}
	if l.Format == config.LogFormatText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// bucketsOf returns the buckets the budget's share is taken of: AWS's (nil),
// or, with a bucket scale other than 1 (a simulator scaled the same way),
// AWS's with their refill rates scaled.
func bucketsOf(b config.APIBudget) map[cloud.Category]cloud.Bucket {
	if b.BucketScale == 0 || b.BucketScale == 1 {
		return nil
	}
	return cloud.ScaledBuckets(b.BucketScale)
}

// runReconciler wires the clients, the controller and the queue consumer,
// and runs them until ctx ends; then in-flight reconciles finish and held
// messages return to the queue.
func runReconciler(ctx context.Context, log *slog.Logger, cfg *config.Config, creds *aws.Credentials, o observability) error {
	var ctl *controller.Controller
	reg, obs := newMetrics(func(f func(controller.ServiceStatus)) { ctl.EachCoverage(f) }, o.perFamily) // ctl is made below
	awsCfg, _, err := cloud.New(ctx, cloud.Options{
		Region: cfg.AWS.Region, Endpoint: cfg.AWS.Endpoint, StaticCredentials: creds,
		MaxAttempts: cfg.AWS.MaxAttempts, BudgetShare: cfg.AWS.APIBudget.Share,
		Buckets: bucketsOf(cfg.AWS.APIBudget),
		AppID:   watch.ReconcilerAppID, Observe: obs.APICall,
	})
	if err != nil {
		return err
	}
	images, err := configuredImages(cfg, awsCfg, log)
	if err != nil {
		return err
	}
	var tagging controller.TaggingAPI
	if cfg.Sweeps.Families.TaggingAPI {
		tagging = resourcegroupstaggingapi.NewFromConfig(awsCfg)
	}
	var consumer *watch.Consumer
	var ls *leases
	var gate controller.Leases // nil without leases (not a nil leaseGate)
	if cfg.Leases.Enabled() {
		if ls, err = newLeases(cfg.Leases, awsCfg, log, reg, nil); err != nil {
			return err
		}
		gate = leaseGate{ls.m}
	}
	var trail *audit.Publisher
	if cfg.Audit.EventBus != "" {
		if trail, err = audit.New(eventbridge.NewFromConfig(awsCfg), cfg.Audit.EventBus, log); err != nil {
			return err
		}
	}
	ctl, err = controller.New(controller.Options{
		Observer:     obs,
		QueueMetrics: obs.QueueMetrics(),
		OnAction: func(a controller.Action) {
			if trail != nil {
				trail.Add(a)
			}
		},
		ECS:                   ecs.NewFromConfig(awsCfg),
		Images:                images,
		TagPrefix:             cfg.TagPrefix,
		Rules:                 cfg.Policies,
		TagProfiles:           cfg.TagProfilePolicy(),
		Profile:               cfg.Profile,
		DefaultProfile:        cfg.DefaultProfile,
		Mode:                  cfg.Mode,
		RevertOnOptOut:        cfg.Rollouts.OnOptOut == config.OnOptOutRevert,
		MaxInFlight:           cfg.Rollouts.MaxInFlight,
		MaxInFlightPerCluster: cfg.Rollouts.MaxInFlightPerCluster,
		RampStart:             cfg.Rollouts.RampStart,
		Canary:                cfg.Rollouts.Canary,
		RolloutDeadline:       cfg.Rollouts.Deadline.Duration,
		RolloutPoll:           cfg.Rollouts.Poll.Duration,
		ContestedAfter:        cfg.Rollouts.ContestedAfter,
		OwnerTag:              cfg.OwnerTag,
		ContestedWindow:       cfg.Rollouts.ContestedWindow.Duration,
		DeregisterUnusedTwins: cfg.Cleanup.DeregisterUnusedTwins,
		Workers:               cfg.Workers,
		ServiceSweep:          cfg.Sweeps.Services.Interval.Duration,
		FamilySweep:           cfg.Sweeps.Families.Interval.Duration,
		Jitter:                cfg.Sweeps.Services.Jitter,
		FamilySweepRate:       cfg.Sweeps.Families.MaxCallsPerSecond,
		Tagging:               tagging,
		Logger:                log,
		OnSuccess: func(ctx context.Context, family string, started time.Time) {
			if consumer != nil {
				consumer.Done(ctx, family, started)
			}
		},
		Leases: gate,
		OnNotOwned: func(ctx context.Context, family, reason string) {
			if ls == nil {
				return // told only with leases
			}
			ls.notOwned.WithLabelValues(reason).Inc()
			if consumer != nil && reason != controller.NotOwnedQueued {
				consumer.GiveBack(ctx, family) // the owner is to receive them
			}
		},
	})
	if err != nil {
		return err
	}
	if cfg.Queue.URL != "" {
		// Events of another account or Region trigger nothing.
		account, err := watch.OwnAccount(ctx, sts.NewFromConfig(awsCfg), cfg.Queue.URL)
		if err != nil {
			log.Warn("the reconciler's account is not known from STS: events are checked against the queue's account", "account", account, "err", err)
		}
		var owns func(string) bool
		if ls != nil {
			owns = func(family string) bool { _, ok := ls.m.Owns(family); return ok }
		}
		consumer, err = watch.NewConsumer(sqs.NewFromConfig(awsCfg), watch.ConsumerOptions{
			QueueURL:    cfg.Queue.URL,
			Account:     account,
			Region:      awsCfg.Region,
			WaitTime:    time.Duration(cfg.Queue.WaitTimeSeconds) * time.Second,
			Visibility:  cfg.Queue.VisibilityTimeout.Duration,
			MaxMessages: int32(cfg.Queue.MaxMessages),
			MaxHold:     cfg.Queue.MaxHold.Duration,
			Enqueue:     ctl.Enqueue,
			Resolve: func(ctx context.Context, ev watch.Event) (string, error) {
				family, err := ctl.ResolveService(ctx, ev.Cluster, ev.Service)
				if errors.Is(err, controller.ErrServiceGone) {
					return "", fmt.Errorf("%w: %v", watch.ErrNoFamily, err)
				}
				return family, err
			},
			Observe: func(kind watch.Kind, outcome string) { obs.EventObserved(string(kind), outcome) },
			Lag:     func(kind watch.Kind, d time.Duration) { obs.EventLag(string(kind), d) },
			Logger:  log,

			// With leases: events of other replicas' families go back to the queue.
			Owns:             owns,
			GiveBackReceives: cfg.Leases.GiveBackReceives,
		})
		if err != nil {
			return err
		}
	} else {
		log.Warn("no queue configured: changes are found by the sweeps only", "service_sweep", cfg.Sweeps.Services.Interval.String())
	}

	log.Info("reconciler starting", "region", awsCfg.Region, "endpoint", cfg.AWS.Endpoint, "mode", cfg.Mode,
		"queue", cfg.Queue.URL, "workers", cfg.Workers, "profiles", strings.Join(cfg.ProfileNames(), ","))
	if ls != nil {
		log.Info("leases on: this replica reconciles the families of the shards it holds", "table", cfg.Leases.Table,
			"shards", cfg.Leases.Shards, "lease", cfg.Leases.Duration.String(), "owner", ls.m.Owner())
	}
	if names := cfg.LaceworkProfilesWithoutToken(); len(names) > 0 {
		log.Warn("profiles inject no access token: the agent must find it in the image's config.json or the container's variables",
			"profiles", strings.Join(names, ","))
	}
	srv, err := serveMetrics(log, cfg.Metrics.Listen, o.anyPortIfBusy, reg, obs, ctl.Swept())
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	// A component that fails for good stops the others: the process exits
	// with its error instead of running half.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	leasesDone := make(chan struct{})
	if ls != nil {
		// The leases outlive ctx: renewed while in-flight reconciles
		// finish their write batches, given back once the controller and
		// the consumer have stopped.
		lctx, stopLeases := context.WithCancel(context.WithoutCancel(ctx))
		defer func() {
			stopLeases()
			<-leasesDone
		}()
		ls.onRound = func(held []lease.Fence) { ctl.LeasesChanged(fences(held)) }
		go func() {
			defer close(leasesDone)
			ls.run(lctx)
		}()
	} else {
		close(leasesDone)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if ls != nil {
			// Nothing is written before the first lease round: until then
			// this replica cannot know which families are its own.
			select {
			case <-ctx.Done():
				errs <- nil
				return
			case <-ls.first:
			}
		}
		err := ctl.Run(ctx)
		if err != nil {
			log.Error("controller stopped", "err", err)
			cancel()
		}
		errs <- err
	}()
	if consumer != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Messages are received only once the workers run: a message
			// held by a process that cannot reconcile yet (its first sweep
			// fails under throttling) would be received again and again
			// across restarts and end in the dead-letter queue.
			select {
			case <-ctx.Done():
				errs <- nil
				return
			case <-ctl.Swept():
			}
			err := consumer.Run(ctx)
			if err != nil {
				log.Error("queue consumer stopped", "err", err)
				cancel()
			}
			errs <- err
		}()
	}
	if trail != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			trail.Run(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	log.Info("reconciler stopped")
	return errors.Join(all...)
}
