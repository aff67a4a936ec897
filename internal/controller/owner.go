package controller

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// Owners: who manages a family's task definitions, read from their tags.
// A closed set, so that a metric label stays bounded: a value of
// Options.OwnerTag outside it is OwnerOther.
const (
	OwnerCloudFormation = "cloudformation" // aws:cloudformation:stack-name (CloudFormation, CDK, SAM)
	OwnerCopilot        = "copilot"        // copilot-application / copilot-service
	OwnerTerraform      = "terraform"      // Options.OwnerTag = terraform (default_tags, say)
	OwnerPulumi         = "pulumi"
	OwnerOther          = "other" // Options.OwnerTag with another value
	OwnerNone           = "none"  // nothing says
)

// Owners lists every owner value.
var Owners = []string{OwnerCloudFormation, OwnerCopilot, OwnerTerraform, OwnerPulumi, OwnerOther, OwnerNone}

// ownerOf tells who manages a task definition from its tags: CloudFormation
// tags every resource of a stack with aws:cloudformation:stack-name
// (stacks made by CDK and SAM too), Copilot's stacks add copilot-* tags,
// and for anything else (Terraform's default_tags, a team convention) the
// tag key ownerTag, when set, names the tool.
func ownerOf(tags []types.Tag, ownerTag string) string {
	copilot, cfn := false, false
	for _, t := range tags {
		switch k := aws.ToString(t.Key); k {
		case "copilot-application", "copilot-service":
			copilot = true
		case "aws:cloudformation:stack-name":
			cfn = true
		}
	}
	switch {
	case copilot: // Copilot deploys through CloudFormation: the more telling of the two
		return OwnerCopilot
	case cfn:
		return OwnerCloudFormation
	}
	if ownerTag != "" {
		if v, ok := patch.TagValue(tags, ownerTag); ok && v != "" {
			switch v = strings.ToLower(strings.TrimSpace(v)); v {
			case OwnerTerraform, OwnerPulumi, OwnerCloudFormation, OwnerCopilot:
				return v
			}
			return OwnerOther
		}
	}
	return OwnerNone
}
