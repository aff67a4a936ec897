package awssim

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ecs-sidecar/reconciler/internal/deepcopy"
)

// EventBridge: buses, rules with event patterns (pattern.go), and delivery
// to SQS targets, with a target's dead-letter queue for deliveries that
// fail. ECS's own events (events_ecs.go) and PutEvents' go through the same
// path. Delivery is synchronous: when the call that caused an event returns,
// its messages are in their queues. Targets that are not SQS queues are
// accepted and counted, not delivered.

const defaultBus = "default"

type eventsState struct {
	mu    sync.Mutex
	buses map[string]*bus
	ids   int64
	stats EventStats
}

type bus struct {
	name, arn string
	rules     map[string]*rule
}

type rule struct {
	name, arn   string
	bus         *bus
	description string
	patternSrc  string
	pattern     *pattern
	schedule    string
	state       ebtypes.RuleState
	roleArn     string
	targets     []ebtypes.Target // sorted by Id
}

func (s *Sim) events() *eventsState {
	s.evOnce.Do(func() {
		ev := &eventsState{buses: map[string]*bus{}}
		ev.buses[defaultBus] = &bus{name: defaultBus, arn: s.busARN(defaultBus), rules: map[string]*rule{}}
		s.ev = ev
	})
	return s.ev
}

func (s *Sim) busARN(name string) string {
	return fmt.Sprintf("arn:aws:events:%s:%s:event-bus/%s", s.region, s.account, name)
}

func (s *Sim) ruleARN(busName, name string) string {
	if busName == defaultBus {
		return fmt.Sprintf("arn:aws:events:%s:%s:rule/%s", s.region, s.account, name)
	}
	return fmt.Sprintf("arn:aws:events:%s:%s:rule/%s/%s", s.region, s.account, busName, name)
}

func (ev *eventsState) statsSnapshot() EventStats {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.stats
}

func errEvResourceNotFound(format string, args ...any) *Error {
	return errf("ResourceNotFoundException", format, args...)
}

func errEvValidation(format string, args ...any) *Error {
	return errf("ValidationException", format, args...)
}

// busLocked resolves an EventBusName (a name or an ARN; empty: default).
func (s *Sim) busLocked(ev *eventsState, ref *string) (*bus, *Error) {
	name := aws.ToString(ref)
	if name == "" {
		name = defaultBus
	}
	if strings.HasPrefix(name, "arn:") {
		i := strings.Index(name, ":event-bus/")
		if i < 0 {
			return nil, errEvValidation("Parameter EventBusName is not valid.")
		}
		name = name[i+len(":event-bus/"):]
	}
	b := ev.buses[name]
	if b == nil {
		return nil, errEvResourceNotFound("Event bus %s does not exist.", name)
	}
	return b, nil
}

func (s *Sim) ruleLocked(ev *eventsState, busRef, name *string) (*rule, *Error) {
	b, err := s.busLocked(ev, busRef)
	if err != nil {
		return nil, err
	}
	r := b.rules[aws.ToString(name)]
	if r == nil {
		return nil, errEvResourceNotFound("Rule %s does not exist on EventBus %s.", aws.ToString(name), b.name)
	}
	return r, nil
}

var (
	ruleNameRE = regexp.MustCompile(`^[.\-_A-Za-z0-9]{1,64}$`)
	busNameRE  = regexp.MustCompile(`^[/\.\-_A-Za-z0-9]{1,256}$`)
	targetIDRE = regexp.MustCompile(`^[\.\-_A-Za-z0-9]{1,64}$`)
)

func (s *Sim) evCreateEventBus(_ context.Context, in *eventbridge.CreateEventBusInput) (*eventbridge.CreateEventBusOutput, error) {
	name := aws.ToString(in.Name)
	if !busNameRE.MatchString(name) || strings.HasPrefix(name, "aws.") && in.EventSourceName == nil {
		return nil, errEvValidation("Event bus name %q is not valid.", name)
	}
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.buses[name] != nil {
		return nil, errf("ResourceAlreadyExistsException", "Event bus %s already exists.", name)
	}
	b := &bus{name: name, arn: s.busARN(name), rules: map[string]*rule{}}
	ev.buses[name] = b
	return &eventbridge.CreateEventBusOutput{EventBusArn: aws.String(b.arn), Description: in.Description}, nil
}

