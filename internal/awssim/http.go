package awssim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecs-sidecar/reconciler/internal/awsjson"
)

// The HTTP side: AWS JSON 1.1. A request is POST / with
// X-Amz-Target: <prefix>.<Operation> and a JSON body; the prefix picks the
// service (awsjson knows each service's prefix from its model), the
// operation picks a handler. Errors are served as AWS serves them: status,
// X-Amzn-ErrorType header and {"__type": code, "message": text}, which is
// what the SDKs, the aws CLI and boto3 read to classify and retry.

// maxBody bounds a request body (the largest legal request is a 64 KiB task
// definition; more room so that oversize ones get ECS's own error).
const maxBody = 4 << 20

// operationHandler decodes a body, serves the call and returns the output.
type operationHandler func(ctx context.Context, s *Sim, codec awsjson.Codec, body []byte) (any, error)

func handle[I, O any](service, op string, fn func(*Sim, *I) (*O, error)) operationHandler {
	return func(ctx context.Context, s *Sim, codec awsjson.Codec, body []byte) (any, error) {
		in := new(I)
		if err := codec.Unmarshal(body, in); err != nil {
			return nil, errf(codeSerialization, "%v", err)
		}
		return invoke(ctx, s, service, op, in, fn, false)
	}
}

// handleOwn is handle for services with their own lock (SQS, EventBridge).
func handleOwn[I, O any](service, op string, fn func(*Sim, context.Context, *I) (*O, error)) operationHandler {
	return func(ctx context.Context, s *Sim, codec awsjson.Codec, body []byte) (any, error) {
		in := new(I)
		if err := codec.Unmarshal(body, in); err != nil {
			return nil, errf(codeSerialization, "%v", err)
		}
		return invokeOwn(ctx, s, service, op, in, fn, false)
	}
}

type serviceRoutes struct {
	name  string // journal's service name
	codec awsjson.Codec
	ops   map[string]operationHandler
}

