package deploytest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// iamRequest is one authorization AWS makes for an API call: the action,
// the resource ARN ("*" for an action without a resource type) and the
// request context (the condition keys AWS fills in).
type iamRequest struct {
	Action   string
	Resource string
	Context  map[string][]string
}

func (r iamRequest) String() string {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range r.Context {
			if !yield(k) {
				return
			}
		}
	})
	var ctx []string
	for _, k := range keys {
		ctx = append(ctx, k+"="+strings.Join(r.Context[k], "|"))
	}
	return fmt.Sprintf("%s on %s {%s}", r.Action, r.Resource, strings.Join(ctx, ", "))
}

// decision is a request made by the code under test and awssim's answer.
type decision struct {
	Operation string // "ECS RegisterTaskDefinition", "registry GET"
	Request   iamRequest
	Decision  string
}

// authorizer runs the reconciler's code under the template's task role
// policy: installed on SDK clients (and on the registry transport), it turns
// every call into the requests IAM authorizes for it (the model below, from
// the Service Authorization Reference: resource types and condition keys of
// each action), decides them with awssim.Evaluate, and refuses the call with
// AccessDeniedException, before it is sent, when a request is denied. Every
// decision is kept, so a test can show both that the code's calls are
// allowed and that each grant is used.
type authorizer struct {
	policy    []awssim.Statement
	account   string
	partition string
	// resourceTags reads a resource's tags (aws:ResourceTag/*) with a client
	// the authorizer does not gate.
	resourceTags func(ctx context.Context, arn string) (map[string]string, error)
	// nextRevision is the ARN the next registration of a family gets.
	nextRevision func(ctx context.Context, region, family string) (string, error)

	mu        sync.Mutex
	decisions []decision
	// unmodelled lists operations the model does not know: each is a test
	// failure (a new call needs its IAM requests described here).
	unmodelled []string
}

// install adds the authorizer to the clients made from cfg.
func (a *authorizer) install(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("deploytestIAM",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				svc, op, region := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx), awsmiddleware.GetRegion(ctx)
				reqs, err := a.requests(ctx, svc, op, region, in.Parameters)
				if err != nil {
					return middleware.InitializeOutput{}, middleware.Metadata{}, err
				}
				if err := a.decide(svc+" "+op, reqs); err != nil {
					return middleware.InitializeOutput{}, middleware.Metadata{}, err
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

// decide evaluates reqs, records them, and returns IAM's error for the
// first denied one.
func (a *authorizer) decide(op string, reqs []iamRequest) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var denied *iamRequest
	for _, r := range reqs {
		d := awssim.Evaluate(a.policy, r.Action, r.Resource, r.Context)
		a.decisions = append(a.decisions, decision{Operation: op, Request: r, Decision: d})
		if d != awssim.DecisionAllowed && denied == nil {
			denied = &r
		}
	}
	if denied != nil {
		return &smithy.GenericAPIError{Code: "AccessDeniedException", Message: fmt.Sprintf(
			"User: arn:%s:sts::%s:assumed-role/reconciler-TaskRole/deploytest is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action",
			a.partition, a.account, denied.Action, denied.Resource, denied.Action)}
	}
	return nil
}

// log returns the decisions so far.
func (a *authorizer) log() []decision {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.decisions)
}

// mark returns the number of decisions so far, for since.
func (a *authorizer) mark() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.decisions)
}

// since returns the decisions made after mark.
func (a *authorizer) since(mark int) []decision {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.decisions[mark:])
}

