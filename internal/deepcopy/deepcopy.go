// Package deepcopy copies the AWS SDK's data types deeply, by reflection, so
// that members the SDK adds later are copied too. The simulator (awssim)
// keeps its state apart from its Go callers with it, and the patch engine
// keeps its input apart from its output.
package deepcopy

import (
	"reflect"
	"sync"
)

// Of returns a copy of v that shares no pointers, slices or maps with it.
// It is written for the SDK's data types: structs are copied whole (so
// time.Time and the SDK's unexported marker fields come along), then their
// exported reference fields are copied deeply. The value an interface holds
// is copied the same way.
func Of[T any](v T) T {
	src := reflect.ValueOf(&v).Elem()
	dst := reflect.New(src.Type()).Elem()
	Into(dst, src)
	return dst.Interface().(T)
}

// Into sets dst, which must be settable and of src's type, to a deep copy
// of src, as Of does.
func Into(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		Into(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			Into(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		it := src.MapRange()
		for it.Next() {
			val := reflect.New(src.Type().Elem()).Elem()
			Into(val, it.Value())
			m.SetMapIndex(it.Key(), val)
		}
		dst.Set(m)
	case reflect.Struct:
		dst.Set(src)
		for _, i := range refFields(src.Type()) {
			Into(dst.Field(i), src.Field(i))
		}
	case reflect.Interface:
		if src.IsNil() {
			return
		}
		inner := reflect.New(src.Elem().Type()).Elem()
		Into(inner, src.Elem())
		dst.Set(inner)
	default:
		dst.Set(src)
	}
}

// refFieldsCache holds, per struct type, the indices of its exported fields
// that can hold references (the only ones that need more than the struct
// copy): reflect's Field lookups are the cost of copying otherwise.
var refFieldsCache sync.Map // reflect.Type -> []int

func refFields(t reflect.Type) []int {
	if v, ok := refFieldsCache.Load(t); ok {
		return v.([]int)
	}
	var idx []int
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		switch f.Type.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.Struct:
			idx = append(idx, i)
		}
	}
	refFieldsCache.Store(t, idx)
	return idx
}
