package awssim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Validation of RegisterTaskDefinition as ECS does it. Sources, per rule:
//   - rules: aws-facts.md sections 1 and 6 (from the ECS developer guide and
//     botocore's ecs model documentation of RegisterTaskDefinition,
//     ContainerDefinition, ContainerDependency and Tag);
//   - codes: ClientException for task definition content (ECS and moto),
//     InvalidParameterException for tags (the model's TagResource errors);
//   - messages: "ECS" where the text is ECS's, "moto" where moto returns the
//     same text for the same mistake, UNVERIFIED where neither was available
//     (tests match those by code, and by message only as our own contract).

var (
	familyPattern        = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)
	containerNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)
	tagPattern           = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

const (
	maxContainers      = 10
	maxTaskDefBytes    = 64 * 1024
	maxTagsPerResource = 50
)

// sizeOfTaskDef is the size ECS counts against the 64 KiB quota: the
// request's JSON. Replaced by the wire codec's size (see http.go) so the
// count is of AWS's member names.
var sizeOfTaskDef = func(in *ecs.RegisterTaskDefinitionInput) int {
	b, _ := json.Marshal(in)
	return len(b)
}

func validateTaskDefinition(in *ecs.RegisterTaskDefinitionInput) *Error {
	fam := aws.ToString(in.Family)
	if fam == "" {
		return errf(codeClient, "Family should not be null or empty.") // UNVERIFIED (same form as moto's Container.* messages)
	}
	if !familyPattern.MatchString(fam) {
		return errf(codeClient, "Family contains invalid characters. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.") // UNVERIFIED
	}
	if len(in.ContainerDefinitions) == 0 {
		return errf(codeClient, "Container list cannot be empty.") // ECS
	}
	if n := len(in.ContainerDefinitions); n > maxContainers {
		return errf(codeClient, "Too many containers: %d. A task definition can have at most %d containers.", n, maxContainers) // UNVERIFIED
	}
	fargate := containsCompat(in.RequiresCompatibilities, types.CompatibilityFargate)
	names := map[string]*types.ContainerDefinition{}
	essential := 0
	for i := range in.ContainerDefinitions {
		c := &in.ContainerDefinitions[i]
		name := aws.ToString(c.Name)
		if name == "" {
			return errf(codeClient, "Container.name should not be null or empty.") // ECS, moto
		}
		if aws.ToString(c.Image) == "" {
			return errf(codeClient, "Container.image should not be null or empty.") // ECS, moto
		}
		if !containerNamePattern.MatchString(name) {
			return errf(codeClient, "Container name '%s' is invalid. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.", name) // UNVERIFIED
		}
		if names[name] != nil {
			return errf(codeClient, "Duplicate container name '%s'. Container names must be unique within a task definition.", name) // UNVERIFIED
		}
		names[name] = c
		if c.Essential == nil || *c.Essential {
			essential++
		}
		if in.Memory == nil && c.Memory == nil && c.MemoryReservation == nil {
			return errf(codeClient, "Invalid setting for container '%s'. At least one of 'memory' or 'memoryReservation' must be specified.", name) // ECS, moto
		}
	}
	if essential == 0 {
		return errf(codeClient, "Task definition must have at least one essential container.") // UNVERIFIED
	}
	for i := range in.ContainerDefinitions {
		c := &in.ContainerDefinitions[i]
		name := aws.ToString(c.Name)
		for _, d := range c.DependsOn {
			target := aws.ToString(d.ContainerName)
			t := names[target]
			if t == nil {
				return errf(codeClient, "Container '%s' depends on container '%s', which is not defined in the task definition.", name, target) // UNVERIFIED
			}
			switch d.Condition {
			case types.ContainerConditionStart, types.ContainerConditionHealthy:
			case types.ContainerConditionComplete, types.ContainerConditionSuccess:
				if t.Essential == nil || *t.Essential {
					return errf(codeClient, "Container '%s' depends on essential container '%s' with condition %s. The %s condition cannot be set on an essential container.", name, target, d.Condition, d.Condition) // UNVERIFIED
				}
			default:
				return errf(codeClient, "Invalid dependency condition '%s' for container '%s'. Valid conditions: START, COMPLETE, SUCCESS, HEALTHY.", d.Condition, name) // UNVERIFIED
			}
			if d.Condition == types.ContainerConditionHealthy && t.HealthCheck == nil {
				return errf(codeClient, "Container '%s' depends on container '%s' with condition HEALTHY, but '%s' has no health check.", name, target, target) // UNVERIFIED
			}
		}
		for _, v := range c.VolumesFrom {
			src := aws.ToString(v.SourceContainer)
			if names[src] == nil {
				return errf(codeClient, "Container '%s' has volumesFrom source container '%s', which is not defined in the task definition.", name, src) // UNVERIFIED
			}
		}
	}
	if fargate {
		if err := validateFargate(in); err != nil {
			return err
		}
	} else {
		if in.Cpu != nil {
			if _, ok := parseCPU(*in.Cpu); !ok {
				return errf(codeClient, "Invalid 'cpu' setting for task.") // UNVERIFIED
			}
		}
		if in.Memory != nil {
			if _, ok := parseMemory(*in.Memory); !ok {
				return errf(codeClient, "Invalid 'memory' setting for task.") // UNVERIFIED
			}
		}
	}
	if n := sizeOfTaskDef(in); n > maxTaskDefBytes {
		return errf(codeClient, "Actual length: '%d'. Max allowed length is '%d' bytes.", n, maxTaskDefBytes) // ECS
	}
	return nil
}

