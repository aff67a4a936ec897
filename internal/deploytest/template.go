// Package deploytest reads deploy/cloudformation/reconciler.yaml for tests:
// it parses the template (short-form intrinsics included, through yaml.v3
// nodes and their tags), resolves the intrinsic functions it uses for a
// given set of parameters, and hands out the parts tests check: the task
// role's policy, the queue policy, the reconciler's own task definition as
// an ECS RegisterTaskDefinition input and the configuration it renders.
//
// The resolver knows only what the template uses (Ref, Fn::Sub, Fn::GetAtt,
// Fn::If, Fn::Join, Fn::Split, Fn::Equals, Fn::Not, Fn::And, Fn::Or,
// AWS::NoValue and the pseudo parameters; in Rules also Fn::Contains,
// Fn::EachMemberEquals and Fn::EachMemberIn); anything else is an error, so
// a template change the tests cannot follow fails them instead of passing.
// CheckParams and CheckRules refuse the stacks CloudFormation would refuse
// for their parameters (AllowedValues, AllowedPattern, the Rules section).
package deploytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template is the parsed template, intrinsics in their long form
// ({"Fn::Sub": ...}, {"Ref": ...}).
type Template struct {
	Parameters map[string]map[string]any
	Mappings   map[string]map[string]map[string]any
	Conditions map[string]any
	Rules      map[string]Rule
	Resources  map[string]Resource
	Outputs    map[string]any
}

// Rule is one rule of the Rules section: when RuleCondition holds (or is
// absent), every assertion must.
type Rule struct {
	RuleCondition any
	Assertions    []struct {
		Assert            any
		AssertDescription string
	}
}

// Resource is one resource of the template.
type Resource struct {
	Type       string
	Condition  string
	Properties map[string]any
}

// Path is the template's path in the repository.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "cloudformation", "reconciler.yaml")
}

// Load reads and parses the template at path.
func Load(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	v, err := fromNode(&root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b, err = json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var t Template
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

// fromNode turns a yaml.v3 node into plain values; a node tagged with a
// short-form intrinsic (!Sub) becomes its long form ({"Fn::Sub": ...}).
func fromNode(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		return fromNode(n.Content[0])
	case yaml.AliasNode:
		return fromNode(n.Alias)
	}
	var v any
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			val, err := fromNode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = val
		}
		v = m
	case yaml.SequenceNode:
		l := []any{}
		for _, c := range n.Content {
			val, err := fromNode(c)
			if err != nil {
				return nil, err
			}
			l = append(l, val)
		}
		v = l
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int":
			i, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			v = i
		case "!!bool":
			v = n.Value == "true"
		case "!!null":
			v = nil
		default:
			v = n.Value
		}
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name := strings.TrimPrefix(n.Tag, "!")
		switch name {
		case "Ref", "Condition":
			return map[string]any{name: v}, nil
		case "GetAtt":
			if s, ok := v.(string); ok {
				a, b, _ := strings.Cut(s, ".")
				v = []any{a, b}
			}
		}
		return map[string]any{"Fn::" + name: v}, nil
	}
	return v, nil
}

// Stack is what a deployment gives the template: parameter values (string,
// or []string for list types), pseudo parameters and the attributes of
// resources (Attrs["Queue.Arn"]; Attrs["Queue"] is its Ref). Missing
// attributes get made-up values in AWS's formats.
type Stack struct {
	Params    map[string]any
	Attrs     map[string]string
	Region    string
	Account   string
	Partition string
	StackName string
}

// noValue is AWS::NoValue: removed from the list or map that holds it.
type noValue struct{}

// Resolve evaluates every intrinsic function in v.
func (t *Template) Resolve(v any, s Stack) (any, error) {
	r := resolver{t: t, s: s}
	out, err := r.value(v)
	if err != nil {
		return nil, err
	}
	if _, ok := out.(noValue); ok {
		return nil, nil
	}
	return out, nil
}

type resolver struct {
	t *Template
	s Stack
	// rules enables the functions only Rules may use.
	rules bool
}

func (r resolver) value(v any) (any, error) {
	switch v := v.(type) {
	case []any:
		out := []any{}
		for _, e := range v {
			x, err := r.value(e)
			if err != nil {
				return nil, err
			}
			if _, ok := x.(noValue); ok {
				continue
			}
			out = append(out, x)
		}
		return out, nil
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") || k == "Condition" {
					return r.intrinsic(k, arg)
				}
			}
		}
		out := map[string]any{}
		for k, e := range v {
			x, err := r.value(e)
			if err != nil {
				return nil, err
			}
			if _, ok := x.(noValue); ok {
				continue
			}
			out[k] = x
		}
		return out, nil
	}
	return v, nil
}

