package patch

import (
	"reflect"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// deepCopy returns a copy of v that shares no pointer, slice or map with it.
// It walks the value by reflection so that SDK members added later are
// copied too. Unexported fields (the SDK's serde markers) are empty structs
// and are copied by value.
func deepCopy[T any](v T) T {
	src := reflect.ValueOf(&v).Elem()
	dst := reflect.New(src.Type()).Elem()
	copyValue(dst, src)
	return dst.Interface().(T)
}

func copyValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		copyValue(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			copyValue(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		iter := src.MapRange()
		for iter.Next() {
			val := reflect.New(src.Type().Elem()).Elem()
			copyValue(val, iter.Value())
			m.SetMapIndex(iter.Key(), val)
		}
		dst.Set(m)
	case reflect.Struct:
		dst.Set(src) // unexported markers; exported fields are replaced below
		for i := 0; i < src.NumField(); i++ {
			if !src.Type().Field(i).IsExported() {
				continue
			}
			f := dst.Field(i)
			f.SetZero()
			copyValue(f, src.Field(i))
		}
	case reflect.Interface:
		if src.IsNil() {
			return
		}
		// Document members (none in task definitions today) are copied by
		// reference: they are immutable values in the SDK.
		dst.Set(src)
	default:
		dst.Set(src)
	}
}

// registerInput copies every member of RegisterTaskDefinitionInput from the
// task definition (deep), by name, except Tags. Read-only members of the
// task definition have no counterpart and are dropped by construction.
func registerInput(td *types.TaskDefinition) *ecs.RegisterTaskDefinitionInput {
	in := &ecs.RegisterTaskDefinitionInput{}
	dst := reflect.ValueOf(in).Elem()
	src := reflect.ValueOf(td).Elem()
	for i := 0; i < dst.NumField(); i++ {
		f := dst.Type().Field(i)
		if !f.IsExported() || f.Name == "Tags" {
			continue
		}
		sf := src.FieldByName(f.Name)
		if !sf.IsValid() || sf.Type() != f.Type {
			// TestFieldFidelity fails on this; nothing to copy from.
			continue
		}
		copyValue(dst.Field(i), sf)
	}
	return in
}

// taskDefinitionOf is the inverse of registerInput (tags aside): the task
// definition whose register input is in.
func taskDefinitionOf(in *ecs.RegisterTaskDefinitionInput) *types.TaskDefinition {
	td := &types.TaskDefinition{}
	dst := reflect.ValueOf(td).Elem()
	src := reflect.ValueOf(in).Elem()
	for i := 0; i < src.NumField(); i++ {
		f := src.Type().Field(i)
		if !f.IsExported() || f.Name == "Tags" {
			continue
		}
		df := dst.FieldByName(f.Name)
		if !df.IsValid() || df.Type() != f.Type {
			continue
		}
		copyValue(df, src.Field(i))
	}
	return td
}

// RegisterInput returns the input that registers td's content again as
// is: every registrable member, deep copied, and the tags minus the
// reserved aws: ones. render uses it to show what a patch changed.
func RegisterInput(td *types.TaskDefinition, tags []types.Tag) *ecs.RegisterTaskDefinitionInput {
	in := registerInput(td)
	for _, t := range tags {
		if !isReservedTag(aws.ToString(t.Key)) {
			in.Tags = append(in.Tags, deepCopy(t))
		}
	}
	return in
}
