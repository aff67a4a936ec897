// Package watch turns the outside world into family keys for the controller:
// EventBridge events delivered through SQS, and periodic sweeps.
package watch

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ecs-sidecar/reconciler/internal/ecsarn"
)

// Kind is what an event says happened. Every kind is a trigger only: the
// controller re-reads the state it names and never trusts the event's content.
type Kind string

// The kinds of event the reconciler acts on. The string values are metric
// label values: keep them fixed.
const (
	KindRegisterTaskDefinition   Kind = "register_task_definition"
	KindDeregisterTaskDefinition Kind = "deregister_task_definition"
	KindTagResource              Kind = "tag_resource"
	KindUntagResource            Kind = "untag_resource"
	KindCreateService            Kind = "create_service"
	KindUpdateService            Kind = "update_service"
	KindDeploymentStateChange    Kind = "deployment_state_change"
	KindServiceAction            Kind = "service_action"
)

// Kinds lists every kind, for pre-creating metric label values.
var Kinds = []Kind{
	KindRegisterTaskDefinition, KindDeregisterTaskDefinition, KindTagResource, KindUntagResource,
	KindCreateService, KindUpdateService, KindDeploymentStateChange, KindServiceAction,
}

// Errors of Parse. Both mean "delete the message and count it": redelivering
// it can never help.
var (
	// ErrUnparseable: the body is not an EventBridge event.
	ErrUnparseable = errors.New("not an EventBridge event")
	// ErrIgnored: a well-formed event the reconciler has no use for (another
	// source or detail-type, another API call, a call that failed, a tag
	// change on a resource that is not a task definition).
	ErrIgnored = errors.New("event ignored")
)

// Event is what the reconciler needs from one EventBridge event.
type Event struct {
	// ID deduplicates deliveries: CloudTrail's detail.eventID where there is
	// one, else the EventBridge event id.
	ID   string
	Kind Kind
	// Time is when the event happened (CloudTrail's eventTime, else the
	// envelope's time); zero when the event does not say.
	Time time.Time
	// Region and Account are the envelope's.
	Region  string
	Account string

	// Family is set for task definition events, and for service events that
	// name the task definition they deploy.
	Family string
	// TaskDefinitionArn is set when the event names one revision.
	TaskDefinitionArn string

	// Cluster and Service name the service of service events: Cluster is a
	// name or ARN, or empty when the event does not say (the default
	// cluster for CreateService/UpdateService, unknown for an old-format
	// service ARN); Service is a name or ARN.
	Cluster string
	Service string

	// EventName, DeploymentID and Reason come from ECS's own events
	// (for example SERVICE_DEPLOYMENT_FAILED and the circuit breaker's reason).
	EventName    string
	DeploymentID string
	Reason       string

	// Caller is who made the API call of a CloudTrail event: its
	// userIdentity's ARN (an assumed role's session, a user), else its type
	// (AWSService, Root); "" for ECS's own events. Who moved a service off
	// its twin, for the logs; never a reason to trust or refuse anything.
	Caller string
	// OwnCall: the call's User-Agent names the reconciler's SDK app id
	// (ReconcilerAppID), so the reconciler made it (any replica).
	OwnCall bool
}

// ReconcilerAppID is the SDK app id the reconciler's clients send in their
// User-Agent ("app/<id>"), which CloudTrail records as the event's userAgent.
const ReconcilerAppID = "ecs-sidecar-reconciler"

