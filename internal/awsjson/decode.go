package awsjson

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	ecsdocument "github.com/aws/aws-sdk-go-v2/service/ecs/document"
	smithydocument "github.com/aws/smithy-go/document"
)

// documentConstructors build the SDK's document values (smithy document shapes) from
// decoded JSON, by the Go interface type of the field. Among the services used only ECS
// has a document shape (DeploymentLifecycleHook.hookDetails).
var documentConstructors = map[reflect.Type]func(any) any{
	reflect.TypeFor[ecsdocument.Interface](): func(v any) any { return ecsdocument.NewLazyDocument(v) },
}

type decoder struct {
	codec Codec
}

func typeErr(path, want string, got any) error {
	return fmt.Errorf("awsjson: %s: expected %s, got %s", pathOrRoot(path), want, jsonKind(got))
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// value decodes the JSON tree j into v (settable).
func (d *decoder) value(v reflect.Value, j any, path string) error {
	t := v.Type()
	if j == nil {
		v.SetZero()
		return nil
	}
	switch {
	case t == timeType:
		tm, err := parseTime(j, path)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(tm))
		return nil
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		s, ok := j.(string)
		if !ok {
			return typeErr(path, "base64 string", j)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("awsjson: %s: blob: %w", pathOrRoot(path), err)
		}
		v.SetBytes(b)
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		if err := d.value(p.Elem(), j, path); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Interface:
		build, ok := documentConstructors[t]
		if !ok {
			return fmt.Errorf("awsjson: %s: %s: unions are not supported (nor documents of this service)", pathOrRoot(path), t)
		}
		doc, err := toDocument(j, path)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(build(doc)))
	case reflect.String:
		s, ok := j.(string)
		if !ok {
			return typeErr(path, "string", j)
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := j.(bool)
		if !ok {
			return typeErr(path, "boolean", j)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := j.(json.Number)
		if !ok {
			return typeErr(path, "integer", j)
		}
		i, err := strconv.ParseInt(string(n), 10, t.Bits())
		if err != nil {
			return fmt.Errorf("awsjson: %s: %s is not a %d-bit integer", pathOrRoot(path), n, t.Bits())
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := j.(json.Number)
		if !ok {
			return typeErr(path, "integer", j)
		}
		i, err := strconv.ParseUint(string(n), 10, t.Bits())
		if err != nil {
			return fmt.Errorf("awsjson: %s: %s is not an unsigned %d-bit integer", pathOrRoot(path), n, t.Bits())
		}
		v.SetUint(i)
	case reflect.Float32, reflect.Float64:
		f, err := parseFloat(j, t.Bits(), path)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	case reflect.Slice:
		a, ok := j.([]any)
		if !ok {
			return typeErr(path, "array", j)
		}
		s := reflect.MakeSlice(t, len(a), len(a))
		for i, item := range a {
			if err := d.value(s.Index(i), item, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		v.Set(s)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return fmt.Errorf("awsjson: %s: map key type %s is not a string type", pathOrRoot(path), t.Key())
		}
		o, ok := j.(map[string]any)
		if !ok {
			return typeErr(path, "object", j)
		}
		m := reflect.MakeMapWithSize(t, len(o))
		for k, item := range o {
			ev := reflect.New(t.Elem()).Elem()
			if err := d.value(ev, item, path+"["+strconv.Quote(k)+"]"); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
		}
		v.Set(m)
	case reflect.Struct:
		o, ok := j.(map[string]any)
		if !ok {
			return typeErr(path, "object", j)
		}
		si, err := d.codec.structOf(t)
		if err != nil {
			return err
		}
		v.SetZero()
		for name, item := range o {
			i, ok := si.byName[name]
			if !ok {
				if d.codec.Strict {
					shape := si.shape
					if shape == "" {
						shape = t.Name()
					}
					return fmt.Errorf("awsjson: %s: %w of %s", joinPath(path, name), ErrUnknownMember, shape)
				}
				continue
			}
			if err := d.value(v.Field(si.fields[i].index), item, joinPath(path, name)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("awsjson: %s: unsupported type %s", pathOrRoot(path), t)
	}
	return nil
}

func parseFloat(j any, bits int, path string) (float64, error) {
	switch x := j.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), bits)
		if err != nil {
			return 0, fmt.Errorf("awsjson: %s: %s is not a %d-bit float", pathOrRoot(path), x, bits)
		}
		return f, nil
	case string:
		switch x {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
	}
	return 0, typeErr(path, "number", j)
}

// parseTime reads epoch seconds (a number, as AWS sends it, or a string holding one) or
// an ISO 8601 date-time string (as the aws CLI prints it). The result is in UTC and
// truncated to milliseconds, the precision of the SDK and of AWS.
func parseTime(j any, path string) (time.Time, error) {
	var text string
	switch x := j.(type) {
	case json.Number:
		text = string(x)
	case string:
		if tm, err := time.Parse(time.RFC3339Nano, x); err == nil {
			if ms := tm.UnixMilli(); ms >= maxEpochMilli || ms <= -maxEpochMilli {
				return time.Time{}, fmt.Errorf("awsjson: %s: timestamp %s is out of range", pathOrRoot(path), x)
			}
			return time.UnixMilli(tm.UnixMilli()).UTC(), nil
		}
		if _, err := strconv.ParseFloat(x, 64); err != nil {
			return time.Time{}, fmt.Errorf("awsjson: %s: %q is neither epoch seconds nor an ISO 8601 date-time", pathOrRoot(path), x)
		}
		text = x
	default:
		return time.Time{}, typeErr(path, "timestamp", j)
	}
	ms, err := epochMillis(text)
	if err != nil {
		return time.Time{}, fmt.Errorf("awsjson: %s: %w", pathOrRoot(path), err)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// epochMillis converts decimal epoch seconds to milliseconds, exactly, truncating
// digits beyond the millisecond.
func epochMillis(text string) (int64, error) {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("timestamp %q is not a number", text)
	}
	if math.Abs(f) >= float64(maxEpochMilli)/1000 {
		return 0, fmt.Errorf("timestamp %s is out of range", text)
	}
	if strings.ContainsAny(text, "eE") { // normalise to plain decimal digits
		text = strconv.FormatFloat(f, 'f', -1, 64)
	}
	neg := strings.HasPrefix(text, "-")
	text = strings.TrimPrefix(text, "-")
	intPart, frac, _ := strings.Cut(text, ".")
	frac = (frac + "000")[:3]
	sec, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q: %w", text, err)
	}
	milli, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q: %w", text, err)
	}
	ms := sec*1000 + milli
	if neg {
		ms = -ms
	}
	return ms, nil
}

// toDocument converts a decoded JSON tree into the values smithy documents hold, with
// numbers kept as their literal text. An empty member name is refused: the SDK's
// document encoder cannot write one back, so accepting it would lose it later.
func toDocument(j any, path string) (any, error) {
	var err error
	switch x := j.(type) {
	case json.Number:
		return smithydocument.Number(x), nil
	case []any:
		for i := range x {
			if x[i], err = toDocument(x[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k, v := range x {
			if k == "" {
				return nil, fmt.Errorf("awsjson: %s: document member with an empty name (the AWS SDK cannot send it)", pathOrRoot(path))
			}
			if x[k], err = toDocument(v, path+"."+k); err != nil {
				return nil, err
			}
		}
	}
	return j, nil
}
