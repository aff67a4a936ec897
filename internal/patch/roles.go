package patch

import (
	"path"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Container roles: the containers of a task definition that are not the
// application and are left alone, whatever the profile selects. They are
// decided from the task definition's structure first, then from the image.
const (
	// SkipFirelensRouter: the container has a firelensConfiguration. ECS
	// starts it before the containers that log to it only while it depends
	// on nothing, so it must not be given a dependency on the sidecar.
	SkipFirelensRouter Code = "firelens_router"
	// SkipProxy: proxyConfiguration.containerName (the App Mesh envoy).
	SkipProxy Code = "proxy"
	// SkipInitContainer: a non-essential container that another container
	// waits for with COMPLETE or SUCCESS: it runs to completion.
	SkipInitContainer Code = "init_container"
	// SkipAgentImage: the image matches the profile's agent image patterns
	// (DefaultAgentImages unless the profile lists its own).
	SkipAgentImage Code = "agent_image"
)

// DefaultAgentImages are the repositories of agents and sidecars that are
// not applications: log routers, proxies, telemetry collectors and other
// vendors' agents. A pattern is matched (path.Match) against the image's
// repository path and against every shorter suffix of it, registry, tag
// and digest removed, so "aws-xray-daemon" matches
// public.ecr.aws/xray/aws-xray-daemon:3.x and an ECR mirror of
// amazon/aws-xray-daemon alike.
var DefaultAgentImages = []string{
	// Log routers.
	"aws-for-fluent-bit", "fluent-bit", "fluentd", "timberio/vector",
	// Proxies and meshes.
	"aws-appmesh-envoy", "envoy", "ecs-service-connect-agent", "hashicorp/consul", "consul-ecs",
	// AWS telemetry.
	"cloudwatch-agent", "aws-xray-daemon", "aws-otel-collector",
	// OpenTelemetry and vendor collectors.
	"opentelemetry-collector", "opentelemetry-collector-contrib", "splunk-otel-collector",
	"grafana/agent", "grafana/alloy",
	// Vendors' agents.
	"datadog/agent", "datadoghq/agent", "datadog/docker-dd-agent",
	"newrelic/nri-ecs", "newrelic/infrastructure*", "instana/agent", "dynatrace/oneagent*",
	"sysdig/workload-agent", "sysdig/agent*", "aquasec/*", "twistlock/*",
}

// roleOf says which structural or image role makes a container something
// other than an application ("" for an application container).
func roleOf(td *types.TaskDefinition, i int, agentImages []string) (Code, string) {
	c := &td.ContainerDefinitions[i]
	name := aws.ToString(c.Name)
	if c.FirelensConfiguration != nil {
		return SkipFirelensRouter, "FireLens log router (firelensConfiguration " + string(c.FirelensConfiguration.Type) + ")"
	}
	if pc := td.ProxyConfiguration; pc != nil && aws.ToString(pc.ContainerName) == name {
		return SkipProxy, "the proxyConfiguration container"
	}
	if !isEssential(c) {
		for j := range td.ContainerDefinitions {
			for _, d := range td.ContainerDefinitions[j].DependsOn {
				if aws.ToString(d.ContainerName) == name && (d.Condition == types.ContainerConditionComplete || d.Condition == types.ContainerConditionSuccess) {
					return SkipInitContainer, "non-essential, and " + aws.ToString(td.ContainerDefinitions[j].Name) + " waits for it with " + string(d.Condition)
				}
			}
		}
	}
	if pat, ok := matchImage(agentImages, aws.ToString(c.Image)); ok {
		return SkipAgentImage, "image matches the agent pattern " + pat
	}
	return "", ""
}

// agentImages is the profile's list, or the defaults when it has none.
func (p Profile) agentImages() []string {
	if p.AgentImages == nil {
		return DefaultAgentImages
	}
	return p.AgentImages
}

// matchImage reports the first pattern that matches the image reference's
// repository path or one of its suffixes.
func matchImage(patterns []string, ref string) (string, bool) {
	repo := imageRepository(ref)
	if repo == "" {
		return "", false
	}
	parts := strings.Split(repo, "/")
	for _, pat := range patterns {
		pat = strings.ToLower(pat)
		for k := range parts {
			if ok, err := path.Match(pat, strings.Join(parts[k:], "/")); err == nil && ok {
				return pat, true
			}
		}
	}
	return "", false
}

// imageRepository is the repository path of an image reference, lower
// case, without registry host, tag or digest.
func imageRepository(ref string) string {
	ref = strings.ToLower(strings.TrimSpace(ref))
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	if first, rest, ok := strings.Cut(ref, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		ref = rest
	}
	return ref
}

// LaunchTypes lists the launch types a profile may opt in (the ECS
// Compatibility values).
func LaunchTypes() []string {
	return []string{
		string(types.CompatibilityFargate), string(types.CompatibilityEc2),
		string(types.CompatibilityExternal), string(types.CompatibilityManagedInstances),
	}
}

// launchTypes is the profile's list, or FARGATE alone: the guide's sidecar
// method is for Fargate, where no host agent can run.
func (p Profile) launchTypes() []string {
	if len(p.LaunchTypes) == 0 {
		return []string{string(types.CompatibilityFargate)}
	}
	return p.LaunchTypes
}

// inScope says why a task definition's launch types are outside the
// profile's ("" when one of them is allowed). They are the ones it requires
// (requiresCompatibilities); without that, the ones ECS computed
// (compatibilities, in describe output); without either (register input),
// the ones ECS would compute: EC2, and FARGATE for a task definition that
// meets Fargate's requirements (awsvpc networking, task-level cpu and
// memory).
func inScope(td *types.TaskDefinition, p Profile) string {
	allowed := p.launchTypes()
	have, from := td.RequiresCompatibilities, "requiresCompatibilities"
	if len(have) == 0 {
		have, from = td.Compatibilities, "compatibilities"
	}
	if len(have) == 0 {
		have, from = []types.Compatibility{types.CompatibilityEc2}, "its shape (no requiresCompatibilities)"
		if td.NetworkMode == types.NetworkModeAwsvpc && aws.ToString(td.Cpu) != "" && aws.ToString(td.Memory) != "" {
			have = append(have, types.CompatibilityFargate)
		}
	}
	names := make([]string, len(have))
	for i, c := range have {
		if slices.Contains(allowed, string(c)) {
			return ""
		}
		names[i] = string(c)
	}
	return "launch types " + strings.Join(names, ", ") + " from " + from + "; the profile instruments " +
		strings.Join(allowed, ", ") + " (on EC2 the host agent is the method; the profile's launchTypes can add EC2)"
}

// windowsSignal says what marks td as a Windows task definition, or "".
// On Fargate runtimePlatform says it; on EC2 runtimePlatform is optional
// (AWS's Windows IIS sample has none), so the other signals count too:
// Windows base images, a placement constraint on ecs.os-type, and Windows
// paths or shells in commands, working directories and volumes.
func windowsSignal(td *types.TaskDefinition) string {
	if rp := td.RuntimePlatform; rp != nil && strings.HasPrefix(string(rp.OperatingSystemFamily), "WINDOWS") {
		return "operatingSystemFamily " + string(rp.OperatingSystemFamily)
	}
	if td.NetworkMode == "default" {
		return "networkMode default (EC2 Windows instances only)"
	}
	for _, pc := range td.PlacementConstraints {
		e := strings.ToLower(strings.Join(strings.Fields(aws.ToString(pc.Expression)), ""))
		if strings.Contains(e, "ecs.os-type==windows") || strings.Contains(e, "ecs.os-family==windows") {
			return "placement constraint " + aws.ToString(pc.Expression)
		}
	}
	for _, v := range td.Volumes {
		if v.Host != nil && windowsPath(aws.ToString(v.Host.SourcePath)) {
			return "volume " + aws.ToString(v.Name) + " has a Windows host path"
		}
	}
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		name := aws.ToString(c.Name)
		if windowsImage(aws.ToString(c.Image)) {
			return "container " + name + " runs a Windows image (" + aws.ToString(c.Image) + ")"
		}
		argv := append(slices.Clip(c.EntryPoint), c.Command...)
		if len(argv) > 0 && (windowsPath(argv[0]) || windowsShell(argv[0])) {
			return "container " + name + " runs " + argv[0]
		}
		if windowsPath(aws.ToString(c.WorkingDirectory)) {
			return "container " + name + " has a Windows working directory"
		}
		for _, m := range c.MountPoints {
			if windowsPath(aws.ToString(m.ContainerPath)) {
				return "container " + name + " mounts a Windows path"
			}
		}
	}
	return ""
}

