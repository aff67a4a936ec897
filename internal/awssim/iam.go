package awssim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"weak"
)

// IAM, the small part `reconciler check` needs: SimulatePrincipalPolicy over
// a simple policy model. A principal (role or user ARN) has a list of
// statements, put with PutPrincipalPolicy (Go API only); the simulation
// evaluates them as IAM does for identity policies: an explicit Deny wins,
// then any Allow, else an implicit deny. Actions and resources match with
// IAM's wildcards (* and ?), actions case-insensitively; conditions support
// the operators the reconciler's template uses (ParsePolicy lists them) and
// refuse the others. Not modelled: resource policies, permission boundaries,
// SCPs, policy variables, NotAction/NotResource.

// Statement is one statement of an identity policy.
type Statement struct {
	Sid        string
	Effect     string // "Allow" or "Deny"
	Actions    []string
	Resources  []string
	Conditions []Condition
}

// Condition is one test of a statement's Condition block: Operator (for
// example "StringEquals", "ForAllValues:StringEquals"), the context key and
// the values, any of which may match.
type Condition struct {
	Operator string
	Key      string
	Values   []string
}

// Decisions of an evaluation, as SimulatePrincipalPolicy spells them.
const (
	DecisionAllowed      = "allowed"
	DecisionImplicitDeny = "implicitDeny"
	DecisionExplicitDeny = "explicitDeny"
)

// conditionOperators are the operators Evaluate understands.
var conditionOperators = map[string]bool{
	"StringEquals": true, "StringLike": true, "StringNotEquals": true,
	"ArnEquals": true, "ArnLike": true, "Bool": true,
	"ForAllValues:StringEquals": true, "ForAnyValue:StringEquals": true,
}

// ParsePolicy reads an IAM policy document (JSON). Action, Resource and
// condition values may be a string or a list. Elements the model cannot
// evaluate (NotAction, NotResource, Principal, unknown operators) are errors,
// never silently ignored.
func ParsePolicy(doc []byte) ([]Statement, error) {
	var raw struct {
		Version   string
		Statement json.RawMessage
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw.Statement, &list); err != nil {
		var one map[string]json.RawMessage
		if err2 := json.Unmarshal(raw.Statement, &one); err2 != nil {
			return nil, fmt.Errorf("policy: Statement: %w", err)
		}
		list = []map[string]json.RawMessage{one}
	}
	var out []Statement
	for i, m := range list {
		st := Statement{}
		for k, v := range m {
			var err error
			switch k {
			case "Sid":
				err = json.Unmarshal(v, &st.Sid)
			case "Effect":
				err = json.Unmarshal(v, &st.Effect)
			case "Action":
				st.Actions, err = stringOrList(v)
			case "Resource":
				st.Resources, err = stringOrList(v)
			case "Condition":
				st.Conditions, err = parseConditions(v)
			default:
				err = fmt.Errorf("element %s is not modelled", k)
			}
			if err != nil {
				return nil, fmt.Errorf("policy: statement %d: %s: %w", i, k, err)
			}
		}
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return nil, fmt.Errorf("policy: statement %d: Effect %q", i, st.Effect)
		}
		if len(st.Actions) == 0 || len(st.Resources) == 0 {
			return nil, fmt.Errorf("policy: statement %d: needs Action and Resource", i)
		}
		out = append(out, st)
	}
	return out, nil
}

func stringOrList(v json.RawMessage) ([]string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return []string{s}, nil
	}
	var l []string
	if err := json.Unmarshal(v, &l); err != nil {
		return nil, err
	}
	return l, nil
}

func parseConditions(v json.RawMessage) ([]Condition, error) {
	var ops map[string]map[string]json.RawMessage
	if err := json.Unmarshal(v, &ops); err != nil {
		return nil, err
	}
	var out []Condition
	for op, keys := range ops {
		if !conditionOperators[op] {
			return nil, fmt.Errorf("operator %s is not modelled", op)
		}
		for k, raw := range keys {
			vals, err := stringOrList(raw)
			if err != nil {
				var b bool
				if json.Unmarshal(raw, &b) != nil {
					return nil, fmt.Errorf("%s %s: %w", op, k, err)
				}
				vals = []string{fmt.Sprint(b)}
			}
			out = append(out, Condition{Operator: op, Key: k, Values: vals})
		}
	}
	slices.SortFunc(out, func(a, b Condition) int { return strings.Compare(a.Operator+a.Key, b.Operator+b.Key) })
	return out, nil
}

// Evaluate decides one request: action ("service:Action"), resource ARN
// (or "*") and the request context (keys case-insensitive).
func Evaluate(policy []Statement, action, resource string, reqCtx map[string][]string) string {
	lc := map[string][]string{}
	for k, v := range reqCtx {
		lc[strings.ToLower(k)] = v
	}
	allowed := false
	for _, st := range policy {
		if !st.applies(action, resource, lc) {
			continue
		}
		if st.Effect == "Deny" {
			return DecisionExplicitDeny
		}
		allowed = true
	}
	if allowed {
		return DecisionAllowed
	}
	return DecisionImplicitDeny
}

