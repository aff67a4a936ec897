package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	rgtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
	"golang.org/x/time/rate"

	"github.com/ecs-sidecar/reconciler/internal/cloud"
	"github.com/ecs-sidecar/reconciler/internal/ecsarn"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// ErrServiceGone is returned by ResolveService for a service that does not
// exist (any more).
var ErrServiceGone = errors.New("service does not exist")

// SweepServices lists every service of every cluster and queues the families
// whose services run something other than what their last reconcile left
// them on. It describes no task definition: an idle fleet costs
// ListClusters and ListServices pages plus DescribeServices by ten.
//
// A cluster whose calls fail (after the SDK's retries) is reported in the
// error, and the others are swept all the same: under throttling or server
// errors a sweep makes what progress it can, and the next sweep (sooner
// after a failure, see every) tries again. Once every cluster has been indexed, by this sweep or earlier ones,
// Swept is closed.
func (c *Controller) SweepServices(ctx context.Context) error {
	clusters, err := c.listClusters(ctx)
	if err != nil {
		return err
	}
	queued := map[string]bool{}
	var errs []error
	for _, cluster := range clusters {
		if err := c.sweepCluster(ctx, cluster, queued); err != nil {
			errs = append(errs, err)
			continue
		}
		c.st.setIndexed(cluster)
	}
	if len(queued) > 0 {
		c.log.Info("service sweep queued families", "count", len(queued), "families", sample(slices.Sorted(maps.Keys(queued))))
	}
	if c.st.allIndexed(clusters) {
		c.sweepOnce.Do(func() {
			c.log.Info("ready: the services of every cluster are indexed; reconciles start", "clusters", len(clusters))
			close(c.swept)
		})
	}
	return errors.Join(errs...)
}

// sweepCluster indexes the services of one cluster and queues the families
// that need work.
func (c *Controller) sweepCluster(ctx context.Context, cluster string, queued map[string]bool) error {
	arns, err := c.listServices(ctx, cluster)
	if err != nil {
		return err
	}
	listed := make(map[string]bool, len(arns))
	for _, a := range arns {
		listed[a] = true
	}
	c.st.keepServicesOf(cluster, listed)
	services, err := c.describeServices(ctx, cluster, arns, true)
	if err != nil {
		return err
	}
	for _, s := range services {
		if f := s.family(); !queued[f] && c.needsWork(s) {
			queued[f] = true
			c.enqueue(f)
		}
	}
	c.prefetchRevisions(ctx, services)
	return nil
}

// prefetchRevisions describes, in the background, the revisions the
// services run that are not cached yet, while the first service sweep of
// Run goes on (Controller.prefetch): the task definition read bucket, which
// the first reconciles drain, works from the start of a restart instead of
// after the sweep. Each revision is still described once (revision shares
// a describe under way). Errors are left to the reconciles, which describe
// what is missing.
func (c *Controller) prefetchRevisions(ctx context.Context, services []*service) {
	if c.prefetch == nil {
		return
	}
	select {
	case <-c.swept:
		return // the first sweep is done
	default:
	}
	seen := map[string]bool{}
	var arns []string
	for _, s := range services {
		if !seen[s.taskDef] && c.st.cachedRevision(s.taskDef) == nil {
			seen[s.taskDef] = true
			arns = append(arns, s.taskDef)
		}
	}
	if len(arns) == 0 {
		return
	}
	c.prefetchWG.Add(1)
	go func() { // one per cluster, handing out the describes
		defer c.prefetchWG.Done()
		for _, arn := range arns {
			select {
			case <-ctx.Done():
				return
			case c.prefetch <- struct{}{}:
			}
			c.prefetchWG.Add(1)
			go func() {
				defer c.prefetchWG.Done()
				defer func() { <-c.prefetch }()
				_, _, _ = c.revisionFor(ctx, arn, true)
			}()
		}
	}()
}