func validateFargate(in *ecs.RegisterTaskDefinitionInput) *Error {
	if in.NetworkMode != types.NetworkModeAwsvpc {
		return errf(codeClient, "Fargate only supports network mode 'awsvpc'.") // ECS
	}
	if in.PidMode != "" && in.PidMode != types.PidModeTask {
		return errf(codeClient, "Tasks using the Fargate launch type do not support pidMode '%s'. The supported value for pidMode is 'task'.", in.PidMode) // moto
	}
	if in.Cpu == nil {
		return errf(codeClient, "Fargate requires that 'cpu' be defined at the task level.") // ECS
	}
	if in.Memory == nil {
		return errf(codeClient, "Fargate requires that 'memory' be defined at the task level.") // ECS
	}
	cpu, ok1 := parseCPU(*in.Cpu)
	mem, ok2 := parseMemory(*in.Memory)
	if !ok1 || !ok2 || !fargatePair(cpu, mem) {
		return errf(codeClient, "No Fargate configuration exists for given values: %s CPU, %s memory. See the Amazon ECS documentation for the valid values.", *in.Cpu, *in.Memory) // ECS (first sentence); UNVERIFIED rest
	}
	for _, c := range in.ContainerDefinitions {
		if c.LinuxParameters == nil || c.LinuxParameters.Capabilities == nil {
			continue
		}
		for _, capName := range c.LinuxParameters.Capabilities.Add {
			if capName != "SYS_PTRACE" {
				return errf(codeClient, "Fargate only supports the SYS_PTRACE kernel capability in linuxParameters.capabilities.add; container '%s' adds '%s'.", aws.ToString(c.Name), capName) // UNVERIFIED
			}
		}
	}
	return nil
}

// parseCPU reads task cpu: CPU units ("1024") or vCPUs ("1 vCPU", "0.5 vcpu").
func parseCPU(s string) (int, bool) {
	s = strings.TrimSpace(strings.ToLower(s))
	if v, ok := strings.CutSuffix(s, "vcpu"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f <= 0 {
			return 0, false
		}
		return int(f * 1024), true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// parseMemory reads task memory: MiB ("2048") or GB ("2 GB", "2GB").
func parseMemory(s string) (int, bool) {
	s = strings.TrimSpace(strings.ToLower(s))
	if v, ok := strings.CutSuffix(s, "gb"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f <= 0 {
			return 0, false
		}
		return int(f * 1024), true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0
}

// fargatePair reports whether (cpu units, memory MiB) is a Fargate task size
// (the table of the ECS developer guide, "Task CPU and memory").
func fargatePair(cpu, mem int) bool {
	type span struct{ lo, hi, step int }
	spans := map[int][]span{
		256:   {{512, 512, 1}, {1024, 1024, 1}, {2048, 2048, 1}},
		512:   {{1024, 4096, 1024}},
		1024:  {{2048, 8192, 1024}},
		2048:  {{4096, 16384, 1024}},
		4096:  {{8192, 30720, 1024}},
		8192:  {{16384, 61440, 4096}},
		16384: {{32768, 122880, 8192}},
	}
	for _, sp := range spans[cpu] {
		if mem >= sp.lo && mem <= sp.hi && (mem-sp.lo)%sp.step == 0 {
			return true
		}
	}
	return false
}

// validateTags checks tags to add to a resource that has `existing` tags
// already, with keys not among the new ones. Rules: botocore's Tag shape
// documentation (key 1-128, value 0-256, the pattern, at most 50 per
// resource, aws: prefix reserved). Messages follow the AWS validation
// message form; UNVERIFIED against ECS.
func validateTags(tags []types.Tag, existing int) *Error {
	if len(tags)+existing > maxTagsPerResource {
		return errf(codeInvalidParameter, "Too many tags: a resource can have at most %d tags.", maxTagsPerResource) // UNVERIFIED
	}
	for i, t := range tags {
		k, v := aws.ToString(t.Key), aws.ToString(t.Value)
		if n := utf8.RuneCountInString(k); n < 1 || n > 128 {
			return errf(codeInvalidParameter, "1 validation error detected: Value '%s' at 'tags.%d.member.key' failed to satisfy constraint: Member must have length between 1 and 128", k, i+1)
		}
		if n := utf8.RuneCountInString(v); n > 256 {
			return errf(codeInvalidParameter, "1 validation error detected: Value at 'tags.%d.member.value' failed to satisfy constraint: Member must have length less than or equal to 256", i+1)
		}
		if !tagPattern.MatchString(k) {
			return errf(codeInvalidParameter, "1 validation error detected: Value '%s' at 'tags.%d.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$", k, i+1)
		}
		if !tagPattern.MatchString(v) {
			return errf(codeInvalidParameter, "1 validation error detected: Value '%s' at 'tags.%d.member.value' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$", v, i+1)
		}
		if hasPrefixFold(k, "aws:") {
			return errf(codeInvalidParameter, "Tag key '%s' is reserved: tag keys starting with 'aws:' are reserved for AWS use.", k) // UNVERIFIED
		}
	}
	return nil
}

// tagKeyError is used by UntagResource for reserved keys.
func tagKeyError(k string) *Error {
	return errf(codeInvalidParameter, "%s", fmt.Sprintf("Tag key '%s' is reserved: tag keys starting with 'aws:' are reserved for AWS use.", k)) // UNVERIFIED
}
