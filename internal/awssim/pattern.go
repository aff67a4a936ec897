package awssim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"strings"
)

// EventBridge event patterns (the EventBridge User Guide, "Event patterns"
// and "Content filtering"). A pattern is a JSON object whose fields are
// either objects (nested fields, such as detail.x) or arrays of matchers;
// an event matches when every field of the pattern matches, and a field
// matches when any of its matchers does (for an event field holding an
// array, when any of its elements does). Matchers:
//
//	"s", 5, true, null               exact value (numbers compare by value)
//	{"prefix": "s"}                  also {"prefix": {"equals-ignore-case": "s"}}
//	{"suffix": "s"}                  also {"suffix": {"equals-ignore-case": "s"}}
//	{"equals-ignore-case": "s"}
//	{"wildcard": "a*b"}
//	{"anything-but": v | [v...] | {"prefix": s} | {"suffix": s} | {"equals-ignore-case": s | [s...]}}
//	{"exists": true | false}         leaf fields only, as EventBridge
//	{"numeric": [">", 0, "<=", 5]}   operators = < <= > >=
//
// and "$or": [pattern, ...] at any level. Not served: cidr.
type pattern struct {
	fields map[string]*patternField
	or     [][]*pattern // each "$or" is a list of alternatives
}

type patternField struct {
	nested   *pattern
	matchers []matcher
}

type matcher struct {
	kind    string // exact, prefix, suffix, eqic, wildcard, anything-but, exists, numeric
	value   any    // exact: string, float64, bool or nil
	str     string
	fold    bool // prefix/suffix: ignore case
	butVals []any
	butKind string // anything-but: values, prefix, suffix, eqic
	exists  bool
	numeric []numericCond
}

type numericCond struct {
	op string
	v  float64
}

func errPattern(format string, args ...any) *Error {
	return &Error{Code: "InvalidEventPatternException", Message: "Event pattern is not valid. Reason: " + fmt.Sprintf(format, args...)}
}

// compilePattern parses and checks an event pattern.
func compilePattern(src string) (*pattern, *Error) {
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errPattern("%v", err)
	}
	if dec.More() {
		return nil, errPattern("data after the pattern")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errPattern("Filter is not an object")
	}
	if len(obj) == 0 {
		return nil, errPattern("Empty objects are not allowed")
	}
	return compileObject(obj, "")
}

func compileObject(obj map[string]any, at string) (*pattern, *Error) {
	p := &pattern{fields: map[string]*patternField{}}
	for k, v := range obj {
		where := strings.TrimPrefix(at+"."+k, ".")
		if k == "$or" {
			alts, ok := v.([]any)
			if !ok || len(alts) < 2 {
				return nil, errPattern("$or at %s must be an array of at least two objects", where)
			}
			var list []*pattern
			for _, a := range alts {
				o, ok := a.(map[string]any)
				if !ok || len(o) == 0 {
					return nil, errPattern("$or at %s must hold non-empty objects", where)
				}
				sub, err := compileObject(o, at)
				if err != nil {
					return nil, err
				}
				list = append(list, sub)
			}
			p.or = append(p.or, list)
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				return nil, errPattern("Empty objects are not allowed")
			}
			sub, err := compileObject(x, where)
			if err != nil {
				return nil, err
			}
			p.fields[k] = &patternField{nested: sub}
		case []any:
			if len(x) == 0 {
				return nil, errPattern("Empty arrays are not allowed")
			}
			f := &patternField{}
			for _, m := range x {
				mm, err := compileMatcher(m, where)
				if err != nil {
					return nil, err
				}
				f.matchers = append(f.matchers, mm)
			}
			p.fields[k] = f
		default:
			return nil, errPattern("Match value must be String, number, true, false, or null at %s", where)
		}
	}
	return p, nil
}

