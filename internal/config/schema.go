package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	configType    = reflect.TypeFor[Config]()
	unmarshalerTy = reflect.TypeFor[json.Unmarshaler]()
)

// FieldError is one problem of the file, at the key path Path
// ("profiles.lacework.tokenSecretArn", "policies[1].profile").
type FieldError struct {
	Path    string
	Message string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return "(top level): " + e.Message
	}
	return e.Path + ": " + e.Message
}

func fieldErr(errs *[]error, path, format string, args ...any) {
	*errs = append(*errs, &FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinKey appends a map key or struct field to a path; keys that would read
// ambiguously are quoted.
func joinKey(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func joinIndex(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// jsonFields lists the keys of a struct type as encoding/json sees them.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

// checkValue walks the decoded document v along the type t and reports
// unknown keys and values the decoder would refuse, with their paths. Values
// are never echoed: they may be secrets. It returns v without what it
// reported (unknown keys, values of the wrong type), with the scalars given
// for strings turned into strings as the YAML decoder does; ok is false when
// v itself is refused.
func checkValue(errs *[]error, path string, v any, t reflect.Type) (clean any, ok bool) {
	if v == nil {
		return nil, true // null leaves the default
	}
	if reflect.PointerTo(t).Implements(unmarshalerTy) {
		b, err := json.Marshal(v)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b)
		}
		if err != nil {
			fieldErr(errs, path, "%s", err.Error())
			return nil, false
		}
		return v, true
	}
	bad := func(format string, args ...any) (any, bool) {
		fieldErr(errs, path, format, args...)
		return nil, false
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkValue(errs, path, v, t.Elem())
	case reflect.Interface:
		return v, true
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("must be a mapping, got %s", kindOf(v))
		}
		fields := jsonFields(t)
		out := make(map[string]any, len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			ft, known := fields[k]
			if !known {
				fieldErr(errs, joinKey(path, k), "unknown key%s", suggest(k, fields))
				continue
			}
			if c, ok := checkValue(errs, joinKey(path, k), m[k], ft); ok {
				out[k] = c
			}
		}
		return out, true
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("must be a mapping, got %s", kindOf(v))
		}
		out := make(map[string]any, len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if c, ok := checkValue(errs, joinKey(path, k), m[k], t.Elem()); ok {
				out[k] = c
			}
		}
		return out, true
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			return bad("must be a list, got %s", kindOf(v))
		}
		out := make([]any, len(a))
		for i, e := range a {
			// A refused element becomes null, so that the indices of the
			// others stay those of the file.
			out[i], _ = checkValue(errs, joinIndex(path, i), e, t.Elem())
		}
		return out, true
	case reflect.String:
		switch v := v.(type) {
		case string:
			return v, true
		case json.Number:
			return v.String(), true
		case bool:
			return strconv.FormatBool(v), true
		}
		return bad("must be a string, got %s", kindOf(v))
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return bad("must be true or false, got %s", kindOf(v))
		}
		return v, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return bad("must be an integer, got %s", kindOf(v))
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return bad("integer out of range")
			}
			return bad("must be an integer")
		}
		return v, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			return bad("must be a non-negative integer, got %s", kindOf(v))
		}
		if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err != nil {
			return bad("must be a non-negative integer in range")
		}
		return v, true
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return bad("must be a number, got %s", kindOf(v))
		}
		if _, err := strconv.ParseFloat(n.String(), t.Bits()); err != nil {
			return bad("number out of range")
		}
		return v, true
	}
	return bad("unsupported type %s", t)
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// suggest names the known key closest to an unknown one, if one is close.
func suggest(key string, fields map[string]reflect.Type) string {
	limit := 2
	if len(key) >= 6 {
		limit = 3
	}
	best, bestD := "", limit+1
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if strings.EqualFold(k, key) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
		if d := editDistance(strings.ToLower(k), strings.ToLower(key)); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
