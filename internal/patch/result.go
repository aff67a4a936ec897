package patch

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// DefaultTagPrefix prefixes every tag and docker label the reconciler reads or writes.
const DefaultTagPrefix = "ecs-sidecar/"

// Keys, after the tag prefix, of the tags and docker labels the reconciler uses.
const (
	KeyInject  = "inject"  // revision tag (family opt-in) and container label (opt-out)
	KeyProfile = "profile" // revision tag: which profile
	KeySource  = "source"  // twin tag and sidecar label: source revision number
	KeySpec    = "spec"    // twin tag and sidecar label: spec hash
	KeyFailed  = "failed"  // twin tag: its rollout failed
	// KeyPatch labels each instrumented container with what the patch
	// changed, so that Source can rebuild the source exactly.
	KeyPatch = "patch"
	// KeyExecutionRole labels the sidecar when the execution role was
	// defaulted from the profile (the source had none).
	KeyExecutionRole = "execution-role"
	// KeyDeployTime tags a revision instrumented before it was registered
	// (the CloudFormation macro, internal/cfnmacro): its value names the
	// tool. It has no source revision, so no source tag: with our sidecar's
	// content it is classified covered (KindManualSidecar), never a twin.
	KeyDeployTime = "deploy-time"
)

// Image is what an application container's image declares (its config
// blob), as read by internal/imageconfig or given on the command line.
type Image struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	User       string   `json:"user,omitempty"`
	// Digest is the image digest the config was read from (part of the spec).
	Digest string `json:"digest,omitempty"`
	// Known is true when the config was read; Entrypoint, Cmd and User are
	// meaningless otherwise.
	Known bool `json:"known,omitempty"`
	// HasShell and HasSudo say whether /bin/sh and sudo exist in the image;
	// nil when unknown. HasShell false means distroless.
	HasShell *bool `json:"hasShell,omitempty"`
	HasSudo  *bool `json:"hasSudo,omitempty"`
	// Pin, when set, is the reference the twin runs instead of the
	// container's image: the image by the digest its config was read from
	// (images.pinDigest), so that a tag moved later cannot give the twin an
	// image whose command it does not wrap. Part of the spec when set.
	Pin string `json:"pin,omitempty"`
	// Source says where the config came from (registry, flags); not hashed.
	Source string `json:"-"`
}

// Options shape a patch beyond the profile.
type Options struct {
	// TagPrefix defaults to DefaultTagPrefix.
	TagPrefix string `json:"tagPrefix,omitempty"`
	// SourceRevision is the source's revision number, written in the twin's
	// source tag; 0 means the task definition's own Revision.
	SourceRevision int32 `json:"sourceRevision,omitempty"`
}

func (o Options) prefix() string {
	if o.TagPrefix == "" {
		return DefaultTagPrefix
	}
	return o.TagPrefix
}

// Code is a fixed reason code: refusals, skipped containers and warnings.
// Codes become metric label values, so the set is closed.
type Code string

// Refusal codes: the task definition is not instrumented.
const (
	CodeWindows            Code = "windows"
	CodeTooManyContainers  Code = "too_many_containers"
	CodeNameCollision      Code = "name_collision"
	CodeUnknownCommand     Code = "unknown_command"
	CodeNoExecutionRole    Code = "no_execution_role"
	CodeReadonlyRootFS     Code = "readonly_root_filesystem"
	CodeNoContainers       Code = "no_containers"
	CodeTooManyTags        Code = "too_many_tags"
	CodeInvalidTag         Code = "invalid_tag"
	CodeTooLarge           Code = "too_large"
	CodeAlreadyTwin        Code = "already_twin"
	CodeAlreadyCovered     Code = "already_covered"
	CodeNonRootDistroless  Code = "nonroot_distroless"
	CodeInvalidProfile     Code = "invalid_profile"
	CodeNoEssential        Code = "no_essential"
	CodeInvalidDependency  Code = "invalid_dependency"
	CodeInvalidVolumesFrom Code = "invalid_volumes_from"
	CodeFargateCapability  Code = "fargate_capability"
	CodeMissingField       Code = "missing_field"
	CodeLaunchType         Code = "launch_type"
	CodeDependencyCycle    Code = "dependency_cycle"
	CodeInvalidName        Code = "invalid_name"
)

// Skip codes: a container left alone, the others instrumented.
const (
	SkipNotEssential  Code = "not_essential"
	SkipNotIncluded   Code = "not_included"
	SkipExcluded      Code = "excluded"
	SkipLabelOptOut   Code = "label_opt_out"
	SkipNonRoot       Code = "non_root"
	SkipEmbeddedAgent Code = "embedded_agent"
)

// Warning codes: instrumented, but worth reporting.
const (
	WarnNoToken              Code = "no_token"
	WarnPlaintextToken       Code = "plaintext_token"
	WarnDefaultExecutionRole Code = "default_execution_role"
	WarnNonRootSudo          Code = "nonroot_sudo_unverified"
	WarnNonRootNoSudo        Code = "nonroot_no_sudo"
	WarnImageUnknown         Code = "image_unknown"
	WarnNoSourceRevision     Code = "no_source_revision"
)

// RefusalCodes lists every refusal code, for pre-creating metric series.
func RefusalCodes() []Code {
	return []Code{
		CodeWindows, CodeTooManyContainers, CodeNameCollision, CodeUnknownCommand,
		CodeNoExecutionRole, CodeReadonlyRootFS, CodeNoContainers, CodeTooManyTags,
		CodeInvalidTag, CodeTooLarge, CodeAlreadyTwin, CodeAlreadyCovered,
		CodeNonRootDistroless, CodeInvalidProfile, CodeNoEssential,
		CodeInvalidDependency, CodeInvalidVolumesFrom, CodeFargateCapability,
		CodeMissingField, CodeLaunchType, CodeDependencyCycle, CodeInvalidName,
	}
}

// Reason is one refusal, skip or warning. Detail is for humans; it never
// holds a secret.
type Reason struct {
	Code      Code   `json:"code"`
	Container string `json:"container,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

func (r Reason) String() string {
	c := r.Container
	if c == "" {
		c = "-"
	}
	return fmt.Sprintf("%s: %s: %s", r.Code, c, r.Detail)
}

// Refusal is the error Instrument returns when it will not produce a
// revision; every reason found is listed. Use errors.As.
type Refusal struct {
	Reasons []Reason
}

func (r *Refusal) Error() string {
	parts := make([]string, len(r.Reasons))
	for i, x := range r.Reasons {
		parts[i] = x.String()
	}
	return "refused: " + strings.Join(parts, "; ")
}

// Has reports whether the refusal carries code c.
func (r *Refusal) Has(c Code) bool {
	for _, x := range r.Reasons {
		if x.Code == c {
			return true
		}
	}
	return false
}

// Result is an instrumented revision ready to register.
type Result struct {
	Input *ecs.RegisterTaskDefinitionInput
	// Spec is the short hash written in the spec tag.
	Spec string
	// Instrumented names the containers that run the agent, in order.
	Instrumented []string
	// Skipped are the containers left alone, with why.
	Skipped []Reason
	// Warnings are reported but did not prevent the patch.
	Warnings []Reason
}