// needsWork reports whether a service's family must be reconciled for it.
func (c *Controller) needsWork(s *service) bool {
	st, ok := c.st.family(s.family())
	if !ok {
		return true
	}
	if s.controller != types.DeploymentControllerTypeEcs {
		return false
	}
	return !st.ok.has(s.taskDef)
}

func (c *Controller) listClusters(ctx context.Context) ([]string, error) {
	var out []string
	p := ecs.NewListClustersPaginator(c.ecs, &ecs.ListClustersInput{MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		out = append(out, page.ClusterArns...)
	}
	return out, nil
}

func (c *Controller) listServices(ctx context.Context, cluster string) ([]string, error) {
	var out []string
	p := ecs.NewListServicesPaginator(c.ecs, &ecs.ListServicesInput{Cluster: aws.String(cluster), MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list services of %s: %w", cluster, err)
		}
		out = append(out, page.ServiceArns...)
	}
	return out, nil
}

// familySweepPage is how many revisions the family sweep lists per family:
// the prefix filter also matches longer family names, which sort first.
const familySweepPage = 10

// SweepFamilies lists the families with ACTIVE revisions and queues those
// never reconciled, those with a new revision, and those whose opt-in tags
// changed. With Options.Tagging it costs one ListTaskDefinitions page per
// 100 ACTIVE revisions of the account and one GetResources page per 100
// tagged ones (sweepFamiliesInBulk); without, one ListTaskDefinitions and
// one ListTagsForResource per known family. At most FamilySweepRate calls
// per second either way, and it describes no revision.
func (c *Controller) SweepFamilies(ctx context.Context) error {
	lim := rate.NewLimiter(rate.Limit(c.o.FamilySweepRate), 1)
	first := c.firstListing.Swap(nil)
	if c.o.Tagging != nil && !c.taggingDenied.Load() {
		err := c.sweepFamiliesInBulk(ctx, lim, first)
		if !cloud.IsAccessDenied(err) {
			return err
		}
		c.taggingDenied.Store(true)
		c.log.Warn("tag:GetResources is denied; the family sweep makes two ECS calls per family instead (allow tag:GetResources to the reconciler's role)", "err", err)
	}
	var families []string
	p := ecs.NewListTaskDefinitionFamiliesPaginator(c.ecs, &ecs.ListTaskDefinitionFamiliesInput{
		Status: types.TaskDefinitionFamilyStatusActive, MaxResults: aws.Int32(100),
	})
	for p.HasMorePages() {
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list families: %w", err)
		}
		families = append(families, page.Families...)
	}
	var queued []string
	for _, family := range families {
		changed, err := c.familyChanged(ctx, lim, family)
		if err != nil {
			return err
		}
		if changed {
			queued = append(queued, family)
			c.enqueue(family)
		}
	}
	if len(queued) > 0 {
		slices.Sort(queued)
		c.log.Info("family sweep queued families", "count", len(queued), "families", sample(queued))
	}
	return nil
}

func (c *Controller) familyChanged(ctx context.Context, lim *rate.Limiter, family string) (bool, error) {
	newestOf := func(ctx context.Context) (string, error) {
		if err := lim.Wait(ctx); err != nil {
			return "", err
		}
		out, err := c.ecs.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{
			FamilyPrefix: aws.String(family), Status: types.TaskDefinitionStatusActive,
			Sort: types.SortOrderDesc, MaxResults: aws.Int32(familySweepPage),
		})
		if err != nil {
			return "", fmt.Errorf("list revisions of %s: %w", family, err)
		}
		for _, arn := range out.TaskDefinitionArns {
			if ecsarn.Family(arn) == family {
				return arn, nil
			}
		}
		return "", nil
	}
	tagsOf := func(ctx context.Context, arn string) ([]types.Tag, error) {
		if err := lim.Wait(ctx); err != nil {
			return nil, err
		}
		out, err := c.ecs.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if err != nil {
			return nil, fmt.Errorf("list tags of %s: %w", arn, err)
		}
		return out.Tags, nil
	}
	return c.familyChangedBy(ctx, family, newestOf, tagsOf)
}

