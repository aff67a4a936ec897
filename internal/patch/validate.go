package patch

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

var tagPattern = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

// Validate checks a register input against the ECS rules a twin could
// break, before anything is registered: it returns every problem found.
// instrumented names the containers that run the agent.
func Validate(in *ecs.RegisterTaskDefinitionInput, instrumented []string) []Reason {
	if in == nil {
		return []Reason{{Code: CodeMissingField, Detail: "no register input"}}
	}
	var rs []Reason
	add := func(code Code, container, f string, a ...any) {
		rs = append(rs, Reason{Code: code, Container: container, Detail: fmt.Sprintf(f, a...)})
	}
	if aws.ToString(in.Family) == "" {
		add(CodeMissingField, "", "no family")
	}
	cs := in.ContainerDefinitions
	if len(cs) == 0 {
		add(CodeNoContainers, "", "no containers")
	}
	if len(cs) > MaxContainers {
		add(CodeTooManyContainers, "", "%d containers (limit %d)", len(cs), MaxContainers)
	}
	byName := make(map[string]*types.ContainerDefinition, len(cs))
	essential := 0
	for i := range cs {
		c := &cs[i]
		name := aws.ToString(c.Name)
		switch {
		case name == "":
			add(CodeMissingField, "", "container %d has no name", i)
		case !containerNameRE.MatchString(name):
			add(CodeInvalidName, name, "a container name is 1 to 255 letters, digits, hyphens and underscores")
		case byName[name] != nil:
			add(CodeNameCollision, name, "two containers have this name")
		default:
			byName[name] = c
		}
		if aws.ToString(c.Image) == "" {
			add(CodeMissingField, name, "no image")
		}
		if isEssential(c) {
			essential++
		}
	}
	if len(cs) > 0 && essential == 0 {
		add(CodeNoEssential, "", "no essential container")
	}
	fargate := slices.Contains(in.RequiresCompatibilities, types.CompatibilityFargate)
	for i := range cs {
		c := &cs[i]
		name := aws.ToString(c.Name)
		for _, d := range c.DependsOn {
			target := aws.ToString(d.ContainerName)
			t, ok := byName[target]
			switch {
			case !ok:
				add(CodeInvalidDependency, name, "dependsOn %q: no such container", target)
			case target == name:
				add(CodeInvalidDependency, name, "depends on itself")
			case (d.Condition == types.ContainerConditionSuccess || d.Condition == types.ContainerConditionComplete) && isEssential(t):
				add(CodeInvalidDependency, name, "dependsOn %q with %s, but %q is essential", target, d.Condition, target)
			case d.Condition == types.ContainerConditionHealthy && t.HealthCheck == nil:
				add(CodeInvalidDependency, name, "dependsOn %q with HEALTHY, but %q has no healthCheck", target, target)
			}
		}
		for _, v := range c.VolumesFrom {
			target := aws.ToString(v.SourceContainer)
			if _, ok := byName[target]; !ok || target == name {
				add(CodeInvalidVolumesFrom, name, "volumesFrom %q: no such other container", target)
			}
		}
		if fargate && c.LinuxParameters != nil && c.LinuxParameters.Capabilities != nil {
			for _, a := range c.LinuxParameters.Capabilities.Add {
				if a != CapSysPtrace {
					add(CodeFargateCapability, name, "capability %s cannot be added on Fargate (only %s)", a, CapSysPtrace)
				}
			}
		}
	}
	if cycle := dependencyCycle(cs); len(cycle) > 0 {
		add(CodeDependencyCycle, cycle[0], "containers wait for each other and none can start: %s", strings.Join(cycle, " -> "))
	}
	for _, n := range instrumented {
		c := byName[n]
		if c == nil {
			add(CodeMissingField, n, "instrumented container is missing")
			continue
		}
		if aws.ToBool(c.ReadonlyRootFilesystem) {
			add(CodeReadonlyRootFS, n, "the agent script writes to the root filesystem")
		}
	}
	if len(in.Tags) > MaxTags {
		add(CodeTooManyTags, "", "%d tags (limit %d, the reconciler's markers included)", len(in.Tags), MaxTags)
	}
	for _, t := range in.Tags {
		k, v := aws.ToString(t.Key), aws.ToString(t.Value)
		switch {
		case utf8.RuneCountInString(k) < 1 || utf8.RuneCountInString(k) > 128 || !tagPattern.MatchString(k):
			add(CodeInvalidTag, "", "tag key %q: 1 to 128 characters of %s", k, tagPattern)
		case isReservedTag(k):
			add(CodeInvalidTag, "", "tag key %q: aws: is reserved", k)
		case utf8.RuneCountInString(v) > 256 || !tagPattern.MatchString(v):
			add(CodeInvalidTag, "", "tag %q: value of at most 256 characters of %s", k, tagPattern)
		}
	}
	if n := WireSize(in); n > MaxSize {
		add(CodeTooLarge, "", "%d bytes of JSON (limit %d)", n, MaxSize)
	}
	return rs
}

