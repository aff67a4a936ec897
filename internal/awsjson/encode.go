package awsjson

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	smithydocument "github.com/aws/smithy-go/document"
	"github.com/aws/smithy-go/middleware"
)

var (
	timeType      = reflect.TypeFor[time.Time]()
	bytesType     = reflect.TypeFor[[]byte]()
	errorType     = reflect.TypeFor[error]()
	metadataType  = reflect.TypeFor[middleware.Metadata]()
	docMarshaler  = reflect.TypeFor[smithydocument.Marshaler]()
	maxEpochMilli = int64(1e15) // about year 33658; beyond it a timestamp is garbage
)

type encoder struct {
	codec Codec
	buf   []byte
}

// omit reports whether a struct member is left out, as the SDK serializers do: nil
// pointers, slices, maps and interfaces; empty non-pointer strings (the SDK's enums, which
// it leaves out even when the model requires them: its validator refuses them instead);
// and zero non-pointer numbers and booleans unless the model requires the member, for
// the SDK writes a required one whatever its value (Ulimit.softLimit 0 is sent as 0).
func omit(v reflect.Value, required bool) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return v.IsNil()
	case reflect.Struct:
		return v.Type() == timeType && v.Interface().(time.Time).IsZero()
	case reflect.String:
		return v.Len() == 0
	default:
		return !required && v.IsZero()
	}
}

// value encodes v; path names it in errors.
func (e *encoder) value(v reflect.Value, path string) error {
	t := v.Type()
	switch {
	case t == timeType:
		e.buf = appendEpoch(e.buf, v.Interface().(time.Time))
		return nil
	case t == bytesType || (t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8):
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		e.buf = append(e.buf, '"')
		e.buf = base64.StdEncoding.AppendEncode(e.buf, v.Bytes())
		e.buf = append(e.buf, '"')
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		return e.value(v.Elem(), path)
	case reflect.Interface:
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		if t.Implements(docMarshaler) || v.Elem().Type().Implements(docMarshaler) {
			return e.document(v.Interface().(smithydocument.Marshaler), path)
		}
		return fmt.Errorf("awsjson: %s: %s (%T): unions are not supported", pathOrRoot(path), t, v.Interface())
	case reflect.String:
		e.buf = appendString(e.buf, v.String())
	case reflect.Bool:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = strconv.AppendInt(e.buf, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		e.buf = strconv.AppendUint(e.buf, v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		e.buf = appendFloat(e.buf, v.Float(), t.Bits())
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		e.buf = append(e.buf, '[')
		for i := range v.Len() {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.value(v.Index(i), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return fmt.Errorf("awsjson: %s: map key type %s is not a string type", pathOrRoot(path), t.Key())
		}
		if v.IsNil() {
			e.buf = append(e.buf, "null"...)
			return nil
		}
		keys := v.MapKeys()
		sortKeys(keys)
		e.buf = append(e.buf, '{')
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = appendString(e.buf, k.String())
			e.buf = append(e.buf, ':')
			if err := e.value(v.MapIndex(k), path+"["+strconv.Quote(k.String())+"]"); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, '}')
	case reflect.Struct:
		return e.structure(v, path)
	default:
		return fmt.Errorf("awsjson: %s: unsupported type %s", pathOrRoot(path), t)
	}
	return nil
}

func (e *encoder) structure(v reflect.Value, path string) error {
	si, err := e.codec.structOf(v.Type())
	if err != nil {
		return err
	}
	e.buf = append(e.buf, '{')
	first := true
	for _, f := range si.fields {
		fv := v.Field(f.index)
		if omit(fv, f.required) {
			continue
		}
		if !first {
			e.buf = append(e.buf, ',')
		}
		first = false
		e.buf = appendString(e.buf, f.name)
		e.buf = append(e.buf, ':')
		if err := e.value(fv, joinPath(path, f.name)); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

// document writes a smithy document (ECS's hookDetails) as the JSON it holds.
func (e *encoder) document(d smithydocument.Marshaler, path string) error {
	raw, err := d.MarshalSmithyDocument()
	if err != nil {
		return fmt.Errorf("awsjson: %s: document: %w", pathOrRoot(path), err)
	}
	if !json.Valid(raw) {
		return fmt.Errorf("awsjson: %s: document is not valid JSON", pathOrRoot(path))
	}
	e.buf = append(e.buf, raw...)
	return nil
}

// appendEpoch writes t as epoch seconds with millisecond precision, the SDK's format
// ("1629890408.202"), exact in decimal.
func appendEpoch(b []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	if ms < 0 {
		b = append(b, '-')
		ms = -ms
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		b = append(b, '.')
		b = append(b, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
	}
	return b
}

// appendFloat writes f as the SDK does: NaN and infinities as strings.
func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Unlike encoding/json it leaves <, > and &
// alone (the bodies are not HTML); invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

func sortKeys(keys []reflect.Value) {
	slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func pathOrRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

// syncMap is a typed sync.Map.
type syncMap[K comparable, V any] struct{ m sync.Map }

func (s *syncMap[K, V]) Load(k K) (V, bool) {
	v, ok := s.m.Load(k)
	if !ok {
		var zero V
		return zero, false
	}
	return v.(V), true
}

func (s *syncMap[K, V]) LoadOrStore(k K, v V) (V, bool) {
	got, loaded := s.m.LoadOrStore(k, v)
	return got.(V), loaded
}