// familyChangedBy is the sweep's judgement of one family, the same for both
// ways of reading: never reconciled (and without services, which the
// service sweep queues), a new newest ACTIVE revision, or other opt-in tags
// on the revision the last reconcile watched. newestOf and tagsOf are called
// only when the answer needs them.
func (c *Controller) familyChangedBy(ctx context.Context, family string, newestOf func(context.Context) (string, error),
	tagsOf func(context.Context, string) ([]types.Tag, error)) (bool, error) {
	st, ok := c.st.family(family)
	if !ok {
		// Never reconciled. A family with services was queued by the
		// service sweep (which runs first) and is retried until it succeeds.
		return len(c.st.servicesOf(family)) == 0, nil
	}
	newest, err := newestOf(ctx)
	if err != nil {
		return false, err
	}
	if newest != st.newest {
		return true, nil
	}
	watched := st.deciding
	if watched == "" {
		watched = st.newestSource
	}
	if watched == "" {
		return false, nil
	}
	tags, err := tagsOf(ctx, watched)
	if err != nil {
		return false, err
	}
	return c.optInTags(tags) != st.decidingTags, nil
}

// sweepFamiliesInBulk is SweepFamilies in a few listings: the newest ACTIVE
// revision of every family from one account-wide ListTaskDefinitions, and
// the opt-in tags of every task definition that carries one from
// tag:GetResources. The tagging index is eventually consistent: a tag
// changed a moment ago may show in the next sweep only (an event of the
// change, if any, is not delayed by it); a revision listed there but
// deregistered since is never looked up, only the revisions a reconcile
// recorded are.
//
// The listing is also kept for the first reconcile of each family it
// queues or that the service sweep queued (see takeListing): that reconcile
// takes the family's revisions from it instead of listing them again. The
// first family sweep of Run takes the listing Run made at the start, beside
// the first service sweep (first, non-nil), instead of listing again.
func (c *Controller) sweepFamiliesInBulk(ctx context.Context, lim *rate.Limiter, first *accountListing) error {
	listing := first
	if listing == nil {
		var err error
		if listing, err = c.listAccount(ctx, lim); err != nil {
			return err
		}
		c.keepListing(listing)
	}
	newest := make(map[string]string, len(listing.families))
	for fam, arns := range listing.families {
		newest[fam] = arns[0]
	}
	tagged := map[string][]types.Tag{}
	for _, key := range []string{c.o.TagPrefix + patch.KeyInject, c.o.TagPrefix + patch.KeyProfile} {
		in := &resourcegroupstaggingapi.GetResourcesInput{
			ResourceTypeFilters: []string{"ecs:task-definition"},
			TagFilters:          []rgtypes.TagFilter{{Key: aws.String(key)}},
			ResourcesPerPage:    aws.Int32(100),
		}
		for {
			if err := lim.Wait(ctx); err != nil {
				return err
			}
			out, err := c.o.Tagging.GetResources(ctx, in)
			if err != nil {
				return fmt.Errorf("tag:GetResources %s: %w", key, err)
			}
			for _, m := range out.ResourceTagMappingList {
				arn := aws.ToString(m.ResourceARN)
				if _, done := tagged[arn]; done {
					continue
				}
				tags := make([]types.Tag, len(m.Tags))
				for i, t := range m.Tags {
					tags[i] = types.Tag{Key: t.Key, Value: t.Value}
				}
				tagged[arn] = tags
			}
			if aws.ToString(out.PaginationToken) == "" {
				break
			}
			in.PaginationToken = out.PaginationToken
		}
	}
	var queued []string
	for _, family := range slices.Sorted(maps.Keys(newest)) {
		changed, _ := c.familyChangedBy(ctx, family,
			func(context.Context) (string, error) { return newest[family], nil },
			func(_ context.Context, arn string) ([]types.Tag, error) { return tagged[arn], nil }) // a revision absent there has no opt-in tag
		if changed {
			queued = append(queued, family)
			c.enqueue(family)
		}
	}
	if len(queued) > 0 {
		c.log.Info("family sweep queued families", "count", len(queued), "families", sample(queued))
	}
	return nil
}

