package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/controller"
)

// Exit codes of plan, as terraform plan -detailed-exitcode gives them.
const (
	planNoChanges = 0
	planError     = 1
	planChanges   = 2
)

func cmdPlan(e env, args []string) int {
	fs := newFlagSet(e, "plan", "[--config FILE] [--embedded] [--output table|json]")
	configPath := fs.String("config", e.getenv("RECONCILER_CONFIG"), "configuration file (YAML); env RECONCILER_CONFIG")
	output := fs.String("output", "table", "output format: table or json")
	embedded := fs.Bool("embedded", false, "plan against the embedded AWS with the demo seed (no account needed)")
	simListen := fs.String("sim-listen", "127.0.0.1:0", "with --embedded: loopback address of the embedded AWS")
	if code, done := parseFlags(e, fs, args); done {
		if code == exitUsage {
			return planError // plan's exit 2 means "changes": bad usage is an error
		}
		return code
	}
	if code, done := noArgs(e, fs); done {
		_ = code
		return planError
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(e.stderr, "reconciler plan: --output: want table or json, got %q\n", *output)
		return planError
	}
	cfg, err := loadConfig(e, *configPath)
	if err != nil {
		printConfigErrors(e.stderr, "reconciler plan", err)
		return planError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := newLogger(io.Discard, cfg.Log)
	var creds *aws.Credentials
	if *embedded {
		if err := checkLoopback(*simListen, false); err != nil {
			fmt.Fprintf(e.stderr, "reconciler plan: --sim-listen: %v\n", err)
			return planError
		}
		sim, err := startEmbedded(ctx, log, *simListen, cfg, *configPath != "")
		if err != nil {
			fmt.Fprintf(e.stderr, "reconciler plan: embedded AWS: %v\n", err)
			return planError
		}
		defer sim.stop()
		creds = &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test", Source: "embedded"}
	}
	if err := cfg.Validate(); err != nil {
		printConfigErrors(e.stderr, "reconciler plan", err)
		return planError
	}
	plans, err := plan(ctx, cfg, creds)
	if err != nil {
		fmt.Fprintf(e.stderr, "reconciler plan: %v\n", err)
		return planError
	}
	changes := false
	for _, p := range plans {
		changes = changes || len(p.Actions) > 0
	}
	if *output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(plans); err != nil {
			fmt.Fprintf(e.stderr, "reconciler plan: %v\n", err)
			return planError
		}
	} else {
		printPlan(e.stdout, plans)
	}
	if changes {
		return planChanges
	}
	return planNoChanges
}

// plan builds a dry-run controller on the configuration and plans every family.
func plan(ctx context.Context, cfg *config.Config, creds *aws.Credentials) ([]controller.FamilyPlan, error) {
	awsCfg, _, err := cloud.New(ctx, cloud.Options{
		Region: cfg.AWS.Region, Endpoint: cfg.AWS.Endpoint, StaticCredentials: creds,
		MaxAttempts: cfg.AWS.MaxAttempts, BudgetShare: cfg.AWS.APIBudget.Share, AppID: "ecs-sidecar-reconciler",
	})
	if err != nil {
		return nil, err
	}
	images, err := configuredImages(cfg, awsCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	ctl, err := controller.New(controller.Options{
		ECS: ecs.NewFromConfig(awsCfg), Images: images, TagPrefix: cfg.TagPrefix, Rules: cfg.Policies, TagProfiles: cfg.TagProfilePolicy(),
		Profile: cfg.Profile, DefaultProfile: cfg.DefaultProfile, Mode: cfg.Mode,
		RevertOnOptOut: cfg.Rollouts.OnOptOut == config.OnOptOutRevert,
		MaxInFlight:    cfg.Rollouts.MaxInFlight, MaxInFlightPerCluster: cfg.Rollouts.MaxInFlightPerCluster,
		Canary: cfg.Rollouts.Canary, RolloutDeadline: cfg.Rollouts.Deadline.Duration,
		ContestedAfter: cfg.Rollouts.ContestedAfter, ContestedWindow: cfg.Rollouts.ContestedWindow.Duration,
		OwnerTag:              cfg.OwnerTag,
		DeregisterUnusedTwins: cfg.Cleanup.DeregisterUnusedTwins,
		DryRun:                true,
	})
	if err != nil {
		return nil, err
	}
	return ctl.Plan(ctx)
}

// printPlan writes the plan as a table: one line per family, then one line
// per action it would take.
func printPlan(w io.Writer, plans []controller.FamilyPlan) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FAMILY\tDECISION\tREASON\tACTION\tDETAIL")
	n := 0
	for _, p := range plans {
		decision := "leave"
		if p.Instrument {
			decision = "instrument"
		}
		var details []string
		if p.Owner != "" && p.Owner != controller.OwnerNone {
			details = append(details, "managed by "+p.Owner)
		}
		if len(p.Refused) > 0 {
			details = append(details, "refused: "+strings.Join(p.Refused, ", "))
		}
		if len(p.Skipped) > 0 {
			details = append(details, "left alone: "+strings.Join(p.Skipped, ", "))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Family, decision, p.Reason, "-", strings.Join(details, "; "))
		for _, a := range p.Actions {
			if a.Kind != controller.ActionForgedTwin && a.Kind != controller.ActionServiceContested {
				n++ // a write; the others are findings
			}
			fmt.Fprintf(tw, "\t\t\t%s\t%s\n", a.Kind, describe(a))
		}
	}
	tw.Flush()
	if n == 0 {
		fmt.Fprintln(w, "\nNo changes: every service is where the configuration wants it.")
	} else {
		fmt.Fprintf(w, "\n%d change(s) would be made. Nothing was written.\n", n)
	}
}

// describe is the one-line detail of an action.
func describe(a controller.Action) string {
	switch a.Kind {
	case controller.ActionRegisterTwin:
		d := fmt.Sprintf("twin of %s (spec %s, containers %s", short(a.Source), a.Spec, strings.Join(a.Containers, ","))
		if len(a.Skipped) > 0 {
			d += "; left alone " + strings.Join(a.Skipped, ",")
		}
		return d + ")"
	case controller.ActionUpdateService, controller.ActionReturnToSource:
		return fmt.Sprintf("%s/%s: %s -> %s %s", short(a.Cluster), short(a.Service), short(a.From), short(a.To), a.Reason)
	case controller.ActionRestoreSource:
		return fmt.Sprintf("register %s again from %s", short(a.Source), short(a.Twin))
	case controller.ActionDeregisterTwin:
		return fmt.Sprintf("%s (its source %s is deregistered, no service runs it)", short(a.Twin), short(a.Source))
	case controller.ActionServiceContested:
		return fmt.Sprintf("%s/%s stays on %s: moved back from %s too often", short(a.Cluster), short(a.Service), short(a.From), short(a.Twin))
	case controller.ActionMarkFailed:
		return fmt.Sprintf("%s: %s", short(a.Twin), a.Reason)
	}
	return ""
}

// short drops the ARN prefix of a resource: family:rev, cluster, service.
func short(arn string) string {
	if i := strings.LastIndexByte(arn, '/'); i >= 0 && strings.HasPrefix(arn, "arn:") {
		return arn[i+1:]
	}
	if strings.HasPrefix(arn, "(twin of ") {
		return "(twin of " + short(strings.TrimSuffix(strings.TrimPrefix(arn, "(twin of "), ")")) + ")"
	}
	return arn
}
