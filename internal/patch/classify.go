package patch

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Kind is what a task definition is, as far as the reconciler cares.
type Kind string

const (
	// KindPlain: nothing runs the agent; a candidate for a twin.
	KindPlain Kind = "plain"
	// KindTwin: registered by the reconciler (marker tags and our sidecar).
	KindTwin Kind = "twin"
	// KindEmbeddedAgent: a container's entrypoint (task definition or
	// image) already runs the sidecar script, the guide's embedded method.
	KindEmbeddedAgent Kind = "embedded_agent"
	// KindManualSidecar: the guide's sidecar method done by hand (or a
	// twin's content that lost its marker tags): covered, never touched.
	KindManualSidecar Kind = "manual_sidecar"
	// KindWindows: a Windows task definition; the agent does not run there.
	KindWindows Kind = "windows"
)

// Class is the outcome of Classify.
type Class struct {
	Kind Kind
	// SourceRevision and Spec are the marker tags of a twin.
	SourceRevision int32
	Spec           string
	// Containers names the containers that made the decision (the sidecar,
	// or the containers that already run the agent).
	Containers []string
	Detail     string
}

// Classify tells twins, covered, Windows and plain task definitions apart.
// A twin needs both our marker tags and our sidecar's content: tags alone
// can be copied by hand, and content alone can be a copy registered by a
// pipeline (which then is covered, not ours). Covered means the agent's
// content is there, not a label: a container that runs the agent script
// takes volumesFrom a sidecar that exists and is non-essential (or a
// datacollector image). A docker label alone proves nothing, since anyone
// who registers a task definition can write it. images may be nil.
func Classify(td *types.TaskDefinition, tags []types.Tag, images map[string]Image, opts Options) Class {
	return classify(td, tags, images, opts, runsScript)
}

// classify is Classify with runs saying which entrypoints run the agent:
// the Lacework script for Classify, and also a custom profile's wrapper
// when Instrument knows the profile.
func classify(td *types.TaskDefinition, tags []types.Tag, images map[string]Image, opts Options, runs func([]string) bool) Class {
	if td == nil {
		return Class{Kind: KindPlain}
	}
	prefix := opts.prefix()
	cs := td.ContainerDefinitions
	if src, ok := TagValue(tags, prefix+KeySource); ok {
		n, err := strconv.ParseInt(src, 10, 32)
		if i := twinSidecar(cs, prefix, runs); err == nil && n > 0 && i >= 0 {
			spec, _ := TagValue(tags, prefix+KeySpec)
			return Class{Kind: KindTwin, SourceRevision: int32(n), Spec: spec,
				Containers: []string{aws.ToString(cs[i].Name)}, Detail: "marker tags and sidecar"}
		}
	}
	if how, ok := TagValue(tags, prefix+KeyDeployTime); ok {
		// Instrumented at deploy time: covered, as a twin's content without
		// its source tag is, and also for a custom profile whose wrapper
		// Classify does not know (the sidecar, our patch record and the
		// wrapped entrypoint are there, as for a twin).
		if i := twinSidecar(cs, prefix, runs); i >= 0 {
			return Class{Kind: KindManualSidecar, Containers: []string{aws.ToString(cs[i].Name)},
				Detail: "instrumented at deploy time (" + how + ")"}
		}
	}
	if why := windowsSignal(td); why != "" {
		return Class{Kind: KindWindows, Detail: why}
	}
	agent := func(c *types.ContainerDefinition) bool { return runs(c.EntryPoint) }
	if i := sidecarServing(cs, prefix+KeySource, agent); i >= 0 {
		return Class{Kind: KindManualSidecar, Containers: []string{aws.ToString(cs[i].Name)},
			Detail: "the reconciler's sidecar without its marker tags"}
	}
	if i := sidecarServing(cs, "", agent); i >= 0 {
		return Class{Kind: KindManualSidecar, Containers: []string{aws.ToString(cs[i].Name)},
			Detail: "a sidecar shares its volume with a container that runs the agent script"}
	}
	var embedded []string
	for i := range cs {
		c := &cs[i]
		argv := c.EntryPoint
		if len(argv) == 0 {
			argv = images[aws.ToString(c.Name)].Entrypoint
		}
		if runsScript(argv) {
			embedded = append(embedded, aws.ToString(c.Name))
		}
	}
	if len(embedded) > 0 {
		return Class{Kind: KindEmbeddedAgent, Containers: embedded, Detail: "the entrypoint already runs the agent script"}
	}
	return Class{Kind: KindPlain}
}

// twinSidecar is the index of a twin's sidecar, or -1: the container with
// our source label that an instrumented container takes volumes from. An
// instrumented container runs the agent (runs), or carries our patch
// record and has its recorded entrypoint behind a wrapper: a custom
// profile's twin, whose wrapper Classify does not know. That is enough for
// a twin, which also needs the marker tags and is deployed only when it is
// what the patch makes of its source today; it is not enough to be counted
// covered (sidecarServing with runs alone).
func twinSidecar(cs []types.ContainerDefinition, prefix string, runs func([]string) bool) int {
	return sidecarServing(cs, prefix+KeySource, func(c *types.ContainerDefinition) bool {
		return runs(c.EntryPoint) || wrappedByPatch(c, prefix)
	})
}

// sidecarServing is the index of the first container that serves a
// running agent's files, or -1: it is non-essential or a Lacework
// datacollector image, and another container whose entrypoint runs the
// agent (agent) takes volumesFrom it. With label set, only containers that
// carry that docker label count.
func sidecarServing(cs []types.ContainerDefinition, label string, agent func(*types.ContainerDefinition) bool) int {
	for i := range cs {
		s := &cs[i]
		if _, ok := s.DockerLabels[label]; label != "" && !ok {
			continue
		}
		if isEssential(s) && !isDatacollector(aws.ToString(s.Image)) {
			continue
		}
		name := aws.ToString(s.Name)
		for j := range cs {
			if j == i || !agent(&cs[j]) {
				continue
			}
			for _, v := range cs[j].VolumesFrom {
				if aws.ToString(v.SourceContainer) == name {
					return i
				}
			}
		}
	}
	return -1
}