// routes maps an X-Amz-Target prefix to its service.
var routes = func() map[string]*serviceRoutes {
	ecsOps := map[string]operationHandler{
		"CreateCluster":              handle("ecs", "CreateCluster", (*Sim).createCluster),
		"ListClusters":               handle("ecs", "ListClusters", (*Sim).listClusters),
		"DescribeClusters":           handle("ecs", "DescribeClusters", (*Sim).describeClusters),
		"RegisterTaskDefinition":     handle("ecs", "RegisterTaskDefinition", (*Sim).registerTaskDefinition),
		"DeregisterTaskDefinition":   handle("ecs", "DeregisterTaskDefinition", (*Sim).deregisterTaskDefinition),
		"DescribeTaskDefinition":     handle("ecs", "DescribeTaskDefinition", (*Sim).describeTaskDefinition),
		"ListTaskDefinitionFamilies": handle("ecs", "ListTaskDefinitionFamilies", (*Sim).listTaskDefinitionFamilies),
		"ListTaskDefinitions":        handle("ecs", "ListTaskDefinitions", (*Sim).listTaskDefinitions),
		"TagResource":                handle("ecs", "TagResource", (*Sim).tagResource),
		"UntagResource":              handle("ecs", "UntagResource", (*Sim).untagResource),
		"ListTagsForResource":        handle("ecs", "ListTagsForResource", (*Sim).listTagsForResource),
		"CreateService":              handle("ecs", "CreateService", (*Sim).createService),
		"UpdateService":              handle("ecs", "UpdateService", (*Sim).updateService),
		"DeleteService":              handle("ecs", "DeleteService", (*Sim).deleteService),
		"DescribeServices":           handle("ecs", "DescribeServices", (*Sim).describeServices),
		"ListServices":               handle("ecs", "ListServices", (*Sim).listServices),
		"ListServiceDeployments":     handle("ecs", "ListServiceDeployments", (*Sim).listServiceDeployments),
		"DescribeServiceDeployments": handle("ecs", "DescribeServiceDeployments", (*Sim).describeServiceDeployments),
		"DescribeServiceRevisions":   handle("ecs", "DescribeServiceRevisions", (*Sim).describeServiceRevisions),
	}
	smOps := map[string]operationHandler{
		"CreateSecret":   handle("secretsmanager", "CreateSecret", (*Sim).createSecret),
		"DescribeSecret": handle("secretsmanager", "DescribeSecret", (*Sim).describeSecret),
		"GetSecretValue": handle("secretsmanager", "GetSecretValue", (*Sim).getSecretValue),
	}
	taggingOps := map[string]operationHandler{
		"GetResources": handle("tagging", "GetResources", (*Sim).getResources),
	}
	ecrOps := map[string]operationHandler{
		"GetAuthorizationToken": handle("ecr", "GetAuthorizationToken", (*Sim).getAuthorizationToken),
	}
	sqsOps := map[string]operationHandler{
		"CreateQueue":                  handleOwn("sqs", "CreateQueue", (*Sim).sqsCreateQueue),
		"GetQueueUrl":                  handleOwn("sqs", "GetQueueUrl", (*Sim).sqsGetQueueUrl),
		"DeleteQueue":                  handleOwn("sqs", "DeleteQueue", (*Sim).sqsDeleteQueue),
		"ListQueues":                   handleOwn("sqs", "ListQueues", (*Sim).sqsListQueues),
		"GetQueueAttributes":           handleOwn("sqs", "GetQueueAttributes", (*Sim).sqsGetQueueAttributes),
		"SetQueueAttributes":           handleOwn("sqs", "SetQueueAttributes", (*Sim).sqsSetQueueAttributes),
		"SendMessage":                  handleOwn("sqs", "SendMessage", (*Sim).sqsSendMessage),
		"SendMessageBatch":             handleOwn("sqs", "SendMessageBatch", (*Sim).sqsSendMessageBatch),
		"ReceiveMessage":               handleOwn("sqs", "ReceiveMessage", (*Sim).sqsReceiveMessage),
		"DeleteMessage":                handleOwn("sqs", "DeleteMessage", (*Sim).sqsDeleteMessage),
		"DeleteMessageBatch":           handleOwn("sqs", "DeleteMessageBatch", (*Sim).sqsDeleteMessageBatch),
		"ChangeMessageVisibility":      handleOwn("sqs", "ChangeMessageVisibility", (*Sim).sqsChangeMessageVisibility),
		"ChangeMessageVisibilityBatch": handleOwn("sqs", "ChangeMessageVisibilityBatch", (*Sim).sqsChangeMessageVisibilityBatch),
		"PurgeQueue":                   handleOwn("sqs", "PurgeQueue", (*Sim).sqsPurgeQueue),
	}
	evOps := map[string]operationHandler{
		"CreateEventBus":        handleOwn("events", "CreateEventBus", (*Sim).evCreateEventBus),
		"PutRule":               handleOwn("events", "PutRule", (*Sim).evPutRule),
		"DescribeRule":          handleOwn("events", "DescribeRule", (*Sim).evDescribeRule),
		"DeleteRule":            handleOwn("events", "DeleteRule", (*Sim).evDeleteRule),
		"ListRules":             handleOwn("events", "ListRules", (*Sim).evListRules),
		"ListRuleNamesByTarget": handleOwn("events", "ListRuleNamesByTarget", (*Sim).evListRuleNamesByTarget),
		"PutTargets":            handleOwn("events", "PutTargets", (*Sim).evPutTargets),
		"RemoveTargets":         handleOwn("events", "RemoveTargets", (*Sim).evRemoveTargets),
		"ListTargetsByRule":     handleOwn("events", "ListTargetsByRule", (*Sim).evListTargetsByRule),
		"PutEvents":             handleOwn("events", "PutEvents", (*Sim).evPutEvents),
	}
	m := map[string]*serviceRoutes{}
	for _, r := range []*serviceRoutes{
		{name: "ecs", codec: awsjson.Codec{Service: awsjson.ECS}, ops: ecsOps},
		{name: "sqs", codec: awsjson.Codec{Service: awsjson.SQS}, ops: sqsOps},
		{name: "events", codec: awsjson.Codec{Service: awsjson.EventBridge}, ops: evOps},
		{name: "secretsmanager", codec: awsjson.Codec{Service: awsjson.SecretsManager}, ops: smOps},
		{name: "ecr", codec: awsjson.Codec{Service: awsjson.ECR}, ops: ecrOps},
		{name: "tagging", codec: awsjson.Codec{Service: awsjson.Tagging}, ops: taggingOps},
	} {
		m[r.codec.Service.TargetPrefix()] = r
	}
	return m
}()

