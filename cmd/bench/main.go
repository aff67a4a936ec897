// Command bench is `make bench`: it runs internal/bench against the embedded
// AWS on 127.0.0.1, prints one table, and writes it to docs/benchmarks.md.
// It exits 1 when a target is missed (the document is written anyway).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/ecs-sidecar/reconciler/internal/bench"
)

func main() { os.Exit(run()) }

func run() int {
	o := bench.DefaultOptions()
	out := flag.String("out", "docs/benchmarks.md", "where to write the table and how it was made (empty: nowhere)")
	command := flag.String("command", "", "the command to name in the document (default: this one)")
	flag.StringVar(&o.Reconciler, "reconciler", "", "reconciler binary to run (default: go build ./cmd/reconciler into a temporary directory)")
	flag.IntVar(&o.ConvergeFamilies, "converge-families", o.ConvergeFamilies, "families of the convergence run")
	flag.Float64Var(&o.ThrottleScale, "throttle-scale", o.ThrottleScale, "refill rates of AWS's buckets are multiplied by this in the convergence run")
	flag.IntVar(&o.Families, "families", o.Families, "families of the large fleet")
	flag.IntVar(&o.ServicesPerFamily, "services-per-family", o.ServicesPerFamily, "services of each family of the large fleet")
	flag.IntVar(&o.Clusters, "clusters", o.Clusters, "clusters of the large fleet")
	flag.DurationVar(&o.FleetTimeout, "fleet-timeout", o.FleetTimeout, "give up on the large fleet's convergence or settling after this long")
	flag.DurationVar(&o.SweepInterval, "sweep-interval", o.SweepInterval, "both sweeps' interval in the process on the large fleet")
	flag.Float64Var(&o.RestartScale, "restart-scale", o.RestartScale, "refill rates of AWS's buckets are multiplied by this for the restart on the large fleet and what is measured after it (the process takes the default share)")
	flag.IntVar(&o.BigFamilies, "big-families", o.BigFamilies, "when set, also run a fleet of this many families (services-per-family each) for its peak RSS (25000: 50,000 services)")
	flag.IntVar(&o.InstallFamilies, "install-families", o.InstallFamilies, "families of the first install")
	flag.IntVar(&o.InstallServicesPerFamily, "install-services-per-family", o.InstallServicesPerFamily, "services of each family of the first install")
	flag.IntVar(&o.InstallClusters, "install-clusters", o.InstallClusters, "clusters of the first install")
	flag.Float64Var(&o.InstallScale, "install-scale", o.InstallScale, "the first install's time is divided by this (5-minute rollouts, sweep intervals, deadline; bucket refills multiplied)")
	flag.IntVar(&o.InstallPacing.RampStart, "install-ramp-start", o.InstallPacing.RampStart, "rollouts.rampStart of the first install")
	flag.IntVar(&o.InstallPacing.MaxInFlight, "install-max-in-flight", o.InstallPacing.MaxInFlight, "rollouts.maxInFlight (the ramp's ceiling) of the first install")
	flag.IntVar(&o.InstallPacing.PerCluster, "install-per-cluster", o.InstallPacing.PerCluster, "rollouts.maxInFlightPerCluster of the first install")
	flag.IntVar(&o.FailAt, "fail-at", o.FailAt, "the failure run fails a rollout once this many are in flight")
	flag.DurationVar(&o.InstallTimeout, "install-timeout", o.InstallTimeout, "give up on a first install after this long")
	flag.StringVar(&o.Only, "only", "", "run only these scenarios (comma-separated: convergence, install, fleet, big); for trying one out, the table is partial")
	flag.IntVar(&o.LatencySamples, "latency-samples", o.LatencySamples, "event-to-UpdateService samples")
	cpuProfile := flag.String("cpuprofile", "", "write the harness's CPU profile (the simulator's and the in-process reconciler's) to this file")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "bench: no arguments expected")
		return 2
	}
	o.Command = *command
	if o.Command == "" {
		o.Command = strings.Join(os.Args, " ")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := bench.Run(ctx, o, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	r.PrintTable(os.Stdout)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(r.Markdown()), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			return 1
		}
		fmt.Printf("wrote %s\n", *out)
	}
	if r.Failures > 0 {
		return 1
	}
	return 0
}
