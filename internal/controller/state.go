package controller

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// revision is one task definition revision. Its content never changes
// (revisions are immutable), so it is cached by ARN for good; only its tags
// change, and they are re-read where a decision depends on them.
type revision struct {
	arn    string
	family string
	number int32
	// td is the content of a source (what Instrument reads). A twin's is
	// not kept: the cache holds thousands of them and only the rare
	// restoring of a deregistered source reads one (see content).
	td     *types.TaskDefinition
	status types.TaskDefinitionStatus // when read
	class  patch.Class
	tags   []types.Tag
	// planned is a twin that audit mode would register: not in AWS.
	planned bool
}

// inactive says whether the revision was deregistered when it was read.
func (r *revision) inactive() bool {
	return r.status == types.TaskDefinitionStatusInactive
}

// keep stores a revision in the cache, without a twin's content.
func (st *state) keepLocked(r *revision) {
	if r.td != nil {
		r.status = r.td.Status
		if r.class.Kind == patch.KindTwin {
			r.td = nil
		}
	}
	st.revisions[r.arn] = r
}

// service is what the controller knows of a service from DescribeServices.
type service struct {
	arn         string
	cluster     string // cluster ARN
	name        string
	taskDef     string // the service's task definition: its primary deployment's
	controller  types.DeploymentControllerType
	status      string
	deployments []deployment
}

func (s *service) family() string { return familyOf(s.taskDef) }

// familyState is what the last reconcile of a family concluded, for the
// sweeps to tell at no cost whether a service needs work.
type familyState struct {
	instrument bool
	reason     string
	profile    string
	// newest is the newest ACTIVE revision the reconcile saw.
	newest string
	// deciding is the revision whose tags decided opt-in ("" when none
	// carries the tag), and its tag values as read.
	deciding     string
	decidingTags string
	// newestSource is the newest ACTIVE source revision: the family sweep
	// watches its tags when no revision carries the inject tag.
	newestSource string
	// ok holds the revisions a service may run without another reconcile:
	// current twins, and sources that cannot be instrumented (refused).
	ok map[string]bool
	// twinOf maps source revisions to their current twin; refused maps the
	// sources that cannot be instrumented to the first reason code.
	twinOf  map[string]string
	refused map[string]patch.Code
}

// state is the controller's cache. Everything in it can be rebuilt from AWS.
type state struct {
	mu        sync.Mutex
	revisions map[string]*revision    // by ARN
	services  map[string]*service     // by service ARN
	families  map[string]*familyState // by family
	moved     map[string]string       // service ARN -> twin ARN the controller moved it to
	failed    map[string]string       // twin ARN -> failure code
	indexed   map[string]bool         // clusters whose services a sweep has indexed

	// Indexes of services, kept by setServiceLocked and deleteServiceLocked,
	// so that a reconcile and pacing cost what the family has, not what the
	// account has: by family, by cluster, and those whose primary
	// deployment is IN_PROGRESS.
	byFamily  map[string]map[string]*service
	byCluster map[string]map[string]*service
	rolling   map[string]*service
}

func newState() *state {
	return &state{
		revisions: map[string]*revision{},
		services:  map[string]*service{},
		families:  map[string]*familyState{},
		moved:     map[string]string{},
		failed:    map[string]string{},
		indexed:   map[string]bool{},
		byFamily:  map[string]map[string]*service{},
		byCluster: map[string]map[string]*service{},
		rolling:   map[string]*service{},
	}
}

func (st *state) servicesOf(family string) []*service {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]*service, 0, len(st.byFamily[family]))
	for _, s := range st.byFamily[family] {
		out = append(out, s)
	}
	return out
}

func (st *state) putService(s *service) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.setServiceLocked(s)
}

func (st *state) dropService(arn string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.deleteServiceLocked(arn)
	delete(st.moved, arn)
}

// setServiceLocked puts s in the cache and its indexes. st.mu is held.
func (st *state) setServiceLocked(s *service) {
	st.deleteServiceLocked(s.arn)
	st.services[s.arn] = s
	index(st.byFamily, s.family(), s)
	index(st.byCluster, s.cluster, s)
	if d, ok := primary(s); ok && d.RolloutState == types.DeploymentRolloutStateInProgress {
		st.rolling[s.arn] = s
	}
}

// deleteServiceLocked removes a service from the cache and its indexes.
func (st *state) deleteServiceLocked(arn string) {
	old, ok := st.services[arn]
	if !ok {
		return
	}
	delete(st.services, arn)
	unindex(st.byFamily, old.family(), arn)
	unindex(st.byCluster, old.cluster, arn)
	delete(st.rolling, arn)
}

// servicesInClusterLocked lists the cached services of a cluster.
func (st *state) servicesInClusterLocked(cluster string) []*service {
	out := make([]*service, 0, len(st.byCluster[cluster]))
	for _, s := range st.byCluster[cluster] {
		out = append(out, s)
	}
	return out
}

func index(m map[string]map[string]*service, key string, s *service) {
	byArn := m[key]
	if byArn == nil {
		byArn = map[string]*service{}
		m[key] = byArn
	}
	byArn[s.arn] = s
}

func unindex(m map[string]map[string]*service, key, arn string) {
	if byArn := m[key]; byArn != nil {
		delete(byArn, arn)
		if len(byArn) == 0 {
			delete(m, key)
		}
	}
}

func (st *state) family(name string) (*familyState, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	f, ok := st.families[name]
	return f, ok
}

