package controller

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestOwnerOf(t *testing.T) {
	tag := func(kv ...string) []types.Tag {
		var out []types.Tag
		for i := 0; i < len(kv); i += 2 {
			out = append(out, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		tags     []types.Tag
		ownerTag string
		want     string
	}{
		{"nothing", nil, "ManagedBy", OwnerNone},
		{"a CloudFormation (or CDK) stack's resource", tag("aws:cloudformation:stack-name", "web-prod", "aws:cloudformation:logical-id", "TaskDef"), "", OwnerCloudFormation},
		{"Copilot, which deploys through CloudFormation", tag("aws:cloudformation:stack-name", "app-env-web", "copilot-application", "app", "copilot-service", "web"), "", OwnerCopilot},
		{"Terraform's default_tags", tag("ManagedBy", "Terraform"), "ManagedBy", OwnerTerraform},
		{"Pulumi", tag("ManagedBy", " pulumi "), "ManagedBy", OwnerPulumi},
		{"another tool: bounded", tag("ManagedBy", "crossplane"), "ManagedBy", OwnerOther},
		{"the owner tag not configured", tag("ManagedBy", "Terraform"), "", OwnerNone},
		{"the owner tag empty", tag("ManagedBy", ""), "ManagedBy", OwnerNone},
		{"CloudFormation's tag wins over the owner tag", tag("ManagedBy", "terraform", "aws:cloudformation:stack-name", "s"), "ManagedBy", OwnerCloudFormation},
	} {
		if got := ownerOf(tc.tags, tc.ownerTag); got != tc.want {
			t.Errorf("%s: ownerOf = %q, want %q", tc.name, got, tc.want)
		}
		if got := ownerOf(tc.tags, tc.ownerTag); !slices.Contains(Owners, got) {
			t.Errorf("%s: %q is not in Owners", tc.name, got)
		}
	}
}

// TestOwnerAndSkippedReachCoverageAndPlan: who manages a family is read
// from its newest source revision's tags (no other call) and shown in the
// coverage and the plan, with the services left alone and why.
func TestOwnerAndSkippedReachCoverageAndPlan(t *testing.T) {
	w := newWorld(t)
	src := w.register(t, "web", "nginx:1.27", map[string]string{"ecs-sidecar/inject": "true", "ManagedBy": "terraform"})
	w.createService(t, "web", src, types.DeploymentControllerTypeEcs)
	w.createService(t, "web-bg", src, types.DeploymentControllerTypeCodeDeploy)
	c := w.controller(t, func(o *Options) { o.OwnerTag, o.DryRun = "ManagedBy", true })
	plans, err := c.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var web *FamilyPlan
	for i := range plans {
		if plans[i].Family == "web" {
			web = &plans[i]
		}
	}
	if web == nil {
		t.Fatalf("no plan for web: %+v", plans)
	}
	if web.Owner != OwnerTerraform {
		t.Errorf("plan owner %q, want %q", web.Owner, OwnerTerraform)
	}
	if want := []string{testCluster + "/web-bg: " + SkipDeploymentController}; !slices.Equal(web.Skipped, want) {
		t.Errorf("plan skipped %q, want %q", web.Skipped, want)
	}
	for _, s := range coverage(c) {
		if s.Owner != OwnerTerraform {
			t.Errorf("%s: coverage owner %q, want %q", s.Service, s.Owner, OwnerTerraform)
		}
	}
}