func (st Statement) applies(action, resource string, ctx map[string][]string) bool {
	if !slices.ContainsFunc(st.Actions, func(p string) bool { return wildcardMatch(strings.ToLower(p), strings.ToLower(action)) }) {
		return false
	}
	if !slices.ContainsFunc(st.Resources, func(p string) bool { return wildcardMatch(p, resource) }) {
		return false
	}
	for _, c := range st.Conditions {
		if !c.holds(ctx[strings.ToLower(c.Key)]) {
			return false
		}
	}
	return true
}

func (c Condition) holds(have []string) bool {
	anyOf := func(v string, match func(want, v string) bool) bool {
		return slices.ContainsFunc(c.Values, func(w string) bool { return match(w, v) })
	}
	equal := func(w, v string) bool { return w == v }
	switch c.Operator {
	case "StringEquals", "ArnEquals":
		return len(have) > 0 && anyOf(have[0], equal)
	case "StringNotEquals":
		return len(have) == 0 || !anyOf(have[0], equal)
	case "StringLike", "ArnLike":
		return len(have) > 0 && anyOf(have[0], wildcardMatch)
	case "Bool":
		return len(have) > 0 && anyOf(strings.ToLower(have[0]), equal)
	case "ForAllValues:StringEquals":
		for _, v := range have {
			if !anyOf(v, equal) {
				return false
			}
		}
		return true
	case "ForAnyValue:StringEquals":
		return slices.ContainsFunc(have, func(v string) bool { return anyOf(v, equal) })
	}
	return false
}

// wildcardMatch is IAM's matching: * any run of characters (slashes
// included), ? one character.
func wildcardMatch(pattern, s string) bool {
	// path.Match treats '/' specially; IAM does not: match segment-free by
	// replacing '/' on both sides with a character patterns never contain.
	const sep = "\x00"
	ok, err := path.Match(strings.ReplaceAll(escapeBrackets(pattern), "/", sep), strings.ReplaceAll(s, "/", sep))
	return err == nil && ok
}

// escapeBrackets keeps [ and ] literal (path.Match would read a class).
func escapeBrackets(p string) string {
	return strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`).Replace(p)
}

// iamState is the IAM, STS and CloudTrail side of a Sim: configuration that
// tests seed, kept beside the ECS state (it is not journalled) under its own
// lock.
type iamState struct {
	mu       sync.Mutex
	caller   string
	policies map[string][]Statement // principal ARN -> statements
	trails   []*trail
}

var iamStates sync.Map // weak.Pointer[Sim] -> *iamState

func (s *Sim) iam() *iamState {
	k := weak.Make(s)
	if v, ok := iamStates.Load(k); ok {
		return v.(*iamState)
	}
	st := &iamState{
		caller:   fmt.Sprintf("arn:aws:sts::%s:assumed-role/ecs-sidecar-reconciler/awssim", s.account),
		policies: map[string][]Statement{},
	}
	v, loaded := iamStates.LoadOrStore(k, st)
	if !loaded {
		runtime.AddCleanup(s, func(k weak.Pointer[Sim]) { iamStates.Delete(k) }, k)
	}
	return v.(*iamState)
}

// PutPrincipalPolicy sets the identity policy of a role or user ARN (it
// replaces what was there); the principal then exists for
// SimulatePrincipalPolicy.
func (s *Sim) PutPrincipalPolicy(principalArn string, policy []Statement) {
	st := s.iam()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.policies[principalArn] = slices.Clone(policy)
}

// PrincipalPolicy is the identity policy PutPrincipalPolicy set for a role
// or user ARN, and whether the principal exists.
func (s *Sim) PrincipalPolicy(principalArn string) ([]Statement, bool) {
	st := s.iam()
	st.mu.Lock()
	defer st.mu.Unlock()
	p, ok := st.policies[principalArn]
	return slices.Clone(p), ok
}

// simulatePrincipalPolicy serves IAM's SimulatePrincipalPolicy (query
// protocol): one result per action and resource, in request order.
func (s *Sim) simulatePrincipalPolicy(ctx context.Context, form url.Values) (any, *Error) {
	src := form.Get("PolicySourceArn")
	actions := queryList(form, "ActionNames")
	if src == "" || len(actions) == 0 {
		return nil, &Error{Code: "ValidationError", Message: "PolicySourceArn and ActionNames are required."}
	}
	resources := queryList(form, "ResourceArns")
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	reqCtx := map[string][]string{}
	for i := 1; ; i++ {
		p := fmt.Sprintf("ContextEntries.member.%d.", i)
		name := form.Get(p + "ContextKeyName")
		if name == "" {
			break
		}
		reqCtx[name] = queryList(form, p+"ContextKeyValues")
	}
	st := s.iam()
	st.mu.Lock()
	policy, ok := st.policies[src]
	st.mu.Unlock()
	if !ok {
		return nil, &Error{Code: "NoSuchEntity", Message: fmt.Sprintf("The principal %s cannot be found.", src), Status: 404}
	}
	type result struct {
		EvalActionName   string
		EvalResourceName string
		EvalDecision     string
	}
	var res []result
	for _, a := range actions {
		for _, r := range resources {
			res = append(res, result{a, r, Evaluate(policy, a, r, reqCtx)})
		}
	}
	type members struct {
		Member []result `xml:"member"`
	}
	return struct {
		EvaluationResults members
		IsTruncated       bool
	}{members{res}, false}, nil
}

// queryList reads a query-protocol list: Name.member.1, Name.member.2 ...
func queryList(form url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[fmt.Sprintf("%s.member.%d", name, i)]
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}
