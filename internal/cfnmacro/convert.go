package cfnmacro

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// CloudFormation names the properties of AWS::ECS::TaskDefinition after
// the ECS API's members, PascalCase, so a property's name is the SDK's Go
// field name, except for these (Go struct type, Go field) pairs.
var cfnNames = map[[2]string]string{
	{"Volume", "EfsVolumeConfiguration"}:                  "EFSVolumeConfiguration",
	{"Volume", "FsxWindowsFileServerVolumeConfiguration"}: "FSxWindowsFileServerVolumeConfiguration",
	{"EFSVolumeConfiguration", "FileSystemId"}:            "FilesystemId",
	{"EFSAuthorizationConfig", "Iam"}:                     "IAM",
	{"ProxyConfiguration", "Properties"}:                  "ProxyConfigurationProperties",
}

// cfnName is the CloudFormation property name of field f of struct type t.
func cfnName(t reflect.Type, f reflect.StructField) string {
	if n, ok := cfnNames[[2]string{t.Name(), f.Name}]; ok {
		return n
	}
	return f.Name
}

// fieldsOf maps the CloudFormation property names of struct type t to its
// field indexes (exported fields only).
func fieldsOf(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.IsExported() {
			m[cfnName(t, f)] = i
		}
	}
	return m
}

// decoder fills SDK values from CloudFormation properties. An intrinsic
// function where a string or a number is expected becomes a placeholder;
// anywhere else the value cannot be read, and decoding fails.
type decoder struct {
	ph *placeholders
}

// unreadable is a property the macro cannot read: an intrinsic function
// where a list, structure or boolean is expected.
type unreadable struct{ path, fn string }

func (u *unreadable) Error() string {
	return fmt.Sprintf("%s is an intrinsic function (%s) where a literal is needed to instrument it", u.path, u.fn)
}

func (d *decoder) value(dst reflect.Value, v any, path string) error {
	if fn, ok := intrinsic(v); ok {
		switch k := baseKind(dst.Type()); {
		case k == reflect.String:
			return d.value(dst, d.ph.str(v), path)
		case isInt(k):
			return d.value(dst, d.ph.num(v), path)
		default:
			return &unreadable{path: path, fn: fn}
		}
	}
	switch dst.Kind() {
	case reflect.Pointer:
		e := reflect.New(dst.Type().Elem())
		if err := d.value(e.Elem(), v, path); err != nil {
			return err
		}
		dst.Set(e)
		return nil
	case reflect.String:
		s, err := scalarString(v, path)
		if err != nil {
			return err
		}
		dst.SetString(s)
		return nil
	case reflect.Bool:
		switch b := v.(type) {
		case bool:
			dst.SetBool(b)
			return nil
		case string:
			switch strings.ToLower(b) {
			case "true":
				dst.SetBool(true)
				return nil
			case "false":
				dst.SetBool(false)
				return nil
			}
		}
		return fmt.Errorf("%s: want a boolean, got %v", path, v)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := scalarInt(v, path)
		if err != nil {
			return err
		}
		if dst.OverflowInt(n) {
			return fmt.Errorf("%s: %d is out of range", path, n)
		}
		dst.SetInt(n)
		return nil
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want a list, got %T", path, v)
		}
		s := reflect.MakeSlice(dst.Type(), len(list), len(list))
		for i, x := range list {
			if err := d.value(s.Index(i), x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		dst.Set(s)
		return nil
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok || dst.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("%s: want a map, got %T", path, v)
		}
		out := reflect.MakeMapWithSize(dst.Type(), len(m))
		for k, x := range m {
			e := reflect.New(dst.Type().Elem()).Elem()
			if err := d.value(e, x, path+"."+k); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), e)
		}
		dst.Set(out)
		return nil
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %T", path, v)
		}
		fields := fieldsOf(dst.Type())
		for _, k := range sortedKeys(m) {
			i, ok := fields[k]
			if !ok {
				return fmt.Errorf("%s: unknown property %s", path, k)
			}
			if err := d.value(dst.Field(i), m[k], path+"."+k); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%s: cannot hold %T", path, v)
}

func baseKind(t reflect.Type) reflect.Kind {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind()
}

func isInt(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return true
	}
	return false
}

// scalarString reads a string property; CloudFormation takes a number or a
// boolean for a string too (Cpu: 256).
func scalarString(v any, path string) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		return x.String(), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	}
	return "", fmt.Errorf("%s: want a string, got %T", path, v)
}

// scalarInt reads an integer property, a number or a string of digits.
func scalarInt(v any, path string) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		return scalarInt(x.String(), path)
	case float64:
		if x != math.Trunc(x) {
			return 0, fmt.Errorf("%s: want an integer, got %v", path, x)
		}
		return int64(x), nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("%s: %d is out of range", path, x)
		}
		return int64(x), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: want an integer, got %q", path, x)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: want an integer, got %T", path, v)
}

// encode is the CloudFormation form of an SDK value: properties named as
// CloudFormation names them, unset (nil, zero) members left out, numbers as
// int64. ok is false for a value to leave out.
func encode(v reflect.Value) (any, bool) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, false
		}
		return encode(v.Elem())
	case reflect.String:
		if v.String() == "" {
			return nil, false
		}
		return v.String(), true
	case reflect.Bool:
		// Only pointers reach here for set values; a plain false is unset.
		return v.Bool(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), true
	case reflect.Slice:
		if v.IsNil() {
			return nil, false
		}
		out := make([]any, 0, v.Len())
		for i := 0; i < v.Len(); i++ {
			x, ok := encode(v.Index(i))
			if !ok {
				x = nil
			}
			out = append(out, x)
		}
		return out, true
	case reflect.Map:
		if v.IsNil() {
			return nil, false
		}
		out := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			if x, ok := encode(it.Value()); ok {
				out[it.Key().String()] = x
			} else {
				out[it.Key().String()] = ""
			}
		}
		return out, true
	case reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			// A plain (non-pointer) number or boolean at its zero value is unset.
			if k := fv.Kind(); (k == reflect.Bool || isInt(k)) && fv.IsZero() {
				continue
			}
			if x, ok := encode(fv); ok {
				out[cfnName(t, f)] = x
			}
		}
		return out, true
	}
	return nil, false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