// containerNameRE is ECS's rule for container names (ContainerDefinition.name).
var containerNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// dependencyCycle returns the first cycle of dependsOn found, closed (its
// first name repeated at the end), or nil. A container that depends on
// itself is reported with the other dependency problems.
func dependencyCycle(cs []types.ContainerDefinition) []string {
	deps := make(map[string][]string, len(cs))
	for i := range cs {
		n := aws.ToString(cs[i].Name)
		for _, d := range cs[i].DependsOn {
			if t := aws.ToString(d.ContainerName); t != n {
				deps[n] = append(deps[n], t)
			}
		}
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := make(map[string]int, len(cs))
	var path []string
	var visit func(n string) []string
	visit = func(n string) []string {
		switch state[n] {
		case onPath:
			i := slices.Index(path, n)
			return append(slices.Clone(path[i:]), n)
		case done:
			return nil
		}
		state[n] = onPath
		path = append(path, n)
		for _, t := range deps[n] {
			if c := visit(t); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		state[n] = done
		return nil
	}
	for i := range cs {
		if c := visit(aws.ToString(cs[i].Name)); c != nil {
			return c
		}
	}
	return nil
}

// isEssential: ECS makes a container essential unless it says otherwise.
func isEssential(c *types.ContainerDefinition) bool {
	return c.Essential == nil || *c.Essential
}

// WireSize is the size in bytes of v encoded as the AWS JSON protocol does
// (members named in lowerCamel, nil and zero members left out). ECS
// measures the 64 KiB task definition limit on that encoding.
func WireSize(v any) int {
	return len(appendWire(nil, reflect.ValueOf(v)))
}

// appendWire encodes v in the AWS JSON shape: struct members in lowerCamel
// (the ECS model's names for every member of a task definition), nil
// pointers, nil slices and maps, empty enums and zero non-pointer numbers
// left out, as the SDK's serializers do. Map keys are sorted.
func appendWire(b []byte, v reflect.Value) []byte {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return append(b, "null"...)
		}
		return appendWire(b, v.Elem())
	case reflect.Struct:
		b = append(b, '{')
		first := true
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			fv := v.Field(i)
			if !f.IsExported() || omit(fv) {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, lowerCamel(f.Name))
			b = append(b, ':')
			b = appendWire(b, fv)
		}
		return append(b, '}')
	case reflect.Slice:
		b = append(b, '[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendWire(b, v.Index(i))
		}
		return append(b, ']')
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			if a.String() < b.String() {
				return -1
			}
			if a.String() > b.String() {
				return 1
			}
			return 0
		})
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k.String())
			b = append(b, ':')
			b = appendWire(b, v.MapIndex(k))
		}
		return append(b, '}')
	case reflect.String:
		return appendString(b, v.String())
	case reflect.Bool:
		return strconv.AppendBool(b, v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(b, v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.AppendFloat(b, v.Float(), 'g', -1, 64)
	}
	return append(b, "null"...)
}

func omit(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return v.IsNil()
	case reflect.String:
		return v.Len() == 0
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Bool:
		return !v.Bool()
	}
	return false
}

func lowerCamel(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
