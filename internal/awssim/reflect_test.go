package awssim

import (
	"reflect"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// allTypes are the ECS types whose unexported marker fields cmp must ignore.
var allTypes = func() []any {
	var out []any
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] || t.PkgPath() == "time" {
			return
		}
		seen[t] = true
		out = append(out, reflect.New(t).Elem().Interface())
		for i := 0; i < t.NumField(); i++ {
			walk(t.Field(i).Type)
		}
	}
	for _, v := range []any{ecs.RegisterTaskDefinitionInput{}, types.TaskDefinition{}, types.Service{}, types.Cluster{}, types.Failure{}} {
		walk(reflect.TypeOf(v))
	}
	return out
}()

// copyFieldsByName sets each field of *dst from the field of *src with the
// same name and type.
func copyFieldsByName(dst, src any) {
	d := reflect.ValueOf(dst).Elem()
	s := reflect.ValueOf(src).Elem()
	for i := 0; i < d.NumField(); i++ {
		f := d.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		sf := s.FieldByName(f.Name)
		if sf.IsValid() && sf.Type() == f.Type {
			d.Field(i).Set(sf)
		}
	}
}

func membersMissingFromTaskDefinition() []string {
	var missing []string
	in := reflect.TypeOf(ecs.RegisterTaskDefinitionInput{})
	td := reflect.TypeOf(types.TaskDefinition{})
	for i := 0; i < in.NumField(); i++ {
		f := in.Field(i)
		if !f.IsExported() || f.Name == "Tags" {
			continue
		}
		if g, ok := td.FieldByName(f.Name); !ok || g.Type != f.Type {
			missing = append(missing, f.Name)
		}
	}
	return missing
}
