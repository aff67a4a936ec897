package controller

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// bulkWorld: 120 families, half opted in by tag, half untagged, all
// reconciled once; the controller sweeps families through tag:GetResources.
func bulkWorld(t *testing.T) (*world, *Controller, []string) {
	t.Helper()
	w := newWorld(t)
	var sources []string
	for f := range 120 {
		tags := map[string]string{}
		if f%2 == 0 {
			tags["ecs-sidecar/inject"] = "true"
		}
		sources = append(sources, w.register(t, fmt.Sprintf("fam%03d", f), "nginx:1.27", tags))
	}
	c := w.controller(t, func(o *Options) {
		o.Tagging, o.FamilySweepRate = resourcegroupstaggingapi.NewFromConfig(w.cfg), 10000
	})
	sweep(t, c)
	if err := c.SweepFamilies(context.Background()); err != nil { // queues the families never reconciled
		t.Fatal(err)
	}
	if got := drain(t, c); len(got) != 120 {
		t.Fatalf("the first family sweep queued %d families, want the 120 never reconciled", len(got))
	}
	return w, c, sources
}

// TestFamilySweepInBulk (issue 21): an idle family sweep costs a page per
// 100 ACTIVE revisions and a GetResources page per 100 tagged ones, not two
// ECS calls per family, and still notices a new revision, an opt-in and an
// opt-out by tag.
func TestFamilySweepInBulk(t *testing.T) {
	ctx := context.Background()
	w, c, sources := bulkWorld(t)
	ops := []string{"ListTaskDefinitions", "ListTaskDefinitionFamilies", "ListTagsForResource", "GetResources", "DescribeTaskDefinition"}
	counts := func() map[string]int64 {
		m := map[string]int64{}
		for _, op := range ops {
			m[op] = w.count(op)
		}
		return m
	}
	before := counts()
	if err := c.SweepFamilies(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.QueueLen(); n != 0 {
		t.Fatalf("an idle family sweep queued %d families, want 0 (%v)", n, drain(t, c))
	}
	after := counts()
	// 120 sources and 60 twins: 2 pages; tagged with inject: 60 sources
	// and their 60 twins, 2 pages; with a profile tag: none, 1 page.
	want := map[string]int64{"ListTaskDefinitions": 2, "ListTaskDefinitionFamilies": 0, "ListTagsForResource": 0, "GetResources": 3, "DescribeTaskDefinition": 0}
	for _, op := range ops {
		if got := after[op] - before[op]; got != want[op] {
			t.Errorf("idle family sweep of 120 families: %d %s calls, want %d", got, op, want[op])
		}
	}

	tag := func(arn, v string) {
		w.must(t, func(ctx context.Context) error {
			_, err := w.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn),
				Tags: []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String(v)}}})
			return err
		})
	}
	tag(sources[0], "false") // opts out fam000
	tag(sources[1], "true")  // opts in fam001
	w.register(t, "fam002", "nginx:1.28", nil)
	if err := c.SweepFamilies(ctx); err != nil {
		t.Fatal(err)
	}
	got := drain(t, c)
	slices.Sort(got)
	if want := []string{"fam000", "fam001", "fam002"}; !slices.Equal(got, want) {
		t.Errorf("the family sweep queued %v, want %v", got, want)
	}
}

// A role without tag:GetResources: the sweep says so once and makes its
// per-family calls instead; it never fails for it.
func TestFamilySweepFallsBackWhenTaggingIsDenied(t *testing.T) {
	ctx := context.Background()
	w, c, sources := bulkWorld(t)
	w.sim.AddGate(func(_ context.Context, r awssim.Request) error {
		if r.Operation == "GetResources" {
			return &awssim.Error{Code: "AccessDeniedException", Message: "not authorized to perform: tag:GetResources", Status: http.StatusBadRequest}
		}
		return nil
	})
	tag0 := w.count("ListTagsForResource")
	w.must(t, func(ctx context.Context) error {
		_, err := w.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(sources[4]),
			Tags: []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("false")}}})
		return err
	})
	for range 2 {
		if err := c.SweepFamilies(ctx); err != nil {
			t.Fatalf("family sweep with tag:GetResources denied: %v", err)
		}
		if got := drain(t, c); len(got) > 1 || len(got) == 1 && got[0] != "fam004" {
			t.Errorf("queued %v, want fam004 (opted out) at most", got)
		}
	}
	if got := w.count("GetResources"); got == 0 {
		t.Fatal("GetResources never tried")
	}
	if w.count("ListTagsForResource") == tag0 {
		t.Error("no per-family ListTagsForResource after the denial: the sweep did not fall back")
	}
	if n := w.count("GetResources"); n > 3+1 {
		t.Errorf("%d GetResources calls: after one denial the sweep should stop trying", n)
	}
}
