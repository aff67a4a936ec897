// Package audit puts every write the reconciler makes on an EventBridge bus,
// so that teams can route them to chat or tickets.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/ecs-sidecar/reconciler/internal/controller"
)

// Source is the EventBridge source of the reconciler's events.
const Source = "ecs-sidecar.reconciler"

// DetailTypes of the events, by action kind.
var DetailTypes = map[string]string{
	controller.ActionRegisterTwin:     "ECS Sidecar Twin Registered",
	controller.ActionUpdateService:    "ECS Sidecar Service Updated",
	controller.ActionMarkFailed:       "ECS Sidecar Rollout Failed",
	controller.ActionReturnToSource:   "ECS Sidecar Service Returned To Source",
	controller.ActionRestoreSource:    "ECS Sidecar Source Restored",
	controller.ActionDeregisterTwin:   "ECS Sidecar Twin Deregistered",
	controller.ActionForgedTwin:       "ECS Sidecar Forged Twin Refused",
	controller.ActionServiceContested: "ECS Sidecar Service Contested",
}

// EventBridgeAPI is the part of the EventBridge client the publisher uses.
type EventBridgeAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// maxBatch is PutEvents' limit of entries per call.
const maxBatch = 10

// Publisher sends actions to a bus in the background, in batches, so that a
// reconcile never waits for the audit trail. Planned actions (audit mode,
// plan) are not sent: audit mode writes nothing.
type Publisher struct {
	client EventBridgeAPI
	bus    string
	log    *slog.Logger

	mu      sync.Mutex
	pending []controller.Action
	wake    chan struct{}
	// Failed counts events AWS did not take (logged, not retried forever).
	failed int
}

// New returns a publisher to bus (a name or ARN).
func New(client EventBridgeAPI, bus string, log *slog.Logger) (*Publisher, error) {
	if bus == "" {
		return nil, errors.New("audit: no event bus")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{client: client, bus: bus, log: log, wake: make(chan struct{}, 1)}, nil
}

// Add queues an action; it never blocks.
func (p *Publisher) Add(a controller.Action) {
	if a.Planned {
		return
	}
	p.mu.Lock()
	p.pending = append(p.pending, a)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run sends what is queued until ctx ends, then flushes what is left (for
// at most five seconds).
func (p *Publisher) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			p.Flush(flush)
			cancel()
			return
		case <-p.wake:
			p.Flush(ctx)
		}
	}
}

// Flush sends everything queued now.
func (p *Publisher) Flush(ctx context.Context) {
	p.mu.Lock()
	batch := p.pending
	p.pending = nil
	p.mu.Unlock()
	for start := 0; start < len(batch); start += maxBatch {
		part := batch[start:min(start+maxBatch, len(batch))]
		entries := make([]ebtypes.PutEventsRequestEntry, 0, len(part))
		for _, a := range part {
			e, err := entry(a, p.bus)
			if err != nil {
				p.log.Warn("audit event not sent", "kind", a.Kind, "err", err)
				continue
			}
			entries = append(entries, e)
		}
		out, err := p.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil {
			p.log.Warn("audit events not sent", "count", len(entries), "err", err)
			p.mu.Lock()
			p.failed += len(entries)
			p.mu.Unlock()
			continue
		}
		if out.FailedEntryCount > 0 {
			p.log.Warn("audit events refused by EventBridge", "count", out.FailedEntryCount)
			p.mu.Lock()
			p.failed += int(out.FailedEntryCount)
			p.mu.Unlock()
		}
	}
}

// Failed is the number of events EventBridge did not take.
func (p *Publisher) Failed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// entry is the PutEvents entry of an action: the action's fields are the
// event's detail.
func entry(a controller.Action, bus string) (ebtypes.PutEventsRequestEntry, error) {
	dt, ok := DetailTypes[a.Kind]
	if !ok {
		return ebtypes.PutEventsRequestEntry{}, fmt.Errorf("unknown action kind %q", a.Kind)
	}
	detail, err := json.Marshal(a)
	if err != nil {
		return ebtypes.PutEventsRequestEntry{}, err
	}
	var resources []string
	for _, r := range []string{a.Service, a.Twin, a.Source} {
		if r != "" {
			resources = append(resources, r)
		}
	}
	return ebtypes.PutEventsRequestEntry{
		EventBusName: aws.String(bus), Source: aws.String(Source), DetailType: aws.String(dt),
		Detail: aws.String(string(detail)), Resources: resources,
	}, nil
}
