package cfnmacro

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

type patchReason = patch.Reason

// intrinsic reports whether v is an intrinsic function in its JSON (long)
// form, a map of one key that is Ref or starts with Fn::, and names it.
func intrinsic(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	for k := range m {
		if k == "Ref" || strings.HasPrefix(k, "Fn::") {
			return k, true
		}
	}
	return "", false
}

// placeholders stands in for the intrinsic functions of one resource while
// the engine works on it: a string or a number that occurs nowhere in the
// template, put back by restore. The engine never sees, nor evaluates, an
// intrinsic function.
type placeholders struct {
	prefix string
	strs   map[string]any
	nums   map[int64]any
	taken  map[int64]bool // numbers the template holds
	next   int64
}

// numBase is where the numeric placeholders start: larger than any CPU,
// memory, port or timeout a task definition states, within int32.
const numBase = 2_000_000_000

func newPlaceholders(template any) *placeholders {
	b, _ := json.Marshal(template)
	prefix := "cfn-intrinsic"
	for strings.Contains(string(b), prefix) {
		prefix += "x"
	}
	p := &placeholders{prefix: prefix, strs: map[string]any{}, nums: map[int64]any{}, taken: map[int64]bool{}}
	walk(template, func(x any) {
		if n, err := scalarInt(x, ""); err == nil {
			switch x.(type) {
			case string:
			default:
				p.taken[n] = true
			}
		}
	})
	return p
}

// str is the placeholder string of v. It looks like a container name
// (letters, digits, hyphens) so that a name given by an intrinsic passes
// ECS's checks.
func (p *placeholders) str(v any) string {
	p.next++
	s := p.prefix + "-" + strconv.FormatInt(p.next, 10) + "-end"
	p.strs[s] = v
	return s
}

// num is the placeholder number of v.
func (p *placeholders) num(v any) int64 {
	for {
		p.next++
		n := numBase + p.next
		if !p.taken[n] {
			p.nums[n] = v
			return n
		}
	}
}

// restore puts the intrinsic functions back in v (the engine's output in
// CloudFormation form): a placeholder string or number becomes its
// function, untouched; a string that holds placeholders among other text
// (the patch record label, which quotes the original command) becomes an
// Fn::Join of the text and the functions.
func (p *placeholders) restore(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := intrinsic(x); ok {
			return x // from the source, as it was
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = p.restore(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = p.restore(e)
		}
		return out
	case string:
		if fn, ok := p.strs[x]; ok {
			return deepCopy(fn)
		}
		if !strings.Contains(x, p.prefix+"-") {
			return x
		}
		return p.join(x)
	case int64:
		if fn, ok := p.nums[x]; ok {
			return deepCopy(fn)
		}
	}
	return v
}

// join splits s at its placeholders into an Fn::Join with no delimiter.
// A placeholder quoted inside JSON text stays a plain function: the
// function's value is put in as it is, unescaped.
func (p *placeholders) join(s string) any {
	var parts []any
	rest := s
	for rest != "" {
		i := strings.Index(rest, p.prefix+"-")
		if i < 0 {
			parts = append(parts, rest)
			break
		}
		j := strings.Index(rest[i:], "-end")
		if j < 0 {
			parts = append(parts, rest)
			break
		}
		ph := rest[i : i+j+len("-end")]
		fn, ok := p.strs[ph]
		if !ok {
			parts = append(parts, rest[:i+j+len("-end")])
			rest = rest[i+j+len("-end"):]
			continue
		}
		if i > 0 {
			parts = append(parts, rest[:i])
		}
		parts = append(parts, deepCopy(fn))
		rest = rest[i+len(ph):]
	}
	// Merge adjacent text.
	var merged []any
	for _, x := range parts {
		if s, ok := x.(string); ok && len(merged) > 0 {
			if prev, ok := merged[len(merged)-1].(string); ok {
				merged[len(merged)-1] = prev + s
				continue
			}
		}
		merged = append(merged, x)
	}
	if len(merged) == 1 {
		if s, ok := merged[0].(string); ok {
			return s
		}
	}
	return map[string]any{"Fn::Join": []any{"", merged}}
}

// walk calls f on every value of v, depth first.
func walk(v any, f func(any)) {
	f(v)
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			walk(e, f)
		}
	case []any:
		for _, e := range x {
			walk(e, f)
		}
	}
}

// deepCopy copies a JSON-shaped value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// equal compares JSON-shaped values, numbers by value whatever their Go
// type (json.Number, float64, int, int64).
func equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !equal(e, f) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case string, bool, nil:
		return a == b
	}
	na, errA := number(a)
	nb, errB := number(b)
	if errA == nil && errB == nil {
		return na == nb
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		return x.Float64()
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	}
	return 0, fmt.Errorf("not a number")
}

// text is s with each placeholder shown as its function's JSON, for
// reports (a container whose name is a Ref).
func (p *placeholders) text(s string) string {
	if !strings.Contains(s, p.prefix+"-") {
		return s
	}
	for ph, fn := range p.strs {
		if strings.Contains(s, ph) {
			b, _ := json.Marshal(fn)
			s = strings.ReplaceAll(s, ph, string(b))
		}
	}
	return s
}

// reasons is rs with their placeholders shown as functions.
func (p *placeholders) reasons(rs []patchReason) []patchReason {
	for i := range rs {
		rs[i].Container, rs[i].Detail = p.text(rs[i].Container), p.text(rs[i].Detail)
	}
	return rs
}