// codecFor returns the wire codec of a journal service name.
func codecFor(service string) awsjson.Codec {
	for _, r := range routes {
		if r.name == service {
			return r.codec
		}
	}
	return awsjson.Codec{Service: awsjson.Service(service)}
}

func init() {
	// The 64 KiB quota counts the request as sent: AWS's member names.
	ecsCodec := awsjson.Codec{Service: awsjson.ECS}
	sizeOfTaskDef = func(in *ecs.RegisterTaskDefinitionInput) int {
		b, err := ecsCodec.Marshal(in)
		if err != nil {
			return 0
		}
		return len(b)
	}
}

// Handler returns the simulator's HTTP handler: the AWS APIs on POST /, the
// journal on GET /_sim/journal, the state on GET /_sim/state and the
// counters on GET /_sim/stats.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/stats", s.serveStats)
	mux.HandleFunc("GET /_sim/journal", s.serveJournal)
	mux.HandleFunc("GET /_sim/state", s.serveState)
	mux.HandleFunc("/", s.serveAPI)
	return mux
}

// HTTPError is the JSON body of an AWS JSON protocol error.
type httpError struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func (s *Sim) writeError(w http.ResponseWriter, contentType string, e *Error) {
	typ := e.Code
	if e.Shape != "" {
		typ = e.Shape
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-ErrorType", typ)
	if e.QueryCompatible {
		fault := "Sender"
		if e.HTTPStatus() >= 500 {
			fault = "Receiver"
		}
		w.Header().Set("X-Amzn-Query-Error", e.Code+";"+fault)
	}
	w.WriteHeader(e.HTTPStatus())
	b, _ := json.Marshal(httpError{Type: typ, Message: e.Message})
	w.Write(b)
}

func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request) {
	// STS and IAM speak the query protocol; CloudTrail has no awsjson model
	// (sts.go, cloudtrail.go).
	if isQueryRequest(r) {
		s.serveQuery(w, r)
		return
	}
	if isCloudTrailTarget(r.Header.Get("X-Amz-Target")) {
		s.serveCloudTrail(w, r)
		return
	}
	start := time.Now()
	target := r.Header.Get("X-Amz-Target")
	status := http.StatusOK
	defer func() {
		s.log.Debug("awssim request", "target", target, "status", status, "duration", time.Since(start))
	}()
	contentType := "application/x-amz-json-1.1"
	reqID := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.requestID())
	w.Header().Set("X-Amzn-RequestId", reqID)
	fail := func(e *Error) {
		status = e.HTTPStatus()
		s.writeError(w, contentType, e)
	}
	if r.Method != http.MethodPost {
		fail(&Error{Code: "UnknownOperationException", Message: "Only POST is served on /.", Status: http.StatusMethodNotAllowed})
		return
	}
	prefix, op, _ := strings.Cut(target, ".")
	svc := routes[prefix]
	if svc == nil {
		fail(errf(codeUnknownOperation, "Unknown service target %q.", target))
		return
	}
	contentType = svc.codec.Service.ContentType()
	h := svc.ops[op]
	if h == nil {
		fail(errf(codeUnknownOperation, "Unknown operation %s.", op))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		fail(errf(codeSerialization, "reading the body: %v", err))
		return
	}
	if len(body) > maxBody {
		fail(&Error{Code: codeSerialization, Message: "Request body too large.", Status: http.StatusRequestEntityTooLarge})
		return
	}
	out, err := h(withUserAgent(withEndpoint(r.Context(), r), r), s, svc.codec, body)
	if errors.Is(err, ErrConnectionDropped) {
		status = 0
		dropConnection(w)
		return
	}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Code: codeServer, Message: err.Error(), Status: 500}
		}
		fail(e)
		return
	}
	b, err := svc.codec.Marshal(out)
	if err != nil {
		fail(&Error{Code: codeServer, Message: "encoding the response: " + err.Error(), Status: 500})
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// dropConnection closes the client's connection without an answer (an
// injected fault).
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
				tc.SetLinger(0) // a reset, as a dropped connection looks
			}
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2: abort the stream
}

