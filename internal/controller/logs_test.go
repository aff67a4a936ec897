package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// logLines is a JSON slog handler's output, one map a line.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) with(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(l.buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestLogsSayEachDecisionOnce: issue 22 found 21 of the demo's 67 lines to
// be the same warning, repeated every reconcile, and no decision line out
// of audit mode. A family's decision, and the warnings of its twin, are
// said once per change, in every mode; a sweep names what it queued.
func TestLogsSayEachDecisionOnce(t *testing.T) {
	w := newWorld(t)
	src := w.register(t, "billing", "busybox", nil)
	w.createService(t, "billing", src, types.DeploymentControllerTypeEcs)
	var logs logLines
	c := w.controller(t, func(o *Options) { o.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	sweep(t, c)
	for range 3 {
		reconcile(t, c, "billing")
	}
	d := logs.with(t, "decision")
	if len(d) != 1 || d[0]["instrument"] != false || d[0]["family"] != "billing" {
		t.Fatalf("decision lines before the opt-in: %v, want one saying instrument=false for billing", d)
	}

	w.must(t, func(ctx context.Context) error {
		_, err := w.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(src),
			Tags: []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}}})
		return err
	})
	if err := c.SweepFamilies(context.Background()); err != nil {
		t.Fatal(err)
	}
	q := logs.with(t, "family sweep queued families")
	if len(q) != 1 || q[0]["families"] != "billing" {
		t.Errorf("family sweep lines %v, want one naming billing", q)
	}
	for range 3 {
		reconcile(t, c, "billing")
	}
	d = logs.with(t, "decision")
	if len(d) != 2 || d[1]["instrument"] != true || d[1]["profile"] != "lacework" {
		t.Errorf("decision lines %v, want a second one saying instrument=true, profile lacework", d)
	}
	warned := logs.with(t, "instrumented with a warning")
	if len(warned) == 0 {
		t.Fatal("no warning line: the test needs a twin with a warning (no image resolver: image_unknown)")
	}
	for _, l := range warned {
		if l["detail"] == nil || l["detail"] == "" {
			t.Errorf("warning line without its detail: %v", l)
		}
	}
	n := len(warned)
	// A reconcile that changes nothing says nothing new.
	reconcile(t, c, "billing")
	if got := len(logs.with(t, "instrumented with a warning")); got != n {
		t.Errorf("%d warning lines after one more reconcile, want the %d said before", got, n)
	}
	if got := len(logs.with(t, "decision")); got != 2 {
		t.Errorf("%d decision lines after one more reconcile, want 2", got)
	}
}

func TestSampleBoundsTheNames(t *testing.T) {
	var names []string
	for _, c := range "abcdefghijkl" {
		names = append(names, string(c))
	}
	if got, want := sample(names[:3]), "a,b,c"; got != want {
		t.Errorf("sample of 3 = %q, want %q", got, want)
	}
	if got, want := sample(names), "a,b,c,d,e,f,g,h,i,j and 2 more"; got != want {
		t.Errorf("sample of 12 = %q, want %q", got, want)
	}
}
