package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/patch"
	"github.com/ecs-sidecar/reconciler/internal/policy"
)

// countingObserver records reconcile results.
type countingObserver struct {
	NopObserver
	mu      sync.Mutex
	results map[string]int
}

func (o *countingObserver) Reconciled(result string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.results == nil {
		o.results = map[string]int{}
	}
	o.results[result]++
}

// TestTerminalErrorAcknowledgesItsMessages: a twin that ECS refuses as
// invalid gets the same answer on every retry, so the reconcile's error is
// terminal: counted, not retried, and the family's messages are
// acknowledged (OnSuccess, which deletes them in run). A transient failure
// (a 500) is retried and acknowledges nothing.
func TestTerminalErrorAcknowledgesItsMessages(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fail     error
		terminal bool
	}{
		{"client exception", &awssim.Error{Code: "ClientException", Message: "Invalid setting for container 'app'."}, true},
		{"server error", errors.New("injected: internal failure"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true"})
			w.sim.AddGate(func(_ context.Context, r awssim.Request) error {
				if r.Operation == "RegisterTaskDefinition" {
					return tc.fail // the twin's registration
				}
				return nil
			})
			w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
			obs := &countingObserver{}
			var acked []string
			c := w.controller(t, func(o *Options) {
				o.Observer = obs
				o.OnSuccess = func(_ context.Context, family string, _ time.Time) { acked = append(acked, family) }
			})
			sweep(t, c)
			c.Enqueue("web")
			if !c.processNext(context.Background()) {
				t.Fatal("queue shut down")
			}
			if tc.terminal {
				if obs.results[ResultTerminal] != 1 || len(acked) != 1 {
					t.Errorf("results %v, acknowledged %v: want one terminal result and the family acknowledged", obs.results, acked)
				}
				if n := c.queue.NumRequeues("web"); n != 0 {
					t.Errorf("a terminal failure was queued for a retry (%d requeues)", n)
				}
			} else {
				if obs.results[ResultError] != 1 || len(acked) != 0 {
					t.Errorf("results %v, acknowledged %v: want one error and nothing acknowledged", obs.results, acked)
				}
				if n := c.queue.NumRequeues("web"); n != 1 {
					t.Errorf("a transient failure was not queued for a retry (%d requeues)", n)
				}
			}
		})
	}
}

func TestIsTerminal(t *testing.T) {
	term := terminal(TerminalTwinRejected, errors.New("refused"))
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("x"), false},
		{term, true},
		{fmt.Errorf("reconcile web: %w", term), true},
		{errors.Join(term, term), true},
		{errors.Join(term, errors.New("throttled")), false},
		{fmt.Errorf("wrapped: %w", errors.Join(errors.New("throttled"), term)), false},
	} {
		if _, got := IsTerminal(tc.err); got != tc.want {
			t.Errorf("IsTerminal(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestRunStopsWhenDeniedBeforeAnySweep: a role without ecs:ListClusters
// gets no further by waiting; Run reports it instead of looping quietly.
func TestRunStopsWhenDeniedBeforeAnySweep(t *testing.T) {
	w := newWorld(t)
	w.sim.AddGate(func(_ context.Context, r awssim.Request) error {
		if r.Operation == "ListClusters" {
			return &awssim.Error{Code: "AccessDeniedException", Message: "User is not authorized to perform: ecs:ListClusters"}
		}
		return nil
	})
	c := w.controller(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.Run(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v (context %v), want the access denied error before the timeout", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "access denied") {
		t.Errorf("Run's error %q does not say access denied", err)
	}
}

// TestTagCannotPickAPlaintextProfile: a revision's profile tag names a
// profile with a plaintext token; a tagger must not choose it, so the family
// is instrumented with the default profile and its twin carries the secret
// reference, not the token (issue 17, finding 5).
func TestTagCannotPickAPlaintextProfile(t *testing.T) {
	w := newWorld(t)
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true", "ecs-sidecar/profile": "plain"})
	w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
	const token = "do-not-leak-0123456789"
	profiles := map[string]patch.Profile{
		"lacework": patch.Profile{Name: "lacework", TokenSecretArn: tokenArn}.WithDefaults(),
		"plain":    patch.Profile{Name: "plain", TokenPlaintext: token, AllowPlaintextToken: true}.WithDefaults(),
	}
	c := w.controller(t, func(o *Options) {
		o.Profile = func(n string) (patch.Profile, bool) { p, ok := profiles[n]; return p, ok }
		o.TagProfiles = policy.TagProfiles{Plaintext: []string{"plain"}}
	})
	sweep(t, c)
	reconcile(t, c, "web")
	twin := w.taskDefOf(t, "web")
	w.isTwinOf(t, twin, 1)
	out, err := w.ecs.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(twin)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out.TaskDefinition)
	if strings.Contains(string(b), token) {
		t.Fatal("the twin carries the plaintext token of a profile that a tag picked")
	}
	if !strings.Contains(string(b), tokenArn) {
		t.Errorf("the twin does not reference the default profile's token secret")
	}
}