func (st *state) setFamily(name string, f *familyState) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.families[name] = f
}

// serviceFromSDK converts what DescribeServices says.
func serviceFromSDK(s types.Service) *service {
	// The SDK's deserializer cuts strings out of shared blocks: each string
	// kept would keep its whole response alive, so the cache keeps copies.
	out := &service{
		arn:         strings.Clone(aws.ToString(s.ServiceArn)),
		cluster:     strings.Clone(aws.ToString(s.ClusterArn)),
		name:        strings.Clone(aws.ToString(s.ServiceName)),
		taskDef:     strings.Clone(aws.ToString(s.TaskDefinition)),
		status:      strings.Clone(aws.ToString(s.Status)),
		deployments: trimDeployments(s.Deployments),
		controller:  types.DeploymentControllerTypeEcs,
	}
	if s.DeploymentController != nil {
		out.controller = s.DeploymentController.Type
	}
	// ECS keeps taskDefinition equal to the PRIMARY deployment's; it is
	// read from the service itself, which moto also keeps right.
	return out
}

// deployment is what the controller reads of a service's deployment, with
// the SDK's field names: a types.Deployment is near a kilobyte, times every
// deployment of every service in the account.
type deployment struct {
	Id, Status, TaskDefinition, RolloutStateReason *string
	RolloutState                                   types.DeploymentRolloutState
	CreatedAt, UpdatedAt                           *time.Time
}

// trimDeployments keeps of each deployment what the controller reads; the
// rest (network configuration, capacity providers, counts) would only
// weigh on the cache of every service in the account.
func trimDeployments(in []types.Deployment) []deployment {
	out := make([]deployment, len(in))
	for i, d := range in {
		out[i] = deployment{
			Id: cloneString(d.Id), Status: cloneString(d.Status), TaskDefinition: cloneString(d.TaskDefinition),
			RolloutState:       types.DeploymentRolloutState(strings.Clone(string(d.RolloutState))),
			RolloutStateReason: cloneString(d.RolloutStateReason),
			CreatedAt:          cloneTime(d.CreatedAt), UpdatedAt: cloneTime(d.UpdatedAt),
		}
	}
	return out
}

func cloneString(p *string) *string {
	if p == nil {
		return nil
	}
	return aws.String(strings.Clone(*p))
}

func cloneTime(p *time.Time) *time.Time {
	if p == nil {
		return nil
	}
	return aws.Time(*p)
}

// cloneTags copies tags out of the SDK's shared string blocks.
func cloneTags(in []types.Tag) []types.Tag {
	out := make([]types.Tag, len(in))
	for i, t := range in {
		out[i] = types.Tag{Key: cloneString(t.Key), Value: cloneString(t.Value)}
	}
	return out
}

// familyOf returns the family of a task definition ARN or family:revision.
func familyOf(ref string) string {
	if i := strings.Index(ref, ":task-definition/"); i >= 0 {
		ref = ref[i+len(":task-definition/"):]
	}
	if i := strings.LastIndexByte(ref, ':'); i >= 0 {
		ref = ref[:i]
	}
	return ref
}

// revisionNumber returns the revision number of a task definition ARN.
func revisionNumber(arn string) int32 {
	i := strings.LastIndexByte(arn, ':')
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseInt(arn[i+1:], 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// arnOfRevision replaces the revision number of a task definition ARN.
func arnOfRevision(arn string, n int32) string {
	i := strings.LastIndexByte(arn, ':')
	if i < 0 {
		return arn
	}
	return arn[:i+1] + strconv.Itoa(int(n))
}

// revision returns the content of a revision: from the cache, or from
// DescribeTaskDefinition with its tags (the only time a revision is
// described). fresh is true when the tags were read just now.
func (c *Controller) revision(ctx context.Context, arn string) (rev *revision, fresh bool, err error) {
	c.st.mu.Lock()
	rev, ok := c.st.revisions[arn]
	c.st.mu.Unlock()
	if ok {
		return rev, false, nil
	}
	out, err := c.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(arn),
		Include:        []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil {
		return nil, false, fmt.Errorf("describe task definition %s: %w", arn, err)
	}
	td := out.TaskDefinition
	if td == nil {
		return nil, false, fmt.Errorf("describe task definition %s: no task definition in the answer", arn)
	}
	rev = &revision{
		arn:    strings.Clone(aws.ToString(td.TaskDefinitionArn)),
		family: strings.Clone(aws.ToString(td.Family)),
		number: td.Revision,
		td:     td,
		tags:   cloneTags(out.Tags),
	}
	rev.class = patch.Classify(td, rev.tags, nil, patch.Options{TagPrefix: c.o.TagPrefix})
	c.st.mu.Lock()
	c.st.keepLocked(rev)
	if code, ok := tagValue(out.Tags, c.o.TagPrefix+patch.KeyFailed); ok && rev.class.Kind == patch.KindTwin {
		c.st.failed[rev.arn] = code
	}
	c.st.mu.Unlock()
	return rev, true, nil
}

// refreshTags re-reads a revision's tags (they can change) and updates the
// cache.
func (c *Controller) refreshTags(ctx context.Context, rev *revision) ([]types.Tag, error) {
	out, err := c.ecs.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String(rev.arn)})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", rev.arn, err)
	}
	tags := cloneTags(out.Tags)
	c.st.mu.Lock()
	rev.tags = tags
	c.st.mu.Unlock()
	return tags, nil
}

func tagValue(tags []types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}