type userAgentKey struct{}

// withUserAgent carries the request's User-Agent to the journal.
func withUserAgent(ctx context.Context, r *http.Request) context.Context {
	return context.WithValue(ctx, userAgentKey{}, r.Header.Get("User-Agent"))
}

func userAgentOf(ctx context.Context) string {
	ua, _ := ctx.Value(userAgentKey{}).(string)
	return ua
}

// requestID numbers requests on their own counter, so that deployment ids
// do not depend on how many requests were served.
func (s *Sim) requestID() int64 { return s.requests.Add(1) }

// JournalEntryJSON is the wire form of a journal entry on GET /_sim/journal:
// inputs and outputs in the service's own JSON shape.
type JournalEntryJSON struct {
	Seq        int64           `json:"seq"`
	Time       time.Time       `json:"time"`
	Kind       string          `json:"kind"` // "call" or "deployment"
	Service    string          `json:"service,omitempty"`
	Operation  string          `json:"operation,omitempty"`
	Input      json.RawMessage `json:"input,omitempty"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      *httpError      `json:"error,omitempty"`
	UserAgent  string          `json:"userAgent,omitempty"` // the HTTP caller's User-Agent
	Deployment *DeploymentJSON `json:"deployment,omitempty"`
}

// DeploymentJSON is a DeploymentChange on the wire.
type DeploymentJSON struct {
	ClusterArn     string `json:"clusterArn"`
	ServiceArn     string `json:"serviceArn"`
	DeploymentID   string `json:"deploymentId"`
	TaskDefinition string `json:"taskDefinition"`
	State          string `json:"rolloutState"`
	Reason         string `json:"reason"`
	Impaired       bool   `json:"impaired,omitempty"`
}

// JournalJSON renders entries in their wire form.
func JournalJSON(entries []Entry) []JournalEntryJSON {
	out := make([]JournalEntryJSON, 0, len(entries))
	for _, e := range entries {
		j := JournalEntryJSON{Seq: e.Seq, Time: e.Time}
		switch {
		case e.Call != nil:
			c := e.Call
			j.Kind, j.Service, j.Operation, j.UserAgent = "call", c.Service, c.Operation, c.UserAgent
			codec := codecFor(c.Service)
			if b, err := codec.Marshal(c.Input); err == nil {
				j.Input = b
			}
			if c.Output != nil {
				if b, err := codec.Marshal(c.Output); err == nil {
					j.Output = b
				}
			}
			if c.Err != nil {
				j.Error = &httpError{Type: c.Err.Code, Message: c.Err.Message}
			}
		case e.Deployment != nil:
			d := e.Deployment
			j.Kind = "deployment"
			j.Deployment = &DeploymentJSON{
				ClusterArn: d.ClusterArn, ServiceArn: d.ServiceArn, DeploymentID: d.DeploymentID,
				TaskDefinition: d.TaskDefinition, State: string(d.State), Reason: d.Reason, Impaired: d.Impaired,
			}
		}
		out = append(out, j)
	}
	return out
}

// serveJournal answers GET /_sim/journal[?since=N][&operation=Op].
func (s *Sim) serveJournal(w http.ResponseWriter, r *http.Request) {
	since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	op := r.URL.Query().Get("operation")
	var entries []Entry
	for _, e := range s.Journal() {
		if e.Seq <= since {
			continue
		}
		if op != "" && (e.Call == nil || e.Call.Operation != op) {
			continue
		}
		entries = append(entries, e)
	}
	writeJSON(w, JournalJSON(entries))
}

func (s *Sim) serveState(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.State())
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}
