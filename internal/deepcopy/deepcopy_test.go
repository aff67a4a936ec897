package deepcopy

import (
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestOfSharesNothing(t *testing.T) {
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	orig := types.TaskDefinition{
		Family:       aws.String("web"),
		Revision:     3,
		RegisteredAt: &when,
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:         aws.String("app"),
			Command:      []string{"serve"},
			DockerLabels: map[string]string{"a": "1"},
			Environment:  []types.KeyValuePair{{Name: aws.String("K"), Value: aws.String("V")}},
		}},
	}
	cp := Of(orig)
	if !reflect.DeepEqual(cp, orig) {
		t.Fatalf("copy differs:\n%+v\n%+v", cp, orig)
	}
	*cp.Family = "api"
	*cp.RegisteredAt = when.Add(time.Hour)
	c := &cp.ContainerDefinitions[0]
	*c.Name = "other"
	c.Command[0] = "x"
	c.DockerLabels["a"] = "2"
	*c.Environment[0].Value = "W"
	o := orig.ContainerDefinitions[0]
	if *orig.Family != "web" || !orig.RegisteredAt.Equal(when) || *o.Name != "app" || o.Command[0] != "serve" ||
		o.DockerLabels["a"] != "1" || *o.Environment[0].Value != "V" {
		t.Errorf("editing the copy changed the original: %+v", orig)
	}
}

func TestOfNilsAndInterfaces(t *testing.T) {
	type box struct {
		Any   any
		Nil   *int
		Slice []int
		Map   map[string]int
	}
	n := 1
	orig := box{Any: &n}
	cp := Of(orig)
	if cp.Nil != nil || cp.Slice != nil || cp.Map != nil {
		t.Errorf("nil members became non-nil: %+v", cp)
	}
	*cp.Any.(*int) = 2
	if n != 1 {
		t.Error("the value behind an interface is shared")
	}
}