func (r resolver) intrinsic(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		return r.ref(name)
	case "Condition":
		name, _ := arg.(string)
		return r.condition(name)
	case "Fn::GetAtt":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return nil, fmt.Errorf("Fn::GetAtt %v: want [resource, attribute]", arg)
		}
		return r.attr(fmt.Sprint(l[0]), fmt.Sprint(l[1]))
	case "Fn::Sub":
		s, vars := "", map[string]any{}
		switch a := arg.(type) {
		case string:
			s = a
		case []any:
			if len(a) != 2 {
				return nil, fmt.Errorf("Fn::Sub %v: want [string, map]", arg)
			}
			s, _ = a[0].(string)
			m, _ := a[1].(map[string]any)
			for k, e := range m {
				x, err := r.value(e)
				if err != nil {
					return nil, err
				}
				vars[k] = x
			}
		}
		return r.sub(s, vars)
	case "Fn::If":
		l, ok := arg.([]any)
		if !ok || len(l) != 3 {
			return nil, fmt.Errorf("Fn::If %v: want [condition, then, else]", arg)
		}
		c, err := r.condition(fmt.Sprint(l[0]))
		if err != nil {
			return nil, err
		}
		if c {
			return r.value(l[1])
		}
		return r.value(l[2])
	case "Fn::FindInMap":
		l, ok := arg.([]any)
		if !ok || len(l) != 3 {
			return nil, fmt.Errorf("Fn::FindInMap %v: want [map, top-level key, second-level key]", arg)
		}
		keys := make([]string, 3)
		for i, e := range l {
			x, err := r.value(e)
			if err != nil {
				return nil, err
			}
			keys[i] = fmt.Sprint(x)
		}
		v, ok := r.t.Mappings[keys[0]][keys[1]][keys[2]]
		if !ok {
			// CloudFormation fails the stack operation on a missing key.
			return nil, fmt.Errorf("Fn::FindInMap: no %s.%s.%s in Mappings", keys[0], keys[1], keys[2])
		}
		return r.value(v)
	case "Fn::Join":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return nil, fmt.Errorf("Fn::Join %v: want [delimiter, list]", arg)
		}
		list, err := r.value(l[1])
		if err != nil {
			return nil, err
		}
		parts, err := strs(list)
		if err != nil {
			return nil, fmt.Errorf("Fn::Join: %w", err)
		}
		return strings.Join(parts, fmt.Sprint(l[0])), nil
	case "Fn::Split":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return nil, fmt.Errorf("Fn::Split %v: want [delimiter, string]", arg)
		}
		s, err := r.value(l[1])
		if err != nil {
			return nil, err
		}
		var out []any
		for _, p := range strings.Split(fmt.Sprint(s), fmt.Sprint(l[0])) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		return r.boolFn(fn, arg)
	case "Fn::Contains", "Fn::EachMemberEquals", "Fn::EachMemberIn":
		if r.rules {
			return r.ruleFn(fn, arg)
		}
	}
	return nil, fmt.Errorf("intrinsic %s is not known to deploytest", fn)
}

func (r resolver) boolFn(fn string, arg any) (bool, error) {
	l, ok := arg.([]any)
	if !ok {
		return false, fmt.Errorf("%s %v: want a list", fn, arg)
	}
	var vals []any
	for _, e := range l {
		x, err := r.value(e)
		if err != nil {
			return false, err
		}
		vals = append(vals, x)
	}
	switch fn {
	case "Fn::Equals":
		if len(vals) != 2 {
			return false, fmt.Errorf("Fn::Equals: want 2 values")
		}
		return fmt.Sprint(vals[0]) == fmt.Sprint(vals[1]), nil
	case "Fn::Not":
		b, ok := vals[0].(bool)
		if len(vals) != 1 || !ok {
			return false, fmt.Errorf("Fn::Not: want one condition")
		}
		return !b, nil
	}
	and := fn == "Fn::And"
	for _, v := range vals {
		b, ok := v.(bool)
		if !ok {
			return false, fmt.Errorf("%s: %v is not a condition", fn, v)
		}
		if b != and {
			return b, nil
		}
	}
	return and, nil
}

func (r resolver) condition(name string) (bool, error) {
	c, ok := r.t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("condition %s is not defined", name)
	}
	v, err := r.value(c)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("condition %s is not a boolean", name)
	}
	return b, nil
}