// requests is the model: the IAM requests of one SDK operation.
func (a *authorizer) requests(ctx context.Context, svc, op, region string, params any) ([]iamRequest, error) {
	base := func() map[string][]string { return map[string][]string{"aws:RequestedRegion": {region}} }
	arn := func(service, resource string) string {
		return fmt.Sprintf("arn:%s:%s:%s:%s:%s", a.partition, service, region, a.account, resource)
	}
	cluster := func(c *string) string {
		name := aws.ToString(c)
		switch {
		case strings.HasPrefix(name, "arn:"):
			return name
		case name == "":
			name = "default"
		}
		return arn("ecs", "cluster/"+name)
	}
	service := func(c *string, s string) string {
		if strings.HasPrefix(s, "arn:") {
			return s
		}
		cl := cluster(c)
		return arn("ecs", "service/"+cl[strings.LastIndexByte(cl, '/')+1:]+"/"+s)
	}
	taskDef := func(td string) string {
		if strings.HasPrefix(td, "arn:") {
			return td
		}
		return arn("ecs", "task-definition/"+td)
	}
	one := func(action, resource string, c map[string][]string) []iamRequest {
		return []iamRequest{{Action: action, Resource: resource, Context: c}}
	}
	withResourceTags := func(c map[string][]string, resource string) (map[string][]string, error) {
		tags, err := a.resourceTags(ctx, resource)
		if err != nil {
			return nil, fmt.Errorf("deploytest: tags of %s: %w", resource, err)
		}
		for k, v := range tags {
			c["aws:ResourceTag/"+k] = []string{v}
		}
		return c, nil
	}
	withRequestTags := func(c map[string][]string, tags []types.Tag) map[string][]string {
		keys := []string{}
		for _, t := range tags {
			keys = append(keys, aws.ToString(t.Key))
			c["aws:RequestTag/"+aws.ToString(t.Key)] = []string{aws.ToString(t.Value)}
		}
		c["aws:TagKeys"] = keys
		return c
	}

	switch svc {
	case "STS":
		if op == "GetCallerIdentity" {
			return nil, nil // needs no permission
		}
	case "ECS":
		switch in := params.(type) {
		// No resource type (the reference's "*" actions).
		case *ecs.ListClustersInput, *ecs.ListTaskDefinitionFamiliesInput, *ecs.ListTaskDefinitionsInput,
			*ecs.DescribeTaskDefinitionInput, *ecs.DeregisterTaskDefinitionInput:
			return one("ecs:"+op, "*", base()), nil
		case *ecs.ListServicesInput:
			c := base()
			c["ecs:cluster"] = []string{cluster(in.Cluster)}
			return one("ecs:ListServices", "*", c), nil
		// service*, with ecs:cluster.
		case *ecs.DescribeServicesInput:
			var out []iamRequest
			for _, s := range in.Services {
				c := base()
				c["ecs:cluster"] = []string{cluster(in.Cluster)}
				out = append(out, iamRequest{"ecs:DescribeServices", service(in.Cluster, s), c})
			}
			return out, nil
		case *ecs.UpdateServiceInput:
			c := base()
			c["ecs:cluster"] = []string{cluster(in.Cluster)}
			if in.TaskDefinition != nil {
				c["ecs:task-definition"] = []string{taskDef(*in.TaskDefinition)}
			}
			return one("ecs:UpdateService", service(in.Cluster, aws.ToString(in.Service)), c), nil
		case *ecs.ListServiceDeploymentsInput:
			c := base()
			c["ecs:cluster"] = []string{cluster(in.Cluster)}
			return one("ecs:ListServiceDeployments", service(in.Cluster, aws.ToString(in.Service)), c), nil
		// service-revision*, with ecs:cluster and ecs:service.
		case *ecs.DescribeServiceRevisionsInput:
			var out []iamRequest
			for _, r := range in.ServiceRevisionArns {
				// arn:...:service-revision/<cluster>/<service>/<id>
				parts := strings.Split(r[strings.Index(r, ":service-revision/")+len(":service-revision/"):], "/")
				c := base()
				if len(parts) == 3 {
					c["ecs:cluster"] = []string{arn("ecs", "cluster/"+parts[0])}
					c["ecs:service"] = []string{arn("ecs", "service/"+parts[0]+"/"+parts[1])}
				}
				out = append(out, iamRequest{"ecs:DescribeServiceRevisions", r, c})
			}
			return out, nil
		// service-deployment*, with ecs:cluster and ecs:service.
		case *ecs.DescribeServiceDeploymentsInput:
			var out []iamRequest
			for _, r := range in.ServiceDeploymentArns {
				// arn:...:service-deployment/<cluster>/<service>/<id>
				parts := strings.Split(r[strings.Index(r, ":service-deployment/")+len(":service-deployment/"):], "/")
				c := base()
				if len(parts) == 3 {
					c["ecs:cluster"] = []string{arn("ecs", "cluster/"+parts[0])}
					c["ecs:service"] = []string{arn("ecs", "service/"+parts[0]+"/"+parts[1])}
				}
				out = append(out, iamRequest{"ecs:DescribeServiceDeployments", r, c})
			}
			return out, nil
		case *ecs.ListTagsForResourceInput:
			c, err := withResourceTags(base(), aws.ToString(in.ResourceArn))
			if err != nil {
				return nil, err
			}
			return one("ecs:ListTagsForResource", aws.ToString(in.ResourceArn), c), nil
		// task-definition* in the current reference (earlier: none, "*");
		// both are asked. Tags make it a tag-on-create (ecs:TagResource
		// with ecs:CreateAction), roles an iam:PassRole each.
		case *ecs.RegisterTaskDefinitionInput:
			next, err := a.nextRevision(ctx, region, aws.ToString(in.Family))
			if err != nil {
				return nil, fmt.Errorf("deploytest: next revision of %s: %w", aws.ToString(in.Family), err)
			}
			out := []iamRequest{
				{"ecs:RegisterTaskDefinition", next, withRequestTags(base(), in.Tags)},
				{"ecs:RegisterTaskDefinition", "*", withRequestTags(base(), in.Tags)},
			}
			if len(in.Tags) > 0 {
				c := withRequestTags(base(), in.Tags)
				c["ecs:CreateAction"] = []string{"RegisterTaskDefinition"}
				out = append(out, iamRequest{"ecs:TagResource", next, c})
			}
			for _, r := range []*string{in.TaskRoleArn, in.ExecutionRoleArn} {
				role := aws.ToString(r)
				if role == "" {
					continue
				}
				if !strings.HasPrefix(role, "arn:") {
					role = fmt.Sprintf("arn:%s:iam::%s:role/%s", a.partition, a.account, role)
				}
				out = append(out, iamRequest{"iam:PassRole", role, map[string][]string{"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}})
			}
			return out, nil
		case *ecs.TagResourceInput:
			c, err := withResourceTags(withRequestTags(base(), in.Tags), aws.ToString(in.ResourceArn))
			if err != nil {
				return nil, err
			}
			return one("ecs:TagResource", aws.ToString(in.ResourceArn), c), nil
		case *ecs.UntagResourceInput:
			c, err := withResourceTags(base(), aws.ToString(in.ResourceArn))
			if err != nil {
				return nil, err
			}
			c["aws:TagKeys"] = in.TagKeys
			return one("ecs:UntagResource", aws.ToString(in.ResourceArn), c), nil
		}
	case "SQS":
		queue := func(u *string) (string, error) {
			p, err := url.Parse(aws.ToString(u))
			if err != nil {
				return "", err
			}
			parts := strings.Split(strings.Trim(p.Path, "/"), "/")
			if len(parts) != 2 {
				return "", fmt.Errorf("queue URL %s", aws.ToString(u))
			}
			return fmt.Sprintf("arn:%s:sqs:%s:%s:%s", a.partition, region, parts[0], parts[1]), nil
		}
		var u *string
		action := "sqs:" + strings.TrimSuffix(op, "Batch")
		switch in := params.(type) {
		case *sqs.ReceiveMessageInput:
			u = in.QueueUrl
		case *sqs.DeleteMessageInput:
			u = in.QueueUrl
		case *sqs.DeleteMessageBatchInput:
			u = in.QueueUrl
		case *sqs.ChangeMessageVisibilityInput:
			u = in.QueueUrl
		case *sqs.ChangeMessageVisibilityBatchInput:
			u = in.QueueUrl
		case *sqs.GetQueueAttributesInput:
			u = in.QueueUrl
		case *sqs.SendMessageInput:
			u = in.QueueUrl
		}
		if u != nil {
			q, err := queue(u)
			if err != nil {
				return nil, err
			}
			return one(action, q, base()), nil
		}
	case "EventBridge":
		if in, ok := params.(*eventbridge.PutEventsInput); ok {
			var out []iamRequest
			for _, e := range in.Entries {
				bus := aws.ToString(e.EventBusName)
				if bus == "" {
					bus = "default"
				}
				if !strings.HasPrefix(bus, "arn:") {
					bus = arn("events", "event-bus/"+bus)
				}
				out = append(out, iamRequest{"events:PutEvents", bus, base()})
			}
			return out, nil
		}
	case "Secrets Manager":
		switch in := params.(type) {
		case *secretsmanager.GetSecretValueInput:
			return one("secretsmanager:GetSecretValue", aws.ToString(in.SecretId), base()), nil
		case *secretsmanager.DescribeSecretInput:
			return one("secretsmanager:DescribeSecret", aws.ToString(in.SecretId), base()), nil
		}
	case "ECR":
		if _, ok := params.(*ecr.GetAuthorizationTokenInput); ok {
			return one("ecr:GetAuthorizationToken", "*", base()), nil
		}
	case "DynamoDB":
		// The lease table (internal/lease): each item operation is
		// authorized on the table's ARN.
		var table *string
		switch in := params.(type) {
		case *dynamodb.GetItemInput:
			table = in.TableName
		case *dynamodb.PutItemInput:
			table = in.TableName
		case *dynamodb.UpdateItemInput:
			table = in.TableName
		case *dynamodb.DeleteItemInput:
			table = in.TableName
		case *dynamodb.ScanInput:
			table = in.TableName
		}
		if table != nil {
			return one("dynamodb:"+op, arn("dynamodb", "table/"+aws.ToString(table)), base()), nil
		}
	case "Resource Groups Tagging API":
		if _, ok := params.(*resourcegroupstaggingapi.GetResourcesInput); ok {
			return one("tag:GetResources", "*", base()), nil // no resource type
		}
	}
	a.mu.Lock()
	a.unmodelled = append(a.unmodelled, svc+" "+op)
	a.mu.Unlock()
	return nil, fmt.Errorf("deploytest: no IAM model for %s %s (add its requests to authorizer.requests)", svc, op)
}

// registryPath is a registry API path: /v2/<repository>/manifests|blobs/<ref>.
var registryPath = regexp.MustCompile(`^/v2/(.+)/(manifests|blobs)/([^/]+)$`)

// transport authorizes the registry requests made to ecrHost as ECR does:
// reading a manifest is ecr:BatchGetImage, a layer or config blob
// ecr:GetDownloadUrlForLayer, on the repository's ARN (a denial is ECR's 403).
// Requests to other hosts pass.
func (a *authorizer) transport(base http.RoundTripper, ecrHost, region, registryAccount string) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		m := registryPath.FindStringSubmatch(r.URL.Path)
		if r.URL.Host != ecrHost || m == nil {
			return base.RoundTrip(r)
		}
		action := "ecr:BatchGetImage"
		if m[2] == "blobs" {
			action = "ecr:GetDownloadUrlForLayer"
		}
		req := iamRequest{Action: action, Resource: fmt.Sprintf("arn:%s:ecr:%s:%s:repository/%s", a.partition, region, registryAccount, m[1]),
			Context: map[string][]string{"aws:RequestedRegion": {region}}}
		if err := a.decide("registry "+r.Method+" "+m[2], []iamRequest{req}); err != nil {
			return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Request: r, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(`{"errors":[{"code":"DENIED","message":"` + err.Error() + `"}]}`))}, nil
		}
		return base.RoundTrip(r)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// grantUse is one (statement, action) of the policy and the decisions that
// it allowed.
type grantUse struct {
	Sid    string
	Action string
	Used   []decision
}

// grantsUsed returns, for every action of every Allow statement, the
// allowed decisions that the statement alone would allow: the calls that
// justify the grant.
func grantsUsed(policy []awssim.Statement, log []decision) []grantUse {
	var out []grantUse
	for _, st := range policy {
		if st.Effect != "Allow" {
			continue
		}
		for _, action := range st.Actions {
			g := grantUse{Sid: st.Sid, Action: action}
			only := st
			only.Actions = []string{action}
			for _, d := range log {
				if d.Decision == awssim.DecisionAllowed && awssim.Evaluate([]awssim.Statement{only}, d.Request.Action, d.Request.Resource, d.Request.Context) == awssim.DecisionAllowed {
					g.Used = append(g.Used, d)
				}
			}
			out = append(out, g)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Sid < out[j].Sid })
	return out
}

// denials returns the denied decisions of log.
func denials(log []decision) []decision {
	var out []decision
	for _, d := range log {
		if d.Decision != awssim.DecisionAllowed {
			out = append(out, d)
		}
	}
	return out
}

// requireDenied fails unless log has a denied request for action on
// resource (a prefix match on the resource).
func requireDenied(t *testing.T, log []decision, action, resource, why string) {
	t.Helper()
	for _, d := range log {
		if d.Decision != awssim.DecisionAllowed && d.Request.Action == action && strings.HasPrefix(d.Request.Resource, resource) {
			t.Logf("denied as it should be (%s): %s", why, d.Request)
			return
		}
	}
	t.Errorf("%s on %s was not denied (%s); decisions:\n%s", action, resource, why, formatLog(log))
}

func formatLog(log []decision) string {
	var b strings.Builder
	for _, d := range log {
		fmt.Fprintf(&b, "  %-13s %-38s %s\n", d.Decision, d.Operation, d.Request)
	}
	return b.String()
}