// wrappedByPatch reports whether c carries our patch record and its
// entrypoint is the recorded one (the effective one, when the record has
// none: it came from the image) behind a wrapper of at least one word.
func wrappedByPatch(c *types.ContainerDefinition, prefix string) bool {
	raw, ok := c.DockerLabels[prefix+KeyPatch]
	if !ok {
		return false
	}
	var rec patchRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return false
	}
	ep, orig := c.EntryPoint, rec.EntryPoint
	return len(ep) > len(orig) && slices.Equal(ep[len(ep)-len(orig):], orig)
}

// isDatacollector reports whether an image reference names a Lacework
// datacollector repository (any registry, tag or digest).
func isDatacollector(ref string) bool {
	return path.Base(imageRepository(ref)) == "datacollector"
}

// TagValue returns the value of the tag key in tags, and whether there is one.
func TagValue(tags []types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

// ErrNotTwin is returned by Source for a task definition without our sidecar.
var ErrNotTwin = errors.New("not a twin: no sidecar with the reconciler's label that an instrumented container takes volumes from")

// Source rebuilds the register input of a twin's source revision: the
// sidecar removed, each instrumented container restored from its patch
// label, a defaulted execution role removed, marker tags dropped. For a
// source S, Source(Instrument(S)) has S's content (empty lists may come
// back absent).
func Source(twin *types.TaskDefinition, tags []types.Tag, opts Options) (*ecs.RegisterTaskDefinitionInput, error) {
	if twin == nil {
		return nil, ErrNotTwin
	}
	prefix := opts.prefix()
	si := twinSidecar(twin.ContainerDefinitions, prefix, runsScript)
	if si < 0 {
		return nil, ErrNotTwin
	}
	in := registerInput(twin)
	side := in.ContainerDefinitions[si]
	sideName := aws.ToString(side.Name)
	in.ContainerDefinitions = append(in.ContainerDefinitions[:si:si], in.ContainerDefinitions[si+1:]...)
	if side.DockerLabels[prefix+KeyExecutionRole] == "defaulted" {
		in.ExecutionRoleArn = nil
	}
	for i := range in.ContainerDefinitions {
		c := &in.ContainerDefinitions[i]
		raw, ok := c.DockerLabels[prefix+KeyPatch]
		if !ok {
			continue
		}
		var rec patchRecord
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return nil, fmt.Errorf("container %s: label %s: %w", aws.ToString(c.Name), prefix+KeyPatch, err)
		}
		if err := undo(c, rec, sideName); err != nil {
			return nil, fmt.Errorf("container %s: %w", aws.ToString(c.Name), err)
		}
		delete(c.DockerLabels, prefix+KeyPatch)
		if len(c.DockerLabels) == 0 {
			c.DockerLabels = nil
		}
	}
	for _, t := range tags {
		k := aws.ToString(t.Key)
		if isReservedTag(k) || isMarker(k, prefix) {
			continue
		}
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(aws.ToString(t.Value))})
	}
	return in, nil
}

// undo reverses applyPatch on c, checking that what it removes is ours.
func undo(c *types.ContainerDefinition, rec patchRecord, side string) error {
	short := func(what string, have, n int) error {
		if n < 0 || n > have {
			return fmt.Errorf("patch label removes %d %s of %d", n, what, have)
		}
		return nil
	}
	if err := errors.Join(
		short("environment", len(c.Environment), rec.Environment),
		short("secrets", len(c.Secrets), rec.Secrets),
		short("volumesFrom", len(c.VolumesFrom), rec.VolumesFrom),
		short("dependsOn", len(c.DependsOn), rec.DependsOn),
	); err != nil {
		return err
	}
	c.EntryPoint, c.Command = rec.EntryPoint, rec.Command
	if rec.Image != "" {
		c.Image = aws.String(rec.Image)
	}
	c.Environment = trim(c.Environment, rec.Environment)
	c.Secrets = trim(c.Secrets, rec.Secrets)
	if rec.VolumesFrom > 0 && aws.ToString(c.VolumesFrom[len(c.VolumesFrom)-1].SourceContainer) != side {
		return fmt.Errorf("last volumesFrom is not the sidecar's")
	}
	c.VolumesFrom = trim(c.VolumesFrom, rec.VolumesFrom)
	if rec.DependsOn > 0 && aws.ToString(c.DependsOn[len(c.DependsOn)-1].ContainerName) != side {
		return fmt.Errorf("last dependsOn is not on the sidecar")
	}
	c.DependsOn = trim(c.DependsOn, rec.DependsOn)
	if rec.CapAdd > 0 {
		if c.LinuxParameters == nil || c.LinuxParameters.Capabilities == nil || len(c.LinuxParameters.Capabilities.Add) < rec.CapAdd {
			return fmt.Errorf("patch label removes a capability that is not there")
		}
		c.LinuxParameters.Capabilities.Add = trim(c.LinuxParameters.Capabilities.Add, rec.CapAdd)
	}
	switch rec.LinuxParameters {
	case "created":
		c.LinuxParameters = nil
	case "capabilities":
		if c.LinuxParameters != nil {
			c.LinuxParameters.Capabilities = nil
		}
	}
	return nil
}

// trim drops the last n items; a list that becomes empty becomes nil.
func trim[T any](s []T, n int) []T {
	s = s[:len(s)-n]
	if len(s) == 0 {
		return nil
	}
	return s
}