func (r resolver) ref(name string) (any, error) {
	switch name {
	case "AWS::Region":
		return r.s.Region, nil
	case "AWS::AccountId":
		return r.s.Account, nil
	case "AWS::Partition":
		return r.s.Partition, nil
	case "AWS::StackName":
		return r.s.StackName, nil
	case "AWS::NoValue":
		return noValue{}, nil
	}
	if p, ok := r.t.Parameters[name]; ok {
		if v, ok := r.s.Params[name]; ok {
			if l, ok := v.([]string); ok {
				out := []any{}
				for _, s := range l {
					out = append(out, s)
				}
				return out, nil
			}
			return v, nil
		}
		d, ok := p["Default"]
		if !ok {
			return nil, fmt.Errorf("parameter %s has no value and no default", name)
		}
		if t, _ := p["Type"].(string); strings.HasPrefix(t, "List<") || t == "CommaDelimitedList" {
			out := []any{}
			for _, s := range strings.Split(fmt.Sprint(d), ",") {
				out = append(out, s)
			}
			return out, nil
		}
		return fmt.Sprint(d), nil
	}
	if _, ok := r.t.Resources[name]; ok {
		return r.attr(name, "")
	}
	return nil, fmt.Errorf("resolve Ref %s: no such parameter or resource", name)
}

// attr is a resource's attribute; "" is its Ref.
func (r resolver) attr(resource, attribute string) (string, error) {
	key := resource
	if attribute != "" {
		key += "." + attribute
	}
	if v, ok := r.s.Attrs[key]; ok {
		return v, nil
	}
	res, ok := r.t.Resources[resource]
	if !ok {
		return "", fmt.Errorf("Fn::GetAtt %s: no such resource", key)
	}
	if res.Condition != "" {
		on, err := r.condition(res.Condition)
		if err != nil {
			return "", err
		}
		if !on {
			return "", fmt.Errorf("%s: the stack does not create %s (condition %s is false)", key, resource, res.Condition)
		}
	}
	s, name := r.s, r.s.StackName+"-"+resource
	arn := func(service, region, rest string) string {
		return fmt.Sprintf("arn:%s:%s:%s:%s:%s", s.Partition, service, region, s.Account, rest)
	}
	switch res.Type + "." + attribute {
	case "AWS::SQS::Queue.":
		return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", s.Region, s.Account, name), nil
	case "AWS::SQS::Queue.Arn":
		return arn("sqs", s.Region, name), nil
	case "AWS::SQS::Queue.QueueName", "AWS::IAM::Role.", "AWS::Logs::LogGroup.", "AWS::S3::Bucket.":
		return name, nil
	case "AWS::IAM::Role.Arn":
		return arn("iam", "", "role/"+name), nil
	case "AWS::Events::Rule.Arn":
		return arn("events", s.Region, "rule/"+name), nil
	case "AWS::Logs::LogGroup.Arn":
		return arn("logs", s.Region, "log-group:"+name+":*"), nil
	case "AWS::ECS::TaskDefinition.":
		return arn("ecs", s.Region, "task-definition/"+name+":1"), nil
	case "AWS::DynamoDB::Table.":
		return name, nil
	case "AWS::DynamoDB::Table.Arn":
		return arn("dynamodb", s.Region, "table/"+name), nil
	case "AWS::S3::Bucket.Arn":
		return fmt.Sprintf("arn:%s:s3:::%s", s.Partition, name), nil
	}
	return "", fmt.Errorf("Fn::GetAtt %s (%s): deploytest does not know this attribute", key, res.Type)
}

var subVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

func (r resolver) sub(s string, vars map[string]any) (string, error) {
	var firstErr error
	out := subVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		var v any
		var err error
		if x, ok := vars[name]; ok {
			v = x
		} else if res, attr, ok := strings.Cut(name, "."); ok {
			v, err = r.attr(res, attr)
		} else {
			v, err = r.ref(name)
		}
		if err == nil {
			if _, isList := v.([]any); isList {
				err = fmt.Errorf("Fn::Sub: ${%s} is a list", name)
			}
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return fmt.Sprint(v)
	})
	return out, firstErr
}

func strs(v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%v is not a list", v)
	}
	out := make([]string, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%v is not a string", e)
		}
		out[i] = s
	}
	return out, nil
}

// Creates reports whether the stack creates a resource: it exists and its
// Condition, if any, holds.
func (t *Template) Creates(s Stack, resource string) (bool, error) {
	res, ok := t.Resources[resource]
	if !ok {
		return false, nil
	}
	if res.Condition == "" {
		return true, nil
	}
	return resolver{t: t, s: s}.condition(res.Condition)
}

// Property resolves one property of a resource.
func (t *Template) Property(s Stack, resource string, path ...string) (any, error) {
	res, ok := t.Resources[resource]
	if !ok {
		return nil, fmt.Errorf("no resource %s", resource)
	}
	var v any = res.Properties
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s.%s: not a map", resource, strings.Join(path, "."))
		}
		v, ok = m[p]
		if !ok {
			return nil, fmt.Errorf("%s has no %s", resource, strings.Join(path, "."))
		}
	}
	return t.Resolve(v, s)
}

// PolicyJSON resolves a policy document property to IAM JSON.
func (t *Template) PolicyJSON(s Stack, resource string, path ...string) ([]byte, error) {
	v, err := t.Property(s, resource, path...)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errors.New("empty policy")
	}
	return json.Marshal(v)
}

