package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/lease"
)

// leaseGate is the lease manager as the controller sees it
// (controller.Leases): the controller declares what it needs and does not
// depend on DynamoDB; this converts the fences and maps lease.ErrLeaseLost
// to controller.ErrLeaseLost.
type leaseGate struct{ m *lease.Manager }

var _ controller.Leases = leaseGate{}

func (g leaseGate) ShardFor(family string) string { return g.m.ShardFor(family) }

func (g leaseGate) Owns(family string) (controller.Fence, bool) {
	f, ok := g.m.Owns(family)
	return controller.Fence(f), ok
}

func (g leaseGate) Check(ctx context.Context, f controller.Fence) error {
	err := g.m.Check(ctx, lease.Fence(f))
	if errors.Is(err, lease.ErrLeaseLost) {
		return fmt.Errorf("%w: %w", controller.ErrLeaseLost, err)
	}
	return err
}

// fences converts what the manager holds for the controller.
func fences(held []lease.Fence) []controller.Fence {
	out := make([]controller.Fence, len(held))
	for i, f := range held {
		out[i] = controller.Fence(f)
	}
	return out
}

// leases is `run`'s lease manager with its metrics and the signal of its
// first round.
type leases struct {
	m     *lease.Manager
	log   *slog.Logger
	first chan struct{} // closed after the first round
	once  sync.Once
	// onRound is set once the controller exists.
	onRound  func(held []lease.Fence)
	held     prometheus.Gauge
	notOwned *prometheus.CounterVec
}

// newLeases makes the lease manager of cfg.Leases on the DynamoDB client
// of awsCfg (leases.endpoint, if set, overrides its endpoint), with its
// metrics on reg: ecs_sidecar_lease_shards_held and
// ecs_sidecar_lease_not_owned_total{reason}.
func newLeases(cfg config.Leases, awsCfg aws.Config, log *slog.Logger, reg prometheus.Registerer, clock func() time.Time) (*leases, error) {
	client := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	l := &leases{
		log:   log,
		first: make(chan struct{}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ecs_sidecar_lease_shards_held",
			Help: "Shard leases this replica holds and trusts, after its last lease round.",
		}),
		notOwned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecs_sidecar_lease_not_owned_total",
			Help: "Families left alone because another replica holds their lease: not_queued (a sweep or an event asked), dequeued (the lease went while queued), lease_lost (the check before a write failed; nothing written).",
		}, []string{"reason"}),
	}
	for _, r := range controller.NotOwnedReasons {
		l.notOwned.WithLabelValues(r).Add(0)
	}
	if err := reg.Register(l.held); err != nil {
		return nil, err
	}
	if err := reg.Register(l.notOwned); err != nil {
		return nil, err
	}
	m, err := lease.New(lease.Options{
		Client: client, Table: cfg.Table, Shards: cfg.Shards, Duration: cfg.Duration.Duration,
		Clock: clock, Logger: log,
		OnRound: func(held []lease.Fence) {
			l.held.Set(float64(len(held)))
			if l.onRound != nil {
				l.onRound(held)
			}
			l.once.Do(func() { close(l.first) })
		},
	})
	if err != nil {
		return nil, fmt.Errorf("leases: %w", err)
	}
	l.m = m
	return l, nil
}

// run renews the leases until ctx ends, then gives them all back (with a
// context of its own: ctx is over), so that the other replicas take them
// at their next round instead of a lease period later.
func (l *leases) run(ctx context.Context) {
	_ = l.m.Run(ctx)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := l.m.Release(rctx); err != nil {
		l.log.Warn("giving the leases back failed; they run out within a lease period", "err", err)
		return
	}
	l.log.Info("leases given back", "owner", l.m.Owner())
}