// envelope is the EventBridge event. Fields are raw where the shape varies.
type envelope struct {
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

type cloudTrailDetail struct {
	EventSource       string          `json:"eventSource"`
	EventName         string          `json:"eventName"`
	EventTime         string          `json:"eventTime"`
	EventID           string          `json:"eventID"`
	ErrorCode         string          `json:"errorCode"`
	RequestParameters json.RawMessage `json:"requestParameters"`
	ResponseElements  json.RawMessage `json:"responseElements"`
	UserAgent         string          `json:"userAgent"`
	UserIdentity      struct {
		Type      string `json:"type"`
		ARN       string `json:"arn"`
		InvokedBy string `json:"invokedBy"`
	} `json:"userIdentity"`
}

type ecsDetail struct {
	EventName    string `json:"eventName"`
	DeploymentID string `json:"deploymentId"`
	Reason       string `json:"reason"`
	ClusterArn   string `json:"clusterArn"`
	UpdatedAt    string `json:"updatedAt"`
	CreatedAt    string `json:"createdAt"`
}

// Detail types and sources of the events the reconciler subscribes to.
const (
	sourceECS                  = "aws.ecs"
	detailTypeCloudTrail       = "AWS API Call via CloudTrail"
	detailTypeDeploymentChange = "ECS Deployment State Change"
	detailTypeServiceAction    = "ECS Service Action"
	eventSourceECS             = "ecs.amazonaws.com"
	taskDefinitionResourcePart = ":task-definition/"
	serviceResourcePart        = ":service/"
)

// Parse reads one SQS message body holding an EventBridge event. It returns
// ErrUnparseable or ErrIgnored (wrapped, with the reason) for messages that
// must be deleted without a reconcile.
func Parse(body []byte) (Event, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrUnparseable, err)
	}
	if env.Source == "" || env.DetailType == "" {
		return Event{}, fmt.Errorf("%w: no source or detail-type", ErrUnparseable)
	}
	if env.Source != sourceECS {
		return Event{}, fmt.Errorf("%w: source %q", ErrIgnored, env.Source)
	}
	ev := Event{ID: env.ID, Region: env.Region, Account: env.Account, Time: parseTime(env.Time)}
	switch env.DetailType {
	case detailTypeCloudTrail:
		return parseCloudTrail(ev, env)
	case detailTypeDeploymentChange, detailTypeServiceAction:
		return parseECSEvent(ev, env)
	default:
		return Event{}, fmt.Errorf("%w: detail-type %q", ErrIgnored, env.DetailType)
	}
}

func parseCloudTrail(ev Event, env envelope) (Event, error) {
	var d cloudTrailDetail
	if err := unmarshalObject(env.Detail, &d); err != nil {
		return Event{}, fmt.Errorf("%w: detail: %v", ErrUnparseable, err)
	}
	if d.EventSource != eventSourceECS {
		return Event{}, fmt.Errorf("%w: eventSource %q", ErrIgnored, d.EventSource)
	}
	if d.ErrorCode != "" {
		// The call failed: nothing changed.
		return Event{}, fmt.Errorf("%w: %s failed with %s", ErrIgnored, d.EventName, d.ErrorCode)
	}
	if d.EventID != "" {
		ev.ID = d.EventID
	}
	ev.OwnCall = strings.Contains(d.UserAgent, "app/"+ReconcilerAppID)
	switch u := d.UserIdentity; {
	case u.ARN != "":
		ev.Caller = bounded(u.ARN)
	case u.InvokedBy != "":
		ev.Caller = bounded(u.Type + " " + u.InvokedBy)
	default:
		ev.Caller = bounded(u.Type)
	}
	if t := parseTime(d.EventTime); !t.IsZero() {
		ev.Time = t
	}
	var req map[string]json.RawMessage
	if err := unmarshalObject(d.RequestParameters, &req); err != nil {
		return Event{}, fmt.Errorf("%w: requestParameters: %v", ErrUnparseable, err)
	}
	var resp map[string]json.RawMessage
	if err := unmarshalObject(d.ResponseElements, &resp); err != nil {
		return Event{}, fmt.Errorf("%w: responseElements: %v", ErrUnparseable, err)
	}

	switch d.EventName {
	case "RegisterTaskDefinition":
		ev.Kind = KindRegisterTaskDefinition
		// The ARN of the new revision is in the response; requestParameters
		// and responseElements are both left out of events over 100 KB, so
		// fall back to the family the request names.
		var td struct {
			TaskDefinitionArn string `json:"taskDefinitionArn"`
			Family            string `json:"family"`
		}
		if err := unmarshalObject(resp["taskDefinition"], &td); err != nil {
			return Event{}, fmt.Errorf("%w: responseElements.taskDefinition: %v", ErrUnparseable, err)
		}
		ev.TaskDefinitionArn = td.TaskDefinitionArn
		ev.Family = firstNonEmpty(ecsarn.Family(td.TaskDefinitionArn), td.Family, stringField(req, "family"))
	case "DeregisterTaskDefinition":
		ev.Kind = KindDeregisterTaskDefinition
		ref := stringField(req, "taskDefinition")
		if strings.HasPrefix(ref, "arn:") {
			ev.TaskDefinitionArn = ref
		}
		ev.Family = ecsarn.Family(ref)
	case "TagResource", "UntagResource":
		ev.Kind = KindTagResource
		if d.EventName == "UntagResource" {
			ev.Kind = KindUntagResource
		}
		arn := stringField(req, "resourceArn")
		if !strings.Contains(arn, taskDefinitionResourcePart) {
			// Tags of clusters and services do not change opt-in.
			return Event{}, fmt.Errorf("%w: %s on a resource that is not a task definition", ErrIgnored, d.EventName)
		}
		ev.TaskDefinitionArn = arn
		ev.Family = ecsarn.Family(arn)
	case "CreateService", "UpdateService":
		ev.Kind = KindCreateService
		ev.Service = stringField(req, "serviceName")
		if d.EventName == "UpdateService" {
			ev.Kind = KindUpdateService
			ev.Service = stringField(req, "service")
		}
		ev.Cluster = stringField(req, "cluster")
		var svc struct {
			ServiceArn     string `json:"serviceArn"`
			ClusterArn     string `json:"clusterArn"`
			TaskDefinition string `json:"taskDefinition"`
		}
		if err := unmarshalObject(resp["service"], &svc); err != nil {
			return Event{}, fmt.Errorf("%w: responseElements.service: %v", ErrUnparseable, err)
		}
		ev.Service = firstNonEmpty(svc.ServiceArn, ev.Service)
		ev.Cluster = firstNonEmpty(svc.ClusterArn, ev.Cluster)
		ev.Family = ecsarn.Family(firstNonEmpty(svc.TaskDefinition, stringField(req, "taskDefinition")))
	default:
		return Event{}, fmt.Errorf("%w: eventName %q", ErrIgnored, d.EventName)
	}
	if ev.Family == "" && ev.Service == "" {
		return Event{}, fmt.Errorf("%w: %s names no task definition family or service", ErrUnparseable, d.EventName)
	}
	return ev, nil
}

