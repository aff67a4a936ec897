package awssim

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	rgtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
)

// GetResources over HTTP with the SDK's client: the filters' AND and OR,
// untagged revisions never listed, pages, the empty final token.
func TestGetResourcesListsTaggedTaskDefinitions(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	reg := func(family string, tags ...string) {
		t.Helper()
		in := fargateTD(family)
		for i := 0; i < len(tags); i += 2 {
			in.Tags = append(in.Tags, types.Tag{Key: aws.String(tags[i]), Value: aws.String(tags[i+1])})
		}
		must[*ecs.RegisterTaskDefinitionOutput](t)(e.ecs.RegisterTaskDefinition(ctx, in))
	}
	reg("api", "ecs-sidecar/inject", "true")
	reg("api") // untagged: never listed
	reg("batch", "ecs-sidecar/inject", "false", "team", "data")
	reg("web", "ecs-sidecar/inject", "true", "team", "web")
	reg("web", "team", "web")
	tg := resourcegroupstaggingapi.NewFromConfig(awsConfig(), func(o *resourcegroupstaggingapi.Options) { o.BaseEndpoint = aws.String(e.url) })
	list := func(in *resourcegroupstaggingapi.GetResourcesInput) []string {
		t.Helper()
		var arns []string
		pages := 0
		for {
			out, err := tg.GetResources(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, m := range out.ResourceTagMappingList {
				arns = append(arns, aws.ToString(m.ResourceARN)[len("arn:aws:ecs:us-east-1:123456789012:task-definition/"):])
			}
			if out.PaginationToken == nil {
				t.Fatal("no PaginationToken: the API returns an empty one at the end")
			}
			if *out.PaginationToken == "" {
				break
			}
			in.PaginationToken = out.PaginationToken
			if pages > 10 {
				t.Fatal("no end")
			}
		}
		return arns
	}
	td := []string{"ecs:task-definition"}
	for _, tc := range []struct {
		name string
		in   *resourcegroupstaggingapi.GetResourcesInput
		want []string
	}{
		{"a key, any value", &resourcegroupstaggingapi.GetResourcesInput{ResourceTypeFilters: td,
			TagFilters: []rgtypes.TagFilter{{Key: aws.String("ecs-sidecar/inject")}}}, []string{"api:1", "batch:1", "web:1"}},
		{"a key, values ORed", &resourcegroupstaggingapi.GetResourcesInput{ResourceTypeFilters: td,
			TagFilters: []rgtypes.TagFilter{{Key: aws.String("ecs-sidecar/inject"), Values: []string{"true", "yes"}}}}, []string{"api:1", "web:1"}},
		{"two keys ANDed", &resourcegroupstaggingapi.GetResourcesInput{ResourceTypeFilters: td,
			TagFilters: []rgtypes.TagFilter{{Key: aws.String("ecs-sidecar/inject")}, {Key: aws.String("team"), Values: []string{"web"}}}}, []string{"web:1"}},
		{"every tagged one, one a page", &resourcegroupstaggingapi.GetResourcesInput{ResourcesPerPage: aws.Int32(1)}, []string{"api:1", "batch:1", "web:1", "web:2"}},
		{"another resource type", &resourcegroupstaggingapi.GetResourcesInput{ResourceTypeFilters: []string{"ec2:instance"}}, nil},
	} {
		got := list(tc.in)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
	if _, err := tg.GetResources(ctx, &resourcegroupstaggingapi.GetResourcesInput{ResourcesPerPage: aws.Int32(101)}); err == nil {
		t.Error("ResourcesPerPage 101 accepted; the API's maximum is 100")
	}
}
