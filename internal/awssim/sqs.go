package awssim

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ecs-sidecar/reconciler/internal/deepcopy"
)

// SQS: standard queues over the JSON protocol (awsJson1_0, X-Amz-Target
// AmazonSQS.<Op>), as aws-sdk-go-v2, boto3 and the aws CLI speak it now.
//
// Times (visibility, delays, retention, timestamps) are on the Sim's clock,
// so that a test with a FakeClock decides when a message becomes visible
// again. A long poll's wait (WaitTimeSeconds) is a property of the
// transport and runs on the wall clock; while it waits it looks again at
// every send and every 100 ms (the fake clock may have moved).
//
// Queue URLs are <endpoint>/<account>/<name>, the endpoint being the one the
// request came to (the Host header), or https://sqs.<region>.amazonaws.com
// for Go callers. A QueueUrl is resolved by its path only, so that clients
// that address 127.0.0.1 and localhost reach the same queue.
//
// FIFO queues are not served (the reconciler uses a standard queue).

const (
	sqsDefaultVisibility = 30
	sqsDefaultRetention  = 345600
	sqsDefaultMaxSize    = 1048576 // 1 MiB since 2025 (botocore 1.43 documents it; moto agrees)
	sqsMaxWait           = 20
	sqsMaxVisibility     = 43200
	sqsMaxBatch          = 10
	sqsPollInterval      = 100 * time.Millisecond
)

type sqsState struct {
	mu     sync.Mutex
	queues map[string]*queue // by name
	ids    int64
}

type queue struct {
	id        int64
	name, arn string
	attrs     map[string]string // settable attributes, as set
	tags      map[string]string
	created   time.Time
	modified  time.Time
	msgs      []*message // send order
	byID      map[string]*message
	seq       int64
	notify    chan struct{} // closed and replaced when a message is added
	waiters   int           // long polls waiting
}

type message struct {
	seq          int64
	id           string
	body         string
	md5Body      string
	attrs        map[string]sqstypes.MessageAttributeValue
	traceHeader  string
	sent         time.Time
	firstReceive time.Time
	receives     int
	visibleAt    time.Time
	inFlight     bool   // received and not yet visible again
	handle       string // the latest receipt handle
	dlqSource    string // ARN of the queue it was moved from
	// history is every receive SQS counted (ReceiveHistory), with what
	// injected faults did to it: its response dropped, or a visibility
	// change of its holder refused with no later one that succeeded
	// (refusedPending until the next receive or a successful change).
	history        []ReceiveRecord
	refusedPending bool
	deadLettered   time.Time // when it was moved to a dead-letter queue
}

// ReceiveRecord is one receive of a message that SQS counted toward its
// redrive policy's maxReceiveCount.
type ReceiveRecord struct {
	At        time.Time // the simulator's clock
	UserAgent string    // the receiving HTTP client's User-Agent ("" for a Go caller)
	// Dropped: the simulator dropped the response, so the client never saw
	// the message (nor its receipt handle).
	Dropped bool
	// ExtensionRefused: the holder's visibility change was refused by an
	// injected throttle or error and none succeeded after it, so the message
	// came back while its holder meant to keep it.
	ExtensionRefused bool
}

func (s *Sim) sqs() *sqsState {
	s.sqsOnce.Do(func() { s.sq = &sqsState{queues: map[string]*queue{}} })
	return s.sq
}

// sqsErr is an SQS error: code is what clients see as the error code (the
// awsQueryCompatible code of the X-Amzn-Query-Error header, which the SDKs
// prefer), shape the model's exception shape (the __type).
func sqsErr(code, shape, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Shape: "com.amazonaws.sqs#" + shape, QueryCompatible: true}
}