func (s *Sim) evPutRule(_ context.Context, in *eventbridge.PutRuleInput) (*eventbridge.PutRuleOutput, error) {
	name := aws.ToString(in.Name)
	if !ruleNameRE.MatchString(name) {
		return nil, errEvValidation("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+", name)
	}
	src, sched := aws.ToString(in.EventPattern), aws.ToString(in.ScheduleExpression)
	if src == "" && sched == "" {
		return nil, errEvValidation("Parameter(s) EventPattern or ScheduleExpression must be specified.")
	}
	var p *pattern
	if src != "" {
		var err *Error
		if p, err = compilePattern(src); err != nil {
			return nil, err
		}
	}
	switch in.State {
	case "", ebtypes.RuleStateEnabled, ebtypes.RuleStateDisabled, ebtypes.RuleStateEnabledWithAllCloudtrailManagementEvents:
	default:
		return nil, errEvValidation("1 validation error detected: Value '%s' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]", in.State)
	}
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	b, err := s.busLocked(ev, in.EventBusName)
	if err != nil {
		return nil, err
	}
	if sched != "" && b.name != defaultBus {
		return nil, errEvValidation("ScheduleExpression is supported only on the default event bus.")
	}
	r := b.rules[name]
	if r == nil {
		r = &rule{name: name, arn: s.ruleARN(b.name, name), bus: b}
		b.rules[name] = r
	}
	r.description, r.patternSrc, r.pattern, r.schedule, r.roleArn = aws.ToString(in.Description), src, p, sched, aws.ToString(in.RoleArn)
	r.state = in.State
	if r.state == "" {
		r.state = ebtypes.RuleStateEnabled
	}
	return &eventbridge.PutRuleOutput{RuleArn: aws.String(r.arn)}, nil
}

func (s *Sim) evDescribeRule(_ context.Context, in *eventbridge.DescribeRuleInput) (*eventbridge.DescribeRuleOutput, error) {
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	r, err := s.ruleLocked(ev, in.EventBusName, in.Name)
	if err != nil {
		return nil, err
	}
	w := r.wire()
	return &eventbridge.DescribeRuleOutput{Arn: w.Arn, Name: w.Name, EventBusName: w.EventBusName, Description: w.Description,
		EventPattern: w.EventPattern, ScheduleExpression: w.ScheduleExpression, State: w.State, RoleArn: w.RoleArn,
		CreatedBy: aws.String(s.account)}, nil
}

func (r *rule) wire() ebtypes.Rule {
	return ebtypes.Rule{Arn: aws.String(r.arn), Name: aws.String(r.name), EventBusName: aws.String(r.bus.name),
		Description: optString(r.description), EventPattern: optString(r.patternSrc), ScheduleExpression: optString(r.schedule),
		State: r.state, RoleArn: optString(r.roleArn)}
}

// page cuts a sorted list by an opaque NextToken (an offset) and a limit
// (1-100, default 100).
func page[T any](xs []T, token *string, limit *int32) ([]T, *string, *Error) {
	start := 0
	if t := aws.ToString(token); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || n > len(xs) {
			return nil, nil, errEvValidation("The NextToken provided is invalid.")
		}
		start = n
	}
	size := 100
	if limit != nil {
		if *limit < 1 || *limit > 100 {
			return nil, nil, errEvValidation("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 100", *limit)
		}
		size = int(*limit)
	}
	end := min(start+size, len(xs))
	var next *string
	if end < len(xs) {
		next = aws.String(strconv.Itoa(end))
	}
	return xs[start:end], next, nil
}

