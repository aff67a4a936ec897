package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// FamilyPlan is what a reconcile of one family would do.
type FamilyPlan struct {
	Family     string   `json:"family"`
	Instrument bool     `json:"instrument"`
	Reason     string   `json:"reason"`
	Profile    string   `json:"profile,omitempty"`
	Refused    []string `json:"refused,omitempty"` // "revision: code"
	// Owner is who manages the family's task definitions (one of Owners).
	Owner string `json:"owner"`
	// Skipped are the services left alone, "cluster/service: reason".
	Skipped []string `json:"skipped,omitempty"`
	Actions []Action `json:"actions"`
}

// Plan reconciles every family of the account in dry-run mode and returns
// what each would do. It needs Options.DryRun: it never writes.
func (c *Controller) Plan(ctx context.Context) ([]FamilyPlan, error) {
	if !c.o.DryRun {
		return nil, errors.New("controller: Plan needs DryRun")
	}
	if err := c.SweepServices(ctx); err != nil {
		return nil, err
	}
	families := map[string]bool{}
	for c.queue.Len() > 0 { // the sweep queued the families with services
		f, _ := c.queue.Get()
		families[f] = true
		c.queue.Forget(f)
		c.queue.Done(f)
	}
	p := ecs.NewListTaskDefinitionFamiliesPaginator(c.ecs, &ecs.ListTaskDefinitionFamiliesInput{
		Status: types.TaskDefinitionFamilyStatusActive, MaxResults: aws.Int32(100),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list families: %w", err)
		}
		for _, f := range page.Families {
			families[f] = true
		}
	}
	names := make([]string, 0, len(families))
	for f := range families {
		names = append(names, f)
	}
	sort.Strings(names)
	out := make([]FamilyPlan, 0, len(names))
	for _, f := range names {
		res, err := c.Reconcile(ctx, f)
		actions := res.Actions
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", f, err)
		}
		st, _ := c.st.family(f)
		fp := FamilyPlan{Family: f, Actions: actions, Skipped: res.Skipped, Owner: OwnerNone}
		if st != nil {
			fp.Instrument, fp.Reason, fp.Profile, fp.Owner = st.instrument, st.reason, st.profile, st.owner
			for _, e := range st.refused {
				fp.Refused = append(fp.Refused, fmt.Sprintf("%d: %s", revisionNumber(e.arn), e.v))
			}
			sort.Strings(fp.Refused)
		}
		if fp.Actions == nil {
			fp.Actions = []Action{}
		}
		out = append(out, fp)
	}
	return out, nil
}