func errNoQueue() *Error {
	return sqsErr("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "The specified queue does not exist.")
}

// errSQSParam is SQS's InvalidParameterValue, a common error that the model
// does not list (its text as moto sends it).
func errSQSParam(format string, args ...any) *Error {
	return sqsErr("InvalidParameterValue", "InvalidParameterValue", format, args...)
}

func errAttrValue(name string) *Error {
	return sqsErr("InvalidAttributeValue", "InvalidAttributeValue", "Invalid value for the parameter %s.", name)
}

type endpointKey struct{}

// withEndpoint tells SQS the endpoint a request came to, for the queue URLs
// it answers with.
func withEndpoint(ctx context.Context, r *http.Request) context.Context {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return context.WithValue(ctx, endpointKey{}, scheme+"://"+r.Host)
}

func (s *Sim) endpointOf(ctx context.Context) string {
	if e, ok := ctx.Value(endpointKey{}).(string); ok && e != "" {
		return e
	}
	return "https://sqs." + s.region + ".amazonaws.com"
}

// QueueURL is the URL of the queue name at endpoint (http://127.0.0.1:4566).
func (s *Sim) QueueURL(endpoint, name string) string {
	return strings.TrimSuffix(endpoint, "/") + "/" + s.account + "/" + name
}

// QueueARN is the ARN of the queue name.
func (s *Sim) QueueARN(name string) string {
	return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", s.region, s.account, name)
}

var queueNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// settable attributes and their checks; nil check: any string.
var sqsAttrChecks = map[string]func(string) bool{
	"DelaySeconds":                  intIn(0, 900),
	"MaximumMessageSize":            intIn(1024, sqsDefaultMaxSize),
	"MessageRetentionPeriod":        intIn(60, 1209600),
	"ReceiveMessageWaitTimeSeconds": intIn(0, sqsMaxWait),
	"VisibilityTimeout":             intIn(0, sqsMaxVisibility),
	"Policy":                        nil,
	"RedrivePolicy":                 nil, // checked against the queues
	"RedriveAllowPolicy":            nil,
	"KmsMasterKeyId":                nil,
	"KmsDataKeyReusePeriodSeconds":  intIn(60, 86400),
	"SqsManagedSseEnabled":          func(v string) bool { return v == "true" || v == "false" },
}

// read-only attributes GetQueueAttributes computes.
var sqsComputedAttrs = []string{
	"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible",
	"CreatedTimestamp", "LastModifiedTimestamp", "QueueArn",
}

var sqsAttrDefaults = map[string]string{
	"DelaySeconds": "0", "MaximumMessageSize": strconv.Itoa(sqsDefaultMaxSize), "MessageRetentionPeriod": strconv.Itoa(sqsDefaultRetention),
	"ReceiveMessageWaitTimeSeconds": "0", "VisibilityTimeout": strconv.Itoa(sqsDefaultVisibility), "SqsManagedSseEnabled": "true",
}

func intIn(lo, hi int) func(string) bool {
	return func(v string) bool {
		n, err := strconv.Atoi(v)
		return err == nil && n >= lo && n <= hi
	}
}

// checkAttrsLocked validates settable attributes.
func (st *sqsState) checkAttrsLocked(s *Sim, self string, attrs map[string]string) *Error {
	for k, v := range attrs {
		if k == "FifoQueue" || k == "ContentBasedDeduplication" || k == "DeduplicationScope" || k == "FifoThroughputLimit" {
			return sqsErr("AWS.SimpleQueueService.UnsupportedOperation", "UnsupportedOperation", "awssim serves standard queues only (attribute %s).", k)
		}
		check, ok := sqsAttrChecks[k]
		if !ok {
			return sqsErr("InvalidAttributeName", "InvalidAttributeName", "Unknown Attribute %s.", k)
		}
		if check != nil && !check(v) {
			return errAttrValue(k)
		}
		if k == "RedrivePolicy" && v != "" {
			if _, _, err := st.parseRedriveLocked(s, self, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseRedriveLocked reads a RedrivePolicy: its DLQ must exist.
func (st *sqsState) parseRedriveLocked(s *Sim, self, v string) (*queue, int, *Error) {
	var rp struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     any    `json:"maxReceiveCount"` // AWS accepts a number or a string
	}
	if err := json.Unmarshal([]byte(v), &rp); err != nil {
		return nil, 0, errAttrValue("RedrivePolicy")
	}
	n, err := strconv.Atoi(strings.TrimSuffix(fmt.Sprint(rp.MaxReceiveCount), ".0"))
	if err != nil || n < 1 || n > 1000 {
		return nil, 0, sqsErr("InvalidAttributeValue", "InvalidAttributeValue", "Value %s for parameter RedrivePolicy is invalid. Reason: Invalid value for maxReceiveCount: %v, valid values are from 1 to 1000 both inclusive.", v, rp.MaxReceiveCount)
	}
	name := strings.TrimPrefix(rp.DeadLetterTargetArn, fmt.Sprintf("arn:aws:sqs:%s:%s:", s.region, s.account))
	dlq := st.queues[name]
	if dlq == nil || name == rp.DeadLetterTargetArn || name == self {
		return nil, 0, sqsErr("InvalidAttributeValue", "InvalidAttributeValue", "Value %s for parameter RedrivePolicy is invalid. Reason: Dead-letter target does not exist.", v)
	}
	return dlq, n, nil
}

// lookupLocked resolves a QueueUrl by its path, /<account>/<name>.
func (st *sqsState) lookupLocked(s *Sim, queueURL *string) (*queue, *Error) {
	raw := aws.ToString(queueURL)
	if raw == "" {
		return nil, errSQSParam("Value for parameter QueueUrl is invalid. Reason: Must specify a queue URL.")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, sqsErr("InvalidAddress", "InvalidAddress", "The address %s is not valid for this endpoint.", raw)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || parts[0] != s.account {
		return nil, errNoQueue()
	}
	q := st.queues[parts[1]]
	if q == nil {
		return nil, errNoQueue()
	}
	return q, nil
}

func (q *queue) attrInt(name string) int {
	v, ok := q.attrs[name]
	if !ok {
		v = sqsAttrDefaults[name]
	}
	n, _ := strconv.Atoi(v)
	return n
}

func (q *queue) wake() {
	close(q.notify)
	q.notify = make(chan struct{})
}

func (s *Sim) sqsCreateQueue(ctx context.Context, in *sqs.CreateQueueInput) (*sqs.CreateQueueOutput, error) {
	name := aws.ToString(in.QueueName)
	if strings.HasSuffix(name, ".fifo") {
		return nil, sqsErr("AWS.SimpleQueueService.UnsupportedOperation", "UnsupportedOperation", "awssim serves standard queues only (%s).", name)
	}
	if !queueNameRE.MatchString(name) {
		return nil, errSQSParam("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.checkAttrsLocked(s, name, in.Attributes); err != nil {
		return nil, err
	}
	if q := st.queues[name]; q != nil {
		// Idempotent when the attributes asked for are the ones it has.
		for k, v := range in.Attributes {
			have, ok := q.attrs[k]
			if !ok {
				have = sqsAttrDefaults[k]
			}
			if have != v {
				return nil, sqsErr("QueueAlreadyExists", "QueueNameExists", "A queue already exists with the same name and a different value for attribute %s", k)
			}
		}
		return &sqs.CreateQueueOutput{QueueUrl: aws.String(s.QueueURL(s.endpointOf(ctx), name))}, nil
	}
	st.ids++
	now := s.clock.Now()
	q := &queue{
		id: st.ids, name: name, arn: s.QueueARN(name), attrs: map[string]string{}, tags: map[string]string{},
		created: now, modified: now, byID: map[string]*message{}, notify: make(chan struct{}),
	}
	for k, v := range in.Attributes {
		q.attrs[k] = v
	}
	for k, v := range in.Tags {
		q.tags[k] = v
	}
	st.queues[name] = q
	return &sqs.CreateQueueOutput{QueueUrl: aws.String(s.QueueURL(s.endpointOf(ctx), name))}, nil
}

func (s *Sim) sqsGetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput) (*sqs.GetQueueUrlOutput, error) {
	if owner := aws.ToString(in.QueueOwnerAWSAccountId); owner != "" && owner != s.account {
		return nil, errNoQueue()
	}
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	name := aws.ToString(in.QueueName)
	if st.queues[name] == nil {
		return nil, errNoQueue()
	}
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String(s.QueueURL(s.endpointOf(ctx), name))}, nil
}

func (s *Sim) sqsDeleteQueue(_ context.Context, in *sqs.DeleteQueueInput) (*sqs.DeleteQueueOutput, error) {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	q, err := st.lookupLocked(s, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	delete(st.queues, q.name)
	q.wake()
	return &sqs.DeleteQueueOutput{}, nil
}

func (s *Sim) sqsListQueues(ctx context.Context, in *sqs.ListQueuesInput) (*sqs.ListQueuesOutput, error) {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	out := &sqs.ListQueuesOutput{}
	for _, name := range slices.Sorted(maps.Keys(st.queues)) {
		if strings.HasPrefix(name, aws.ToString(in.QueueNamePrefix)) {
			out.QueueUrls = append(out.QueueUrls, s.QueueURL(s.endpointOf(ctx), name))
		}
	}
	return out, nil
}

func (s *Sim) sqsGetQueueAttributes(_ context.Context, in *sqs.GetQueueAttributesInput) (*sqs.GetQueueAttributesOutput, error) {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	q, err := st.lookupLocked(s, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	st.expireLocked(q, now)
	all := map[string]string{}
	for k, v := range sqsAttrDefaults {
		all[k] = v
	}
	for k, v := range q.attrs {
		all[k] = v
	}
	var visible, inFlight, delayed int
	for _, m := range q.msgs {
		switch {
		case !m.visibleAt.After(now):
			visible++
		case m.inFlight:
			inFlight++
		default:
			delayed++
		}
	}
	all["ApproximateNumberOfMessages"] = strconv.Itoa(visible)
	all["ApproximateNumberOfMessagesNotVisible"] = strconv.Itoa(inFlight)
	all["ApproximateNumberOfMessagesDelayed"] = strconv.Itoa(delayed)
	all["CreatedTimestamp"] = strconv.FormatInt(q.created.Unix(), 10)
	all["LastModifiedTimestamp"] = strconv.FormatInt(q.modified.Unix(), 10)
	all["QueueArn"] = q.arn
	out := &sqs.GetQueueAttributesOutput{Attributes: map[string]string{}}
	for _, n := range in.AttributeNames {
		name := string(n)
		if name == "All" {
			for k, v := range all {
				if v != "" {
					out.Attributes[k] = v
				}
			}
			continue
		}
		_, settable := sqsAttrChecks[name]
		if !settable && !contains(sqsComputedAttrs, name) {
			return nil, sqsErr("InvalidAttributeName", "InvalidAttributeName", "Unknown Attribute %s.", name)
		}
		if v := all[name]; v != "" {
			out.Attributes[name] = v
		}
	}
	if len(out.Attributes) == 0 {
		out.Attributes = nil
	}
	return out, nil
}

func (s *Sim) sqsSetQueueAttributes(_ context.Context, in *sqs.SetQueueAttributesInput) (*sqs.SetQueueAttributesOutput, error) {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	q, err := st.lookupLocked(s, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if err := st.checkAttrsLocked(s, q.name, in.Attributes); err != nil {
		return nil, err
	}
	for k, v := range in.Attributes {
		if v == "" && (k == "RedrivePolicy" || k == "Policy") {
			delete(q.attrs, k)
			continue
		}
		q.attrs[k] = v
	}
	q.modified = s.clock.Now()
	q.wake()
	return &sqs.SetQueueAttributesOutput{}, nil
}

// validBody reports whether body has only the characters SQS allows:
// #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
func validBody(body string) bool {
	if !utf8.ValidString(body) {
		return false
	}
	for _, r := range body {
		switch {
		case r == 0x9, r == 0xA, r == 0xD, r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

// newMessage checks one message to send and builds it.
func (st *sqsState) newMessageLocked(s *Sim, q *queue, body *string, delay int32, attrs map[string]sqstypes.MessageAttributeValue, sys map[string]sqstypes.MessageSystemAttributeValue, now time.Time) (*message, *Error) {
	if body == nil || *body == "" {
		return nil, sqsErr("MissingParameter", "MissingParameter", "The request must contain the parameter MessageBody.")
	}
	if !validBody(*body) {
		return nil, sqsErr("InvalidMessageContents", "InvalidMessageContents", "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
	}
	if len(attrs) > 10 {
		return nil, errSQSParam("Number of message attributes [%d] exceeds the allowed maximum [10].", len(attrs))
	}
	size := len(*body)
	for name, a := range attrs {
		dt := aws.ToString(a.DataType)
		base, _, _ := strings.Cut(dt, ".")
		switch base {
		case "String", "Number":
			if a.StringValue == nil {
				return nil, errSQSParam("Message (user) attribute '%s' must contain a non-empty value of type '%s'.", name, base)
			}
		case "Binary":
			if a.BinaryValue == nil {
				return nil, errSQSParam("Message (user) attribute '%s' must contain a non-empty value of type 'Binary'.", name)
			}
		default:
			return nil, errSQSParam("The type of message (user) attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", name)
		}
		size += len(name) + len(dt) + len(aws.ToString(a.StringValue)) + len(a.BinaryValue)
	}
	if maxSize := q.attrInt("MaximumMessageSize"); size > maxSize {
		return nil, errSQSParam("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", maxSize)
	}
	if delay < 0 || delay > 900 {
		return nil, errSQSParam("Value %d for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.", delay)
	}
	if delay == 0 {
		delay = int32(q.attrInt("DelaySeconds"))
	}
	q.seq++
	m := &message{
		seq:       q.seq,
		id:        fmt.Sprintf("%08x-0000-4000-8000-%012x", q.id, q.seq),
		body:      *body,
		md5Body:   md5Hex([]byte(*body)),
		attrs:     deepcopy.Of(attrs),
		sent:      now,
		visibleAt: now.Add(time.Duration(delay) * time.Second),
	}
	if th, ok := sys["AWSTraceHeader"]; ok {
		m.traceHeader = aws.ToString(th.StringValue)
	}
	return m, nil
}

func (st *sqsState) addLocked(q *queue, m *message) {
	q.msgs = append(q.msgs, m)
	q.byID[m.id] = m
	q.wake()
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// md5OfAttributes is SQS's MD5OfMessageAttributes: attributes sorted by
// name, each as length-prefixed (4 bytes, big endian) name, data type, a
// transport byte (1 String/Number, 2 Binary) and length-prefixed value.
// Empty when there are none.
func md5OfAttributes(attrs map[string]sqstypes.MessageAttributeValue) string {
	if len(attrs) == 0 {
		return ""
	}
	names := slices.Sorted(maps.Keys(attrs))
	var buf []byte
	lp := func(b []byte) {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(b)))
		buf = append(buf, b...)
	}
	for _, n := range names {
		a := attrs[n]
		lp([]byte(n))
		dt := aws.ToString(a.DataType)
		lp([]byte(dt))
		if strings.HasPrefix(dt, "Binary") {
			buf = append(buf, 2)
			lp(a.BinaryValue)
		} else {
			buf = append(buf, 1)
			lp([]byte(aws.ToString(a.StringValue)))
		}
	}
	return md5Hex(buf)
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Sim) sqsSendMessage(_ context.Context, in *sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	q, err := st.lookupLocked(s, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.MessageGroupId != nil || in.MessageDeduplicationId != nil {
		return nil, errSQSParam("The request include parameter that is not valid for this queue type")
	}
	m, err := st.newMessageLocked(s, q, in.MessageBody, in.DelaySeconds, in.MessageAttributes, in.MessageSystemAttributes, s.clock.Now())
	if err != nil {
		return nil, err
	}
	st.addLocked(q, m)
	return &sqs.SendMessageOutput{MessageId: aws.String(m.id), MD5OfMessageBody: aws.String(m.md5Body),
		MD5OfMessageAttributes: optString(md5OfAttributes(m.attrs))}, nil
}

var batchIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// checkBatchIDs applies SQS's rules on batch entry ids.
func checkBatchIDs(ids []string) *Error {
	if len(ids) == 0 {
		return sqsErr("AWS.SimpleQueueService.EmptyBatchRequest", "EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry in the request.")
	}
	if len(ids) > sqsMaxBatch {
		return sqsErr("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "TooManyEntriesInBatchRequest", "Maximum number of entries per request are %d. You have sent %d.", sqsMaxBatch, len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if !batchIDRE.MatchString(id) {
			return sqsErr("AWS.SimpleQueueService.InvalidBatchEntryId", "InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
		}
		if seen[id] {
			return sqsErr("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "BatchEntryIdsNotDistinct", "Id %s repeated.", id)
		}
		seen[id] = true
	}
	return nil
}

func batchFailure(id string, e *Error) sqstypes.BatchResultErrorEntry {
	return sqstypes.BatchResultErrorEntry{Id: aws.String(id), Code: aws.String(e.Code), Message: aws.String(e.Message), SenderFault: e.HTTPStatus() < 500}
}

func (s *Sim) sqsSendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	q, err := st.lookupLocked(s, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	total := 0
	for i, e := range in.Entries {
		ids[i] = aws.ToString(e.Id)
		total += len(aws.ToString(e.MessageBody))
	}
	if err := checkBatchIDs(ids); err != nil {
		return nil, err
	}
	if total > sqsDefaultMaxSize {
		return nil, sqsErr("AWS.SimpleQueueService.BatchRequestTooLong", "BatchRequestTooLong", "Batch requests cannot be longer than %d bytes. You have sent %d bytes.", sqsDefaultMaxSize, total)
	}
	out := &sqs.SendMessageBatchOutput{}
	now := s.clock.Now()
	for _, e := range in.Entries {
		m, err := st.newMessageLocked(s, q, e.MessageBody, e.DelaySeconds, e.MessageAttributes, e.MessageSystemAttributes, now)
		if err != nil {
			out.Failed = append(out.Failed, batchFailure(aws.ToString(e.Id), err))
			continue
		}
		st.addLocked(q, m)
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{
			Id: e.Id, MessageId: aws.String(m.id), MD5OfMessageBody: aws.String(m.md5Body), MD5OfMessageAttributes: optString(md5OfAttributes(m.attrs)),
		})
	}
	return out, nil
}

// expireLocked drops messages past the queue's retention period.
func (st *sqsState) expireLocked(q *queue, now time.Time) {
	keep := time.Duration(q.attrInt("MessageRetentionPeriod")) * time.Second
	kept := q.msgs[:0]
	for _, m := range q.msgs {
		if now.Sub(m.sent) >= keep {
			delete(q.byID, m.id)
			continue
		}
		kept = append(kept, m)
	}
	clear(q.msgs[len(kept):])
	q.msgs = kept
}

func (st *sqsState) removeLocked(q *queue, m *message) {
	delete(q.byID, m.id)
	for i, x := range q.msgs {
		if x == m {
			q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
			return
		}
	}
}

// receiptHandle encodes the queue, the message and the receive number:
// handles of the same message differ at each receive, as SQS's do.
func receiptHandle(q *queue, m *message) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "awssim:%d:%s:%d", q.id, m.id, m.receives))
}

// parseHandle returns the message id of a receipt handle of q; ok is false
// for a string that is not a receipt handle at all.
func parseHandle(q *queue, h string) (msgID string, receive int, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return "", 0, false
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 4 || parts[0] != "awssim" || parts[1] != strconv.FormatInt(q.id, 10) {
		return "", 0, false
	}
	n, err := strconv.Atoi(parts[3])
	if err != nil {
		return "", 0, false
	}
	return parts[2], n, true
}

func errBadHandle(h string) *Error {
	return sqsErr("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", "The input receipt handle \"%s\" is not a valid receipt handle.", h)
}

// receiveLocked takes up to n visible messages, moving those past the
// redrive policy's maxReceiveCount to the dead-letter queue on the way (as
// SQS does: on the receive that would exceed it).
func (st *sqsState) receiveLocked(s *Sim, q *queue, n int, visibility time.Duration, now time.Time, userAgent string) []*message {
	st.expireLocked(q, now)
	var dlq *queue
	maxReceives := 0
	if rp := q.attrs["RedrivePolicy"]; rp != "" {
		if d, mr, err := st.parseRedriveLocked(s, q.name, rp); err == nil {
			dlq, maxReceives = d, mr
		}
	}
	var got, moved []*message
	for _, m := range q.msgs {
		if len(got) == n {
			break
		}
		if m.visibleAt.After(now) {
			continue
		}
		if dlq != nil && m.receives >= maxReceives {
			moved = append(moved, m)
			continue
		}
		m.receives++
		if m.refusedPending && len(m.history) > 0 {
			m.history[len(m.history)-1].ExtensionRefused = true
		}
		m.refusedPending = false
		m.history = append(m.history, ReceiveRecord{At: now, UserAgent: userAgent})
		if m.firstReceive.IsZero() {
			m.firstReceive = now
		}
		m.visibleAt = now.Add(visibility)
		m.inFlight = true
		m.handle = receiptHandle(q, m)
		got = append(got, m)
	}
	for _, m := range moved {
		st.removeLocked(q, m)
		// The message keeps its id, body, attributes, sent time and receive
		// count (as moto keeps them), and says where it came from.
		m.dlqSource = q.arn
		m.inFlight, m.visibleAt, m.deadLettered = false, now, now
		dlq.msgs = append(dlq.msgs, m)
		dlq.byID[m.id] = m
		dlq.wake()
	}
	return got
}

func (s *Sim) sqsReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
	n := int(in.MaxNumberOfMessages)
	if n == 0 {
		n = 1
	}
	if n < 1 || n > sqsMaxBatch {
		return nil, errSQSParam("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", n)
	}
	if in.WaitTimeSeconds < 0 || in.WaitTimeSeconds > sqsMaxWait {
		return nil, errSQSParam("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", in.WaitTimeSeconds)
	}
	if in.VisibilityTimeout < 0 || in.VisibilityTimeout > sqsMaxVisibility {
		return nil, errSQSParam("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.", in.VisibilityTimeout)
	}
	st := s.sqs()
	var deadline time.Time // wall clock
	for first := true; ; first = false {
		st.mu.Lock()
		q, err := st.lookupLocked(s, in.QueueUrl)
		if err != nil {
			st.mu.Unlock()
			return nil, err
		}
		if first {
			wait := int(in.WaitTimeSeconds)
			if wait == 0 {
				wait = q.attrInt("ReceiveMessageWaitTimeSeconds")
			}
			deadline = time.Now().Add(time.Duration(wait) * time.Second)
		}
		vis := int(in.VisibilityTimeout)
		if vis == 0 {
			vis = q.attrInt("VisibilityTimeout")
		}
		now := s.clock.Now()
		got := st.receiveLocked(s, q, n, time.Duration(vis)*time.Second, now, userAgentOf(ctx))
		if len(got) > 0 {
			out := &sqs.ReceiveMessageOutput{}
			for _, m := range got {
				out.Messages = append(out.Messages, m.toSDK(in))
			}
			st.mu.Unlock()
			return out, nil
		}
		notify := q.notify
		left := time.Until(deadline)
		if left <= 0 {
			st.mu.Unlock()
			return &sqs.ReceiveMessageOutput{}, nil
		}
		q.waiters++
		st.mu.Unlock()
		t := time.NewTimer(min(left, sqsPollInterval))
		done := false
		select {
		case <-notify:
		case <-t.C:
		case <-ctx.Done():
			done = true
		}
		t.Stop()
		st.mu.Lock()
		q.waiters--
		st.mu.Unlock()
		if done {
			return &sqs.ReceiveMessageOutput{}, nil
		}
	}
}

// toSDK renders a received message with the attributes asked for.
func (m *message) toSDK(in *sqs.ReceiveMessageInput) sqstypes.Message {
	out := sqstypes.Message{
		MessageId: aws.String(m.id), ReceiptHandle: aws.String(m.handle),
		Body: aws.String(m.body), MD5OfBody: aws.String(m.md5Body),
	}
	want := map[string]bool{}
	// AttributeNames is the request member that MessageSystemAttributeNames
	// replaced. This is the server side: SQS still honours it, and older
	// clients (boto3, the aws CLI's --attribute-names) still send it, so the
	// simulator reads both. TestReceiveMessageLegacyAttributeNames covers it.
	//lint:ignore SA1019 a server must honour the deprecated member that clients still send
	for _, a := range in.AttributeNames {
		want[string(a)] = true
	}
	for _, a := range in.MessageSystemAttributeNames {
		want[string(a)] = true
	}
	all := want["All"]
	sys := map[string]string{}
	add := func(name, v string) {
		if (all || want[name]) && v != "" {
			sys[name] = v
		}
	}
	add("SenderId", "AIDAAWSSIMEXAMPLE")
	add("SentTimestamp", strconv.FormatInt(m.sent.UnixMilli(), 10))
	add("ApproximateReceiveCount", strconv.Itoa(m.receives))
	add("ApproximateFirstReceiveTimestamp", strconv.FormatInt(m.firstReceive.UnixMilli(), 10))
	add("AWSTraceHeader", m.traceHeader)
	add("DeadLetterQueueSourceArn", m.dlqSource)
	if len(sys) > 0 {
		out.Attributes = sys
	}
	// "All", ".*", a name, or "<prefix>.*": names starting with <prefix>
	// (the dot is not part of the prefix, as moto reads the documentation).
	attrs := map[string]sqstypes.MessageAttributeValue{}
	for name, a := range m.attrs {
		for _, pat := range in.MessageAttributeNames {
			prefix, isPrefix := strings.CutSuffix(pat, ".*")
			if pat == "All" || pat == name || (isPrefix && strings.HasPrefix(name, prefix)) {
				attrs[name] = deepcopy.Of(a)
				break
			}
		}
	}
	if len(attrs) > 0 {
		out.MessageAttributes = attrs
		out.MD5OfMessageAttributes = aws.String(md5OfAttributes(attrs))
	}
	return out
}

// deleteLocked deletes the message of handle h. A handle of a message that
// is gone (deleted, expired, moved to a DLQ) succeeds, as SQS's do; so does
// an older handle of a message received again (moto deletes then; SQS
// documents the request succeeds but may not delete: awssim deletes).
func (st *sqsState) deleteLocked(q *queue, h string) *Error {
	id, _, ok := parseHandle(q, h)
	if !ok {
		return errBadHandle(h)
	}
	if m := q.byID[id]; m != nil {
		st.removeLocked(q, m)
	}
	return nil
}

func (s *Sim) sqsDeleteMessage(_ context.Context, in *sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error) {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	q, err := st.lookupLocked(s, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if err := st.deleteLocked(q, aws.ToString(in.ReceiptHandle)); err != nil {
		return nil, err
	}
	return &sqs.DeleteMessageOutput{}, nil
}

func (s *Sim) sqsDeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput) (*sqs.DeleteMessageBatchOutput, error) {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	q, err := st.lookupLocked(s, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		ids[i] = aws.ToString(e.Id)
	}
	if err := checkBatchIDs(ids); err != nil {
		return nil, err
	}
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		if err := st.deleteLocked(q, aws.ToString(e.ReceiptHandle)); err != nil {
			out.Failed = append(out.Failed, batchFailure(aws.ToString(e.Id), err))
			continue
		}
		out.Successful = append(out.Successful, sqstypes.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// changeVisibilityLocked sets the visibility of the in-flight message of
// handle h to now+timeout. A message not in flight (visible again, or gone)
// is MessageNotInflight.
func (st *sqsState) changeVisibilityLocked(q *queue, h string, timeout int32, now time.Time) *Error {
	if timeout < 0 || timeout > sqsMaxVisibility {
		return errSQSParam("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200, if provided.", timeout)
	}
	id, _, ok := parseHandle(q, h)
	if !ok {
		return errBadHandle(h)
	}
	m := q.byID[id]
	if m == nil || !m.inFlight || !m.visibleAt.After(now) {
		return sqsErr("AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight", "The message referred to isn't in flight.")
	}
	m.visibleAt = now.Add(time.Duration(timeout) * time.Second)
	m.refusedPending = false // whatever was refused before, this change holds
	if timeout == 0 {
		m.inFlight = false
		q.wake()
	}
	return nil
}

func (s *Sim) sqsChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput) (*sqs.ChangeMessageVisibilityOutput, error) {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	q, err := st.lookupLocked(s, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if err := st.changeVisibilityLocked(q, aws.ToString(in.ReceiptHandle), in.VisibilityTimeout, s.clock.Now()); err != nil {
		return nil, err
	}
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (s *Sim) sqsChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	q, err := st.lookupLocked(s, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		ids[i] = aws.ToString(e.Id)
	}
	if err := checkBatchIDs(ids); err != nil {
		return nil, err
	}
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	now := s.clock.Now()
	for _, e := range in.Entries {
		if err := st.changeVisibilityLocked(q, aws.ToString(e.ReceiptHandle), e.VisibilityTimeout, now); err != nil {
			out.Failed = append(out.Failed, batchFailure(aws.ToString(e.Id), err))
			continue
		}
		out.Successful = append(out.Successful, sqstypes.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (s *Sim) sqsPurgeQueue(_ context.Context, in *sqs.PurgeQueueInput) (*sqs.PurgeQueueOutput, error) {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	q, err := st.lookupLocked(s, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	q.msgs, q.byID = nil, map[string]*message{}
	return &sqs.PurgeQueueOutput{}, nil
}

// sendToQueueLocked is EventBridge's delivery to an SQS target: body, with
// attributes, to the queue of arn. Called with evMu held; takes sqsMu.
func (s *Sim) sendToQueue(arn, body string, attrs map[string]sqstypes.MessageAttributeValue) *Error {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	prefix := fmt.Sprintf("arn:aws:sqs:%s:%s:", s.region, s.account)
	name, ok := strings.CutPrefix(arn, prefix)
	q := st.queues[name]
	if !ok || q == nil {
		return &Error{Code: "ResourceNotFoundException", Message: "Queue does not exist."} // UNVERIFIED text
	}
	m, err := st.newMessageLocked(s, q, &body, 0, attrs, nil, s.clock.Now())
	if err != nil {
		return err
	}
	st.addLocked(q, m)
	return nil
}

// QueueState is a queue in State.
type QueueState struct {
	URL      string `json:"url"` // path only: /<account>/<name>
	Arn      string `json:"arn"`
	Messages int    `json:"messages"` // all, visible or not
}

func (s *Sim) queueStates() []QueueState {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	out := []QueueState{}
	for _, name := range slices.Sorted(maps.Keys(st.queues)) {
		q := st.queues[name]
		out = append(out, QueueState{URL: "/" + s.account + "/" + name, Arn: q.arn, Messages: len(q.msgs)})
	}
	return out
}

func contains(xs []string, v string) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

// ReceiveAccounting is what injected faults did to a message's receives:
// the receives whose response the simulator dropped (SQS counted them, the
// message was never seen by the client), and receives that followed a
// ChangeMessageVisibility an injected throttle or error refused, with no
// successful change between (the message came back when its holder meant
// to keep it). ok is false for an unknown message id.
func (s *Sim) ReceiveAccounting(messageID string) (droppedReceives, refusedVisibility int, ok bool) {
	history, _, ok := s.ReceiveHistory(messageID)
	for _, r := range history {
		if r.Dropped {
			droppedReceives++
		}
		if r.ExtensionRefused {
			refusedVisibility++
		}
	}
	return droppedReceives, refusedVisibility, ok
}

// ReceiveHistory is every receive of a message that SQS counted, oldest
// first, and when it was moved to a dead-letter queue (zero if it was
// not). ok is false for an unknown message id. A chaos test needs it to
// account for a valid message in a dead-letter queue: each receive must
// have a reason for the message to have come back.
func (s *Sim) ReceiveHistory(messageID string) (history []ReceiveRecord, deadLettered time.Time, ok bool) {
	st := s.sqs()
	st.mu.Lock()
	defer st.mu.Unlock()
	if m := st.messageLocked(messageID); m != nil {
		return slices.Clone(m.history), m.deadLettered, true
	}
	return nil, time.Time{}, false
}

// messageLocked finds a message by id in any queue (a message moved to a
// dead-letter queue keeps its id).
func (st *sqsState) messageLocked(id string) *message {
	for _, q := range st.queues {
		if m := q.byID[id]; m != nil {
			return m
		}
	}
	return nil
}

// noteFault records what an injected fault did to the messages of one
// SQS call: a dropped ReceiveMessage response, a refused visibility change.
func (st *sqsState) noteFault(op string, in, out any, dropped, refused bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	byHandle := func(h string) *message {
		for _, q := range st.queues {
			if id, _, ok := parseHandle(q, h); ok {
				if m := q.byID[id]; m != nil {
					return m
				}
			}
		}
		return nil
	}
	switch op {
	case "ReceiveMessage":
		if o, ok := out.(*sqs.ReceiveMessageOutput); ok && o != nil && dropped {
			for _, msg := range o.Messages {
				if m := st.messageLocked(aws.ToString(msg.MessageId)); m != nil && len(m.history) > 0 {
					m.history[len(m.history)-1].Dropped = true
				}
			}
		}
	case "ChangeMessageVisibility":
		if i, ok := in.(*sqs.ChangeMessageVisibilityInput); ok && refused {
			if m := byHandle(aws.ToString(i.ReceiptHandle)); m != nil {
				m.refusedPending = true
			}
		}
	case "ChangeMessageVisibilityBatch":
		if i, ok := in.(*sqs.ChangeMessageVisibilityBatchInput); ok && refused {
			for _, e := range i.Entries {
				if m := byHandle(aws.ToString(e.ReceiptHandle)); m != nil {
					m.refusedPending = true
				}
			}
		}
	}
}
