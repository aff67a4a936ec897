//go:build !noembedded

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// embeddedAWS is the simulator served on loopback for `run --embedded`.
type embeddedAWS struct {
	url  string
	stop func()
}

// serveSim serves sim on listen until stop is called, stepping its rollouts
// on the wall clock so that deployments complete on time.
func serveSim(sim *awssim.Sim, listen string) (url string, served <-chan error, stop func(), err error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", nil, nil, err
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	stopStepping := sim.StepEvery(100 * time.Millisecond)
	stop = func() {
		stopStepping()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return "http://" + ln.Addr().String(), errc, stop, nil
}

// startEmbedded starts the simulator with the demo seed and points cfg at
// it. Without a config file, it also gives the lacework profile the demo's
// token secret and short sweeps, so that the demo reacts within seconds.
func startEmbedded(ctx context.Context, log *slog.Logger, listen string, cfg *config.Config, fromFile bool) (*embeddedAWS, error) {
	sim := awssim.New(awssim.Options{Region: awssim.DefaultRegion, Clock: awssim.RealClock(), RolloutDelay: 5 * time.Second})
	if err := sim.SeedDemo(ctx); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	url, _, stop, err := serveSim(sim, listen)
	if err != nil {
		return nil, err
	}
	cfg.AWS.Endpoint = url
	cfg.AWS.Region = sim.Region()
	if cfg.Queue.URL == "" {
		// The demo's EventBridge rule delivers ECS's events to this queue.
		cfg.Queue.URL = awssim.DemoQueueURL(url)
	}
	if !fromFile {
		// The demo has no registry: its task definitions state what the
		// wrapper needs, and nothing is fetched from outside the machine.
		cfg.Images.Resolve = false
		secret, err := sim.SecretsManager().DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(awssim.DemoTokenSecret)})
		if err != nil {
			stop()
			return nil, fmt.Errorf("demo secret: %w", err)
		}
		if cfg.Profiles == nil {
			cfg.Profiles = map[string]patch.Profile{}
		}
		p := cfg.Profiles[config.BuiltinProfile]
		p.TokenSecretArn = aws.ToString(secret.ARN)
		cfg.Profiles[config.BuiltinProfile] = p
		cfg.Sweeps.Services.Interval = config.D(10 * time.Second)
		cfg.Sweeps.Families.Interval = config.D(30 * time.Second)
	}
	log.Info("embedded AWS serving the demo account", "endpoint", url,
		"try", "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url "+url+" ecs list-services --cluster "+awssim.DemoCluster)
	return &embeddedAWS{url: url, stop: stop}, nil
}