func scalar(v any) (any, bool) {
	switch x := v.(type) {
	case nil, string, bool:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return nil, false
}

func compileMatcher(v any, where string) (matcher, *Error) {
	if s, ok := scalar(v); ok {
		return matcher{kind: "exact", value: s}, nil
	}
	obj, ok := v.(map[string]any)
	if !ok || len(obj) != 1 {
		return matcher{}, errPattern("Match value must be String, number, true, false, or null at %s", where)
	}
	for op, arg := range obj {
		switch op {
		case "prefix", "suffix":
			if s, ok := arg.(string); ok {
				return matcher{kind: op, str: s}, nil
			}
			if o, ok := arg.(map[string]any); ok && len(o) == 1 {
				if s, ok := o["equals-ignore-case"].(string); ok {
					return matcher{kind: op, str: s, fold: true}, nil
				}
			}
			return matcher{}, errPattern("%s match pattern must be a string at %s", op, where)
		case "equals-ignore-case":
			s, ok := arg.(string)
			if !ok {
				return matcher{}, errPattern("equals-ignore-case match pattern must be a string at %s", where)
			}
			return matcher{kind: "eqic", str: s}, nil
		case "wildcard":
			s, ok := arg.(string)
			if !ok || strings.Contains(s, "**") {
				return matcher{}, errPattern("wildcard match pattern must be a string without consecutive wildcards at %s", where)
			}
			return matcher{kind: "wildcard", str: s}, nil
		case "exists":
			b, ok := arg.(bool)
			if !ok {
				return matcher{}, errPattern("exists match pattern must be either true or false at %s", where)
			}
			return matcher{kind: "exists", exists: b}, nil
		case "anything-but":
			m := matcher{kind: "anything-but", butKind: "values"}
			switch a := arg.(type) {
			case []any:
				if len(a) == 0 {
					return matcher{}, errPattern("Empty arrays are not allowed at %s", where)
				}
				for _, x := range a {
					s, ok := scalar(x)
					if !ok || s == nil {
						return matcher{}, errPattern("Inside anything but list, start|null|boolean is not supported at %s", where)
					}
					m.butVals = append(m.butVals, s)
				}
			case map[string]any:
				if len(a) != 1 {
					return matcher{}, errPattern("anything-but takes one of prefix, suffix, equals-ignore-case at %s", where)
				}
				for k, x := range a {
					switch k {
					case "prefix", "suffix":
						s, ok := x.(string)
						if !ok {
							return matcher{}, errPattern("anything-but %s must be a string at %s", k, where)
						}
						m.butKind, m.str = k, s
					case "equals-ignore-case":
						m.butKind = "eqic"
						switch y := x.(type) {
						case string:
							m.butVals = []any{y}
						case []any:
							for _, z := range y {
								s, ok := z.(string)
								if !ok {
									return matcher{}, errPattern("anything-but equals-ignore-case takes strings at %s", where)
								}
								m.butVals = append(m.butVals, s)
							}
						default:
							return matcher{}, errPattern("anything-but equals-ignore-case takes strings at %s", where)
						}
					default:
						return matcher{}, errPattern("Unsupported anything-but pattern: %s at %s", k, where)
					}
				}
			default:
				s, ok := scalar(a)
				if !ok || s == nil {
					return matcher{}, errPattern("anything-but takes a value, a list or an object at %s", where)
				}
				m.butVals = []any{s}
			}
			return m, nil
		case "numeric":
			a, ok := arg.([]any)
			if !ok || len(a) == 0 || len(a)%2 != 0 || len(a) > 4 {
				return matcher{}, errPattern("Value of numeric must be an array of operator, number pairs at %s", where)
			}
			m := matcher{kind: "numeric"}
			lower, upper := false, false
			for i := 0; i < len(a); i += 2 {
				op, ok := a[i].(string)
				n, isNum := a[i+1].(json.Number)
				if !ok || !isNum {
					return matcher{}, errPattern("Value of numeric must be an array of operator, number pairs at %s", where)
				}
				f, err := n.Float64()
				if err != nil {
					return matcher{}, errPattern("bad number %s at %s", n, where)
				}
				switch op {
				case "=":
					if len(a) != 2 {
						return matcher{}, errPattern("= must be alone in numeric at %s", where)
					}
				case ">", ">=":
					if lower {
						return matcher{}, errPattern("two lower bounds in numeric at %s", where)
					}
					lower = true
				case "<", "<=":
					if upper {
						return matcher{}, errPattern("two upper bounds in numeric at %s", where)
					}
					upper = true
				default:
					return matcher{}, errPattern("Unrecognized numeric range operator: %s at %s", op, where)
				}
				m.numeric = append(m.numeric, numericCond{op, f})
			}
			return m, nil
		default:
			return matcher{}, errPattern("Unrecognized match type %s at %s", op, where)
		}
	}
	panic("unreachable")
}

// match reports whether the event (decoded with UseNumber) matches.
func (p *pattern) match(event map[string]any) bool {
	for k, f := range p.fields {
		v, present := event[k]
		if f.nested != nil {
			obj, _ := v.(map[string]any)
			if obj == nil {
				obj = map[string]any{}
			}
			if !f.nested.match(obj) {
				return false
			}
			continue
		}
		if !f.matchLeaf(v, present) {
			return false
		}
	}
	for _, alts := range p.or {
		any := false
		for _, a := range alts {
			if a.match(event) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	return true
}

func (f *patternField) matchLeaf(v any, present bool) bool {
	// exists looks at the field as a whole: a leaf is present when it is a
	// scalar or an array (an object is not a leaf).
	_, isObj := v.(map[string]any)
	leaf := present && !isObj
	values := []any{v}
	if arr, ok := v.([]any); ok {
		values = arr
	}
	for _, m := range f.matchers {
		if m.kind == "exists" {
			if m.exists == leaf {
				return true
			}
			continue
		}
		if !leaf {
			continue
		}
		for _, x := range values {
			if m.matchValue(x) {
				return true
			}
		}
	}
	return false
}

func (m matcher) matchValue(x any) bool {
	ev, ok := scalar(x)
	if !ok {
		return false
	}
	s, isStr := ev.(string)
	switch m.kind {
	case "exact":
		return ev == m.value
	case "prefix":
		if m.fold {
			return isStr && len(s) >= len(m.str) && strings.EqualFold(s[:len(m.str)], m.str)
		}
		return isStr && strings.HasPrefix(s, m.str)
	case "suffix":
		if m.fold {
			return isStr && len(s) >= len(m.str) && strings.EqualFold(s[len(s)-len(m.str):], m.str)
		}
		return isStr && strings.HasSuffix(s, m.str)
	case "eqic":
		return isStr && strings.EqualFold(s, m.str)
	case "wildcard":
		return isStr && wildcard(m.str, s)
	case "anything-but":
		switch m.butKind {
		case "prefix":
			return isStr && !strings.HasPrefix(s, m.str)
		case "suffix":
			return isStr && !strings.HasSuffix(s, m.str)
		case "eqic":
			if !isStr {
				return false
			}
			for _, b := range m.butVals {
				if strings.EqualFold(s, b.(string)) {
					return false
				}
			}
			return true
		}
		if ev == nil {
			return false
		}
		for _, b := range m.butVals {
			if ev == b {
				return false
			}
		}
		return true
	case "numeric":
		f, isNum := ev.(float64)
		if !isNum || math.IsNaN(f) {
			return false
		}
		for _, c := range m.numeric {
			var ok bool
			switch c.op {
			case "=":
				ok = f == c.v
			case ">":
				ok = f > c.v
			case ">=":
				ok = f >= c.v
			case "<":
				ok = f < c.v
			case "<=":
				ok = f <= c.v
			}
			if !ok {
				return false
			}
		}
		return true
	}
	return false
}

// wildcard matches s against a pattern where * is any run of characters
// (path.Match's other metacharacters are escaped).
func wildcard(pat, s string) bool {
	var b strings.Builder
	for _, r := range pat {
		switch r {
		case '*':
			b.WriteRune(r)
		case '?', '[', ']', '\\':
			b.WriteRune('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	// path.Match's * does not cross '/': match segment-free by replacing /.
	const sep = "\x00"
	ok, _ := path.Match(strings.ReplaceAll(b.String(), "/", sep), strings.ReplaceAll(s, "/", sep))
	return ok
}

// decodeEvent decodes an event for matching.
func decodeEvent(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}
