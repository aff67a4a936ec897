package awssim

import (
	"cmp"
	"encoding/json"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/awsjson"
)

// ECS's events on the default bus, in the shapes of
// reference/events/*.json:
//   - every mutating ECS call, successful or not, as CloudTrail delivers
//     it ("AWS API Call via CloudTrail", detail.eventSource
//     ecs.amazonaws.com, requestParameters and responseElements in ECS's
//     member names, errorCode/errorMessage when the call failed);
//   - each deployment change as "ECS Deployment State Change"
//     (SERVICE_DEPLOYMENT_IN_PROGRESS, _COMPLETED, _FAILED; a circuit-breaker
//     rollback is IN_PROGRESS with its reason);
//   - "ECS Service Action": SERVICE_STEADY_STATE when a deployment completes,
//     SERVICE_TASK_START_IMPAIRED when tasks fail with no circuit breaker.
//
// Events are built only when the default bus has an enabled rule with a
// target. They are published with the Sim's lock held (observers), in
// journal order, at the time of the call on the Sim's clock.

const (
	detailTypeCloudTrail = "AWS API Call via CloudTrail"
	// maxTrailElement: CloudTrail leaves requestParameters and
	// responseElements out of events over 100 KB.
	maxTrailElement = 100 << 10
	// The caller of every call, as CloudTrail names it. The simulator does
	// not authenticate: one identity for all.
	trailUser = "awssim"
)

type trailIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	Arn         string `json:"arn"`
	AccountID   string `json:"accountId"`
	AccessKeyID string `json:"accessKeyId"`
	UserName    string `json:"userName"`
}

type trailDetail struct {
	EventVersion       string          `json:"eventVersion"`
	UserIdentity       trailIdentity   `json:"userIdentity"`
	EventTime          string          `json:"eventTime"`
	EventSource        string          `json:"eventSource"`
	EventName          string          `json:"eventName"`
	AwsRegion          string          `json:"awsRegion"`
	SourceIPAddress    string          `json:"sourceIPAddress"`
	UserAgent          string          `json:"userAgent"`
	ErrorCode          string          `json:"errorCode,omitempty"`
	ErrorMessage       string          `json:"errorMessage,omitempty"`
	RequestParameters  json.RawMessage `json:"requestParameters"`
	ResponseElements   json.RawMessage `json:"responseElements"`
	RequestID          string          `json:"requestID"`
	EventID            string          `json:"eventID"`
	ReadOnly           bool            `json:"readOnly"`
	EventType          string          `json:"eventType"`
	ManagementEvent    bool            `json:"managementEvent"`
	RecipientAccountID string          `json:"recipientAccountId"`
	EventCategory      string          `json:"eventCategory"`
}

type deploymentDetail struct {
	EventType    string `json:"eventType"`
	EventName    string `json:"eventName"`
	DeploymentID string `json:"deploymentId"`
	UpdatedAt    string `json:"updatedAt"`
	Reason       string `json:"reason"`
}

type serviceActionDetail struct {
	EventType  string `json:"eventType"`
	EventName  string `json:"eventName"`
	ClusterArn string `json:"clusterArn"`
	CreatedAt  string `json:"createdAt"`
}

var ecsCodec = awsjson.Codec{Service: awsjson.ECS}

func eventTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func eventTimeMillis(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// trailElement renders an input or output in ECS's member names; null when
// absent, empty (as CloudTrail shows TagResource's response) or over
// CloudTrail's limit.
func trailElement(v any) json.RawMessage {
	if v == nil {
		return json.RawMessage("null")
	}
	b, err := ecsCodec.Marshal(v)
	if err != nil || len(b) > maxTrailElement || string(b) == "{}" {
		return json.RawMessage("null")
	}
	return b
}

// publishCallEvent is the OnCall observer that publishes ECS's CloudTrail
// events. Called with s.mu held.
func (s *Sim) publishCallEvent(c Call) {
	if c.Service != "ecs" {
		return
	}
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if !ev.hasRulesLocked() {
		return
	}
	d := trailDetail{
		EventVersion: "1.09",
		UserIdentity: trailIdentity{Type: "IAMUser", PrincipalID: "AIDAAWSSIMEXAMPLE", Arn: "arn:aws:iam::" + s.account + ":user/" + trailUser,
			AccountID: s.account, AccessKeyID: "AKIAAWSSIMEXAMPLE", UserName: trailUser},
		EventTime: eventTime(c.Time), EventSource: "ecs.amazonaws.com", EventName: c.Operation, AwsRegion: s.region,
		SourceIPAddress: "127.0.0.1", UserAgent: cmp.Or(c.UserAgent, "awssim"),
		RequestParameters: trailElement(c.Input), ResponseElements: json.RawMessage("null"),
		RequestID: uuidFrom(c.Seq, 0xc), EventID: uuidFrom(c.Seq, 0xd),
		EventType: "AwsApiCall", ManagementEvent: true, RecipientAccountID: s.account, EventCategory: "Management",
	}
	if c.Err != nil {
		d.ErrorCode, d.ErrorMessage = c.Err.Code, c.Err.Message
	} else if c.Output != nil {
		d.ResponseElements = trailElement(c.Output)
	}
	detail, err := json.Marshal(d)
	if err != nil {
		return
	}
	e := Event{Source: "aws.ecs", DetailType: detailTypeCloudTrail, Detail: detail}
	s.fillEventLocked(ev, &e, c.Time)
	s.publishLocked(ev, ev.buses[defaultBus], e)
}

// publishDeploymentEvent is the OnDeployment observer that publishes ECS's
// deployment and service events. Called with s.mu held.
func (s *Sim) publishDeploymentEvent(d DeploymentChange) {
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if !ev.hasRulesLocked() {
		return
	}
	publish := func(detailType string, detail any) {
		b, err := json.Marshal(detail)
		if err != nil {
			return
		}
		e := Event{Source: "aws.ecs", DetailType: detailType, Resources: []string{d.ServiceArn}, Detail: b}
		s.fillEventLocked(ev, &e, d.Time)
		s.publishLocked(ev, ev.buses[defaultBus], e)
	}
	action := func(eventType, name string) {
		publish("ECS Service Action", serviceActionDetail{EventType: eventType, EventName: name,
			ClusterArn: d.ClusterArn, CreatedAt: eventTimeMillis(d.Time)})
	}
	if d.Impaired {
		action("WARN", "SERVICE_TASK_START_IMPAIRED")
		return
	}
	dd := deploymentDetail{EventType: "INFO", DeploymentID: d.DeploymentID, UpdatedAt: eventTimeMillis(d.Time), Reason: d.Reason}
	switch d.State {
	case types.DeploymentRolloutStateInProgress:
		dd.EventName = "SERVICE_DEPLOYMENT_IN_PROGRESS"
	case types.DeploymentRolloutStateCompleted:
		dd.EventName = "SERVICE_DEPLOYMENT_COMPLETED"
	case types.DeploymentRolloutStateFailed:
		dd.EventType, dd.EventName = "ERROR", "SERVICE_DEPLOYMENT_FAILED"
	default:
		return
	}
	publish("ECS Deployment State Change", dd)
	if d.State == types.DeploymentRolloutStateCompleted {
		action("INFO", "SERVICE_STEADY_STATE")
	}
}