// windowsPath: a drive letter path such as C:\app or c:/data.
func windowsPath(s string) bool {
	return len(s) >= 3 && s[1] == ':' && (s[2] == '\\' || s[2] == '/') &&
		(s[0]|0x20) >= 'a' && (s[0]|0x20) <= 'z'
}

func windowsShell(s string) bool {
	switch strings.ToLower(s) {
	case "powershell", "powershell.exe", "pwsh.exe", "cmd", "cmd.exe":
		return true
	}
	return false
}

// windowsImage: Microsoft's Windows base images and the images built on
// them that carry the OS in their name.
func windowsImage(ref string) bool {
	r := strings.ToLower(ref)
	repo := imageRepository(r)
	switch {
	case strings.HasPrefix(repo, "windows/"), strings.HasPrefix(repo, "dotnet/framework/"),
		strings.Contains(repo, "servercore"), strings.Contains(repo, "nanoserver"):
		return true
	}
	if i := strings.LastIndex(r, ":"); i > strings.LastIndex(r, "/") {
		tag := r[i+1:]
		return strings.Contains(tag, "windowsservercore") || strings.Contains(tag, "nanoserver") || strings.HasPrefix(tag, "ltsc20")
	}
	return false
}

// firelensRouterFree names the router and says whether it depends on no
// container (the only case in which a container may wait for it without
// risking a cycle through the router's own dependencies).
func firelensRouterFree(cs []types.ContainerDefinition) (string, bool) {
	for i := range cs {
		if cs[i].FirelensConfiguration != nil {
			return aws.ToString(cs[i].Name), len(cs[i].DependsOn) == 0
		}
	}
	return "", false
}