func parseECSEvent(ev Event, env envelope) (Event, error) {
	var d ecsDetail
	if err := unmarshalObject(env.Detail, &d); err != nil {
		return Event{}, fmt.Errorf("%w: detail: %v", ErrUnparseable, err)
	}
	ev.Kind = KindDeploymentStateChange
	if env.DetailType == detailTypeServiceAction {
		ev.Kind = KindServiceAction
	}
	ev.EventName, ev.DeploymentID, ev.Reason = d.EventName, d.DeploymentID, d.Reason
	if t := parseTime(firstNonEmpty(d.UpdatedAt, d.CreatedAt)); !t.IsZero() && ev.Time.IsZero() {
		ev.Time = t
	}
	for _, r := range env.Resources {
		if strings.Contains(r, serviceResourcePart) {
			ev.Service = r
			break
		}
	}
	if ev.Service == "" {
		return Event{}, fmt.Errorf("%w: %s names no service in resources", ErrUnparseable, env.DetailType)
	}
	ev.Cluster = firstNonEmpty(ecsarn.ServiceCluster(ev.Service), d.ClusterArn)
	return ev, nil
}

// Foreign says why ev is not an event of account and region, or "" when
// it is one: "account" or "region" when the envelope's differs, "arn" when
// an ARN the event names (task definition, service, cluster) is of another
// account or Region. An empty account or region is not checked.
func (ev Event) Foreign(account, region string) string {
	switch {
	case account == "" && region == "":
		return ""
	case account != "" && ev.Account != account:
		return "account"
	case region != "" && ev.Region != region:
		return "region"
	}
	for _, ref := range []string{ev.TaskDefinitionArn, ev.Service, ev.Cluster} {
		if !strings.HasPrefix(ref, "arn:") {
			continue // a name: of the envelope's account and Region
		}
		parts := strings.SplitN(ref, ":", 6)
		if len(parts) != 6 || (account != "" && parts[4] != account) || (region != "" && parts[3] != region) {
			return "arn"
		}
	}
	return ""
}

// unmarshalObject decodes raw into v, treating a missing value or null as
// an empty object.
func unmarshalObject(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// stringField returns m[key] when it is a JSON string, else "".
func stringField(m map[string]json.RawMessage, key string) string {
	var s string
	if raw, ok := m[key]; ok && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// parseTime reads the RFC 3339 times of events (time.Parse takes fractional
// seconds too); zero when absent or bad.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