// ruleFn evaluates the list functions of Rules: Fn::Contains [list, value]
// (value is one of list), Fn::EachMemberEquals [list, value] (every member
// is value), Fn::EachMemberIn [list, list] (every member is in the second).
func (r resolver) ruleFn(fn string, arg any) (bool, error) {
	l, ok := arg.([]any)
	if !ok || len(l) != 2 {
		return false, fmt.Errorf("%s %v: want [list, value]", fn, arg)
	}
	a, err := r.value(l[0])
	if err != nil {
		return false, err
	}
	b, err := r.value(l[1])
	if err != nil {
		return false, err
	}
	list, err := strs(a)
	if err != nil {
		return false, fmt.Errorf("%s: %w", fn, err)
	}
	switch fn {
	case "Fn::Contains":
		return slices.Contains(list, fmt.Sprint(b)), nil
	case "Fn::EachMemberEquals":
		for _, m := range list {
			if m != fmt.Sprint(b) {
				return false, nil
			}
		}
		return true, nil
	}
	in, err := strs(b)
	if err != nil {
		return false, fmt.Errorf("%s: %w", fn, err)
	}
	for _, m := range list {
		if !slices.Contains(in, m) {
			return false, nil
		}
	}
	return true, nil
}

// CheckRules evaluates the Rules section for s and returns the description
// of every assertion that fails, by rule name: what CloudFormation would
// refuse the stack for.
func (t *Template) CheckRules(s Stack) ([]string, error) {
	r := resolver{t: t, s: s, rules: true}
	var failed []string
	for _, name := range slices.Sorted(maps.Keys(t.Rules)) {
		rule := t.Rules[name]
		if rule.RuleCondition != nil {
			v, err := r.value(rule.RuleCondition)
			if err != nil {
				return nil, fmt.Errorf("rule %s: condition: %w", name, err)
			}
			if b, ok := v.(bool); !ok || !b {
				if !ok {
					return nil, fmt.Errorf("rule %s: condition is not a boolean", name)
				}
				continue
			}
		}
		for i, a := range rule.Assertions {
			v, err := r.value(a.Assert)
			if err != nil {
				return nil, fmt.Errorf("rule %s: assertion %d: %w", name, i, err)
			}
			b, ok := v.(bool)
			if !ok {
				return nil, fmt.Errorf("rule %s: assertion %d is not a boolean", name, i)
			}
			if !b {
				failed = append(failed, name+": "+a.AssertDescription)
			}
		}
	}
	return failed, nil
}

// CheckParams checks the parameters of s as CloudFormation does before it
// creates or updates a stack: every parameter without a default is given,
// and each value (each member of a list parameter) is one of AllowedValues
// and matches AllowedPattern (the patterns here are RE2-compatible).
func (t *Template) CheckParams(s Stack) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(t.Parameters)) {
		p := t.Parameters[name]
		typ, _ := p["Type"].(string)
		list := strings.HasPrefix(typ, "List<") || typ == "CommaDelimitedList"
		var vals []string
		switch v := s.Params[name].(type) {
		case nil:
			d, ok := p["Default"]
			if !ok {
				errs = append(errs, fmt.Errorf("parameter %s: no value and no default", name))
				continue
			}
			vals = []string{fmt.Sprint(d)}
			if list {
				vals = strings.Split(vals[0], ",")
			}
		case []string:
			if !list {
				errs = append(errs, fmt.Errorf("parameter %s (%s): given a list", name, typ))
				continue
			}
			vals = v
		default:
			vals = []string{fmt.Sprint(v)}
			if list {
				vals = strings.Split(vals[0], ",")
			}
		}
		var pattern *regexp.Regexp
		if ap, ok := p["AllowedPattern"].(string); ok {
			re, err := regexp.Compile(ap)
			if err != nil {
				errs = append(errs, fmt.Errorf("parameter %s: AllowedPattern %q: %w", name, ap, err))
				continue
			}
			pattern = re
		}
		var allowed []string
		if av, ok := p["AllowedValues"].([]any); ok {
			for _, a := range av {
				allowed = append(allowed, fmt.Sprint(a))
			}
		}
		for _, v := range vals {
			if pattern != nil && !pattern.MatchString(v) {
				errs = append(errs, fmt.Errorf("parameter %s: %q does not match AllowedPattern %s", name, v, pattern))
			}
			if allowed != nil && !slices.Contains(allowed, v) {
				errs = append(errs, fmt.Errorf("parameter %s: %q is not one of %v", name, v, allowed))
			}
		}
	}
	for name := range s.Params {
		if _, ok := t.Parameters[name]; !ok {
			errs = append(errs, fmt.Errorf("parameter %s: not in the template", name))
		}
	}
	return errs
}