// accountListing is one account-wide ListTaskDefinitions of the ACTIVE
// revisions: each family's ARNs, newest first, at most
// maxRevisionsPerList of them (all: the family has no more).
type accountListing struct {
	families map[string][]string
	all      map[string]bool
}

// listAccount lists every ACTIVE revision of the account, 100 a page, at
// most lim's rate.
func (c *Controller) listAccount(ctx context.Context, lim *rate.Limiter) (*accountListing, error) {
	l := &accountListing{families: map[string][]string{}, all: map[string]bool{}}
	c.st.beginListing()
	p := ecs.NewListTaskDefinitionsPaginator(c.ecs, &ecs.ListTaskDefinitionsInput{
		Status: types.TaskDefinitionStatusActive, Sort: types.SortOrderDesc, MaxResults: aws.Int32(100),
	})
	for p.HasMorePages() {
		if err := lim.Wait(ctx); err != nil {
			c.st.keepListing(nil)
			return nil, err
		}
		page, err := p.NextPage(ctx)
		if err != nil {
			c.st.keepListing(nil)
			return nil, fmt.Errorf("list task definitions: %w", err)
		}
		for _, arn := range page.TaskDefinitionArns {
			fam := ecsarn.Family(arn)
			l.families[fam] = append(l.families[fam], arn)
		}
	}
	for fam, arns := range l.families {
		slices.SortStableFunc(arns, func(a, b string) int { return int(revisionNumber(b) - revisionNumber(a)) })
		l.all[fam] = len(arns) <= maxRevisionsPerList
		l.families[fam] = slices.Clip(arns[:min(len(arns), maxRevisionsPerList)])
	}
	return l, nil
}

// keepListing keeps of an account-wide listing (listAccount) the families
// this replica may reconcile and has never reconciled, for their first
// reconcile (takeListing).
func (c *Controller) keepListing(l *accountListing) {
	keep := map[string]listedRevisions{}
	for fam, arns := range l.families {
		if c.leaseAdmits(fam) {
			keep[fam] = listedRevisions{arns: arns, all: l.all[fam]}
		}
	}
	c.st.keepListing(keep)
}

// ResolveService returns the family of a service's task definition, reading
// the service afresh (events are triggers, never state). cluster may be ""
// (the cluster of a new-format service ARN, else "default").
func (c *Controller) ResolveService(ctx context.Context, cluster, svc string) (string, error) {
	if cluster == "" {
		cluster = ecsarn.ServiceCluster(svc)
	}
	if cluster == "" {
		cluster = "default"
	}
	out, err := c.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{svc}})
	if err != nil {
		if cloud.IsNotFound(err) {
			return "", fmt.Errorf("%w: %s in %s", ErrServiceGone, svc, cluster)
		}
		return "", fmt.Errorf("describe service %s: %w", svc, err)
	}
	if len(out.Services) == 0 { // DescribeServices lists it among the failures
		return "", fmt.Errorf("%w: %s in %s", ErrServiceGone, svc, cluster)
	}
	got := serviceFromSDK(out.Services[0])
	if got.status != "ACTIVE" {
		c.st.dropService(got.arn)
		return "", fmt.Errorf("%w: %s is %s", ErrServiceGone, got.arn, got.status)
	}
	c.st.putService(got)
	return got.family(), nil
}

// sampleSize bounds the names a log line lists.
const sampleSize = 10

// sample is names for a log line: all of them up to sampleSize, else the
// first ones and how many more.
func sample(names []string) string {
	if len(names) <= sampleSize {
		return strings.Join(names, ",")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:sampleSize], ","), len(names)-sampleSize)
}