func (s *Sim) evListRules(_ context.Context, in *eventbridge.ListRulesInput) (*eventbridge.ListRulesOutput, error) {
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	b, err := s.busLocked(ev, in.EventBusName)
	if err != nil {
		return nil, err
	}
	var all []ebtypes.Rule
	for _, name := range slices.Sorted(maps.Keys(b.rules)) {
		if strings.HasPrefix(name, aws.ToString(in.NamePrefix)) {
			all = append(all, b.rules[name].wire())
		}
	}
	rules, next, err := page(all, in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	return &eventbridge.ListRulesOutput{Rules: rules, NextToken: next}, nil
}

func (s *Sim) evListRuleNamesByTarget(_ context.Context, in *eventbridge.ListRuleNamesByTargetInput) (*eventbridge.ListRuleNamesByTargetOutput, error) {
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	b, err := s.busLocked(ev, in.EventBusName)
	if err != nil {
		return nil, err
	}
	target := aws.ToString(in.TargetArn)
	if target == "" {
		return nil, errEvValidation("Parameter TargetArn is not valid.")
	}
	var all []string
	for _, name := range slices.Sorted(maps.Keys(b.rules)) {
		for _, t := range b.rules[name].targets {
			if aws.ToString(t.Arn) == target {
				all = append(all, name)
				break
			}
		}
	}
	names, next, err := page(all, in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	return &eventbridge.ListRuleNamesByTargetOutput{RuleNames: names, NextToken: next}, nil
}

func (s *Sim) evListTargetsByRule(_ context.Context, in *eventbridge.ListTargetsByRuleInput) (*eventbridge.ListTargetsByRuleOutput, error) {
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	r, err := s.ruleLocked(ev, in.EventBusName, in.Rule)
	if err != nil {
		return nil, err
	}
	targets, next, err := page(r.targets, in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	return &eventbridge.ListTargetsByRuleOutput{Targets: deepcopy.Of(targets), NextToken: next}, nil
}

func (s *Sim) evPutTargets(_ context.Context, in *eventbridge.PutTargetsInput) (*eventbridge.PutTargetsOutput, error) {
	if len(in.Targets) == 0 || len(in.Targets) > 10 {
		return nil, errEvValidation("1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length between 1 and 10")
	}
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	r, err := s.ruleLocked(ev, in.EventBusName, in.Rule)
	if err != nil {
		return nil, err
	}
	out := &eventbridge.PutTargetsOutput{}
	fail := func(t ebtypes.Target, code, msg string) {
		out.FailedEntries = append(out.FailedEntries, ebtypes.PutTargetsResultEntry{TargetId: t.Id, ErrorCode: aws.String(code), ErrorMessage: aws.String(msg)})
	}
	for _, t := range in.Targets {
		id, arn := aws.ToString(t.Id), aws.ToString(t.Arn)
		switch {
		case !targetIDRE.MatchString(id):
			return nil, errEvValidation("1 validation error detected: Value '%s' at 'targets.1.member.id' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+", id)
		case !strings.HasPrefix(arn, "arn:"):
			return nil, errEvValidation("Parameter %s is not valid.", arn)
		case t.InputTransformer != nil:
			// Not simulated: say so rather than deliver the wrong body.
			fail(t, "ValidationException", "awssim does not serve InputTransformer.")
			continue
		case t.Input != nil && t.InputPath != nil:
			return nil, errEvValidation("Only one of Input, InputPath, or InputTransformer can be provided.")
		}
		if t.DeadLetterConfig != nil && !strings.HasPrefix(aws.ToString(t.DeadLetterConfig.Arn), "arn:aws:sqs:") {
			return nil, errEvValidation("Parameter(s) DeadLetterConfig(Arn) is not valid.")
		}
		t = deepcopy.Of(t)
		i := sort.Search(len(r.targets), func(i int) bool { return aws.ToString(r.targets[i].Id) >= id })
		if i < len(r.targets) && aws.ToString(r.targets[i].Id) == id {
			r.targets[i] = t
			continue
		}
		if len(r.targets) >= 5 {
			fail(t, "LimitExceededException", "The requested resource exceeds the maximum number allowed.") // 5 targets per rule
			continue
		}
		r.targets = append(r.targets, ebtypes.Target{})
		copy(r.targets[i+1:], r.targets[i:])
		r.targets[i] = t
	}
	out.FailedEntryCount = int32(len(out.FailedEntries))
	return out, nil
}

func (s *Sim) evRemoveTargets(_ context.Context, in *eventbridge.RemoveTargetsInput) (*eventbridge.RemoveTargetsOutput, error) {
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	r, err := s.ruleLocked(ev, in.EventBusName, in.Rule)
	if err != nil {
		return nil, err
	}
	if len(in.Ids) == 0 {
		return nil, errEvValidation("1 validation error detected: Value at 'ids' failed to satisfy constraint: Member must have length between 1 and 100")
	}
	remove := map[string]bool{}
	for _, id := range in.Ids {
		remove[id] = true
	}
	kept := r.targets[:0]
	for _, t := range r.targets {
		if !remove[aws.ToString(t.Id)] {
			kept = append(kept, t)
		}
	}
	r.targets = kept
	// Ids that name no target are not failures (EventBridge, moto).
	return &eventbridge.RemoveTargetsOutput{}, nil
}

func (s *Sim) evDeleteRule(_ context.Context, in *eventbridge.DeleteRuleInput) (*eventbridge.DeleteRuleOutput, error) {
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	b, err := s.busLocked(ev, in.EventBusName)
	if err != nil {
		return nil, err
	}
	r := b.rules[aws.ToString(in.Name)]
	if r == nil {
		return &eventbridge.DeleteRuleOutput{}, nil // deleting a missing rule succeeds (EventBridge, moto)
	}
	if len(r.targets) > 0 {
		return nil, errEvValidation("Rule can't be deleted since it has targets.")
	}
	delete(b.rules, r.name)
	return &eventbridge.DeleteRuleOutput{}, nil
}

// Event is an EventBridge event as rules see it and SQS targets receive it.
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

func (ev *eventsState) nextIDLocked() string {
	ev.ids++
	return uuidFrom(ev.ids, 0xe)
}

// uuidFrom makes a version-4-shaped UUID from a counter, deterministic.
func uuidFrom(n int64, tag int) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", n, tag, 0, 0, n)
}

func (s *Sim) evPutEvents(_ context.Context, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
	if len(in.Entries) == 0 || len(in.Entries) > 10 {
		return nil, errEvValidation("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10")
	}
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	out := &eventbridge.PutEventsOutput{}
	now := s.clock.Now()
	for _, e := range in.Entries {
		res := ebtypes.PutEventsResultEntry{}
		fail := func(code, msg string) {
			res.ErrorCode, res.ErrorMessage = aws.String(code), aws.String(msg)
			out.FailedEntryCount++
		}
		src, dt, detail := aws.ToString(e.Source), aws.ToString(e.DetailType), aws.ToString(e.Detail)
		var obj map[string]any
		switch {
		case src == "":
			fail("InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument.")
		case dt == "":
			fail("InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is a required argument.")
		case detail == "":
			fail("InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument.")
		case json.Unmarshal([]byte(detail), &obj) != nil || obj == nil:
			fail("MalformedDetail", "Detail is malformed.")
		case strings.HasPrefix(src, "aws."):
			// AWS services' sources are reserved (EventBridge; moto accepts them).
			fail("NotAuthorizedForSourceException", "Not authorized for the source.")
		}
		if res.ErrorCode != nil {
			out.Entries = append(out.Entries, res)
			continue
		}
		b, err := s.busLocked(ev, e.EventBusName)
		if err != nil {
			fail("ResourceNotFoundException", err.Message)
			out.Entries = append(out.Entries, res)
			continue
		}
		t := now
		if e.Time != nil {
			t = *e.Time
		}
		resources := e.Resources
		if resources == nil {
			resources = []string{}
		}
		event := Event{Version: "0", ID: ev.nextIDLocked(), DetailType: dt, Source: src, Account: s.account,
			Time: t.UTC().Format(time.RFC3339), Region: s.region, Resources: resources, Detail: json.RawMessage(detail)}
		s.publishLocked(ev, b, event)
		res.EventId = aws.String(event.ID)
		out.Entries = append(out.Entries, res)
	}
	return out, nil
}

// publishLocked matches an event against the bus's rules and delivers it to
// their targets. Called with ev.mu held.
func (s *Sim) publishLocked(ev *eventsState, b *bus, event Event) {
	body, err := json.Marshal(event)
	if err != nil {
		s.log.Error("awssim: encoding an event", "err", err)
		return
	}
	ev.stats.Published++
	decoded, err := decodeEvent(body)
	if err != nil {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(b.rules)) {
		r := b.rules[name]
		if r.state == ebtypes.RuleStateDisabled || r.pattern == nil || !r.pattern.match(decoded) {
			continue
		}
		ev.stats.Matched++
		for _, t := range r.targets {
			s.deliverLocked(ev, r, t, body, decoded)
		}
	}
}

// deliverLocked sends one matched event to one target. A failed delivery
// to an SQS target goes to the target's DLQ, with EventBridge's message
// attributes saying why; without a DLQ it is dropped (and counted). Errors
// that no retry can fix (a missing queue, a message too large) are not
// retried, as EventBridge does not retry them.
func (s *Sim) deliverLocked(ev *eventsState, r *rule, t ebtypes.Target, body []byte, decoded map[string]any) {
	arn := aws.ToString(t.Arn)
	if !strings.HasPrefix(arn, "arn:aws:sqs:") {
		ev.stats.Unsupported++
		return
	}
	msg := string(body)
	switch {
	case t.Input != nil:
		msg = *t.Input
	case t.InputPath != nil:
		v, ok := jsonPath(decoded, *t.InputPath)
		if !ok {
			msg = ""
		} else if sv, isStr := v.(string); isStr {
			msg = sv
		} else {
			b, _ := json.Marshal(v)
			msg = string(b)
		}
	}
	err := s.sendToQueue(arn, msg, nil)
	if err == nil {
		ev.stats.Delivered++
		return
	}
	ev.stats.Failed++
	if t.DeadLetterConfig == nil || t.DeadLetterConfig.Arn == nil {
		return
	}
	str := func(v string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	// The attributes EventBridge documents for messages in a target's DLQ.
	attrs := map[string]sqstypes.MessageAttributeValue{
		"ERROR_CODE":                str(err.Code),
		"ERROR_MESSAGE":             str(err.Message),
		"EXHAUSTED_RETRY_CONDITION": str("MaximumRetryAttempts"),
		"RETRY_ATTEMPTS":            {DataType: aws.String("Number"), StringValue: aws.String("0")},
		"RULE_ARN":                  str(r.arn),
		"TARGET_ARN":                str(arn),
	}
	if s.sendToQueue(*t.DeadLetterConfig.Arn, string(body), attrs) == nil {
		ev.stats.DeadLettered++
	}
}

// jsonPath reads a simple JSONPath ($, $.a.b) from an event.
func jsonPath(v map[string]any, p string) (any, bool) {
	if p == "$" {
		return v, true
	}
	rest, ok := strings.CutPrefix(p, "$.")
	if !ok {
		return nil, false
	}
	var cur any = v
	for _, k := range strings.Split(rest, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// PublishEvent puts an event on a bus (empty: default) as an AWS service
// would, bypassing PutEvents' rule that aws.* sources are reserved: for
// tests that need an event ECS would send. ID, Version, Account, Region and
// Time are filled when empty.
func (s *Sim) PublishEvent(busName string, e Event) error {
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	b, err := s.busLocked(ev, &busName)
	if err != nil {
		return err
	}
	s.fillEventLocked(ev, &e, s.clock.Now())
	s.publishLocked(ev, b, e)
	return nil
}

func (s *Sim) fillEventLocked(ev *eventsState, e *Event, t time.Time) {
	if e.ID == "" {
		e.ID = ev.nextIDLocked()
	}
	if e.Version == "" {
		e.Version = "0"
	}
	if e.Account == "" {
		e.Account = s.account
	}
	if e.Region == "" {
		e.Region = s.region
	}
	if e.Time == "" {
		e.Time = t.UTC().Format(time.RFC3339)
	}
	if e.Resources == nil {
		e.Resources = []string{}
	}
	if e.Detail == nil {
		e.Detail = json.RawMessage("{}")
	}
}

// hasRulesLocked reports whether the default bus has an enabled rule (ECS's
// events are only built when someone listens).
func (ev *eventsState) hasRulesLocked() bool {
	for _, r := range ev.buses[defaultBus].rules {
		if r.state != ebtypes.RuleStateDisabled && len(r.targets) > 0 {
			return true
		}
	}
	return false
}

// RuleState is a rule in State.
type RuleState struct {
	Arn     string   `json:"arn"`
	State   string   `json:"state"`
	Targets []string `json:"targets"`
}

func (s *Sim) ruleStates() []RuleState {
	ev := s.events()
	ev.mu.Lock()
	defer ev.mu.Unlock()
	out := []RuleState{}
	for _, bn := range slices.Sorted(maps.Keys(ev.buses)) {
		b := ev.buses[bn]
		for _, rn := range slices.Sorted(maps.Keys(b.rules)) {
			r := b.rules[rn]
			rs := RuleState{Arn: r.arn, State: string(r.state), Targets: []string{}}
			for _, t := range r.targets {
				rs.Targets = append(rs.Targets, aws.ToString(t.Arn))
			}
			out = append(out, rs)
		}
	}
	return out
}