// routerLog is the FireLens router's own log configuration, or nil.
func routerLog(cs []types.ContainerDefinition) *types.LogConfiguration {
	for i := range cs {
		if cs[i].FirelensConfiguration != nil {
			return cs[i].LogConfiguration
		}
	}
	return nil
}

// routerFor names the FireLens router that container c must be made to
// wait for explicitly in the twin, or "". When the router depends on no
// container, the ECS agent starts it before each container that logs
// through it (log driver awsfirelens) and does not already depend on it, by
// adding a START dependency at launch (amazon-ecs-agent, agent/api/task
// task.go, addFirelensContainerDependency). The twin states that
// dependency, so that the order does not rest on an implicit rule once the
// container gains a dependency on the sidecar; AWS's FireLens guide asks
// for START or HEALTHY on the router wherever dependency conditions are
// used.
func routerFor(td *types.TaskDefinition, c *types.ContainerDefinition) string {
	if c.LogConfiguration == nil || c.LogConfiguration.LogDriver != types.LogDriverAwsfirelens {
		return ""
	}
	r, free := firelensRouterFree(td.ContainerDefinitions)
	if !free || r == aws.ToString(c.Name) {
		return "" // a router that depends on anything gets no implicit START
	}
	for _, d := range c.DependsOn {
		if aws.ToString(d.ContainerName) == r {
			return ""
		}
	}
	return r
}
