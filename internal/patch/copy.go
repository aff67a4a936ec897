package patch

import (
	"reflect"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/deepcopy"
)

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
		deepcopy.Into(dst.Field(i), sf)
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
		deepcopy.Into(df, src.Field(i))
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
			in.Tags = append(in.Tags, deepcopy.Of(t))
		}
	}
	return in
}
