package patch

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

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
// A twin needs both our marker tags and our sidecar: tags alone can be
// copied by hand, and content alone can be a copy registered by a
// pipeline (which then is covered, not ours). images may be nil.
func Classify(td *types.TaskDefinition, tags []types.Tag, images map[string]Image, opts Options) Class {
	if td == nil {
		return Class{Kind: KindPlain}
	}
	prefix := opts.prefix()
	ours := ourSidecar(td.ContainerDefinitions, prefix)
	if src, ok := tagValue(tags, prefix+KeySource); ok && ours >= 0 {
		n, err := strconv.ParseInt(src, 10, 32)
		if err == nil && n > 0 {
			spec, _ := tagValue(tags, prefix+KeySpec)
			return Class{Kind: KindTwin, SourceRevision: int32(n), Spec: spec,
				Containers: []string{aws.ToString(td.ContainerDefinitions[ours].Name)}, Detail: "marker tags and sidecar"}
		}
	}
	if why := windowsSignal(td); why != "" {
		return Class{Kind: KindWindows, Detail: why}
	}
	if ours >= 0 {
		return Class{Kind: KindManualSidecar, Containers: []string{aws.ToString(td.ContainerDefinitions[ours].Name)},
			Detail: "the reconciler's sidecar without its marker tags"}
	}
	if side := manualSidecar(td.ContainerDefinitions); side != "" {
		return Class{Kind: KindManualSidecar, Containers: []string{side}, Detail: "a sidecar shares its volume with a container that runs the agent script"}
	}
	var embedded []string
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
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

// ourSidecar is the index of the container carrying our source label, or -1.
func ourSidecar(cs []types.ContainerDefinition, prefix string) int {
	for i := range cs {
		if _, ok := cs[i].DockerLabels[prefix+KeySource]; ok {
			return i
		}
	}
	return -1
}

// manualSidecar finds the guide's pattern by hand: a container that runs
// the agent script and takes volumes from another container that is a
// Lacework datacollector image or named like the guide's sidecar.
func manualSidecar(cs []types.ContainerDefinition) string {
	byName := make(map[string]*types.ContainerDefinition, len(cs))
	for i := range cs {
		byName[aws.ToString(cs[i].Name)] = &cs[i]
	}
	for i := range cs {
		if !runsScript(cs[i].EntryPoint) {
			continue
		}
		for _, v := range cs[i].VolumesFrom {
			src := aws.ToString(v.SourceContainer)
			if s, ok := byName[src]; ok && (src == DefaultSidecarName || isDatacollector(aws.ToString(s.Image)) || (s.Essential != nil && !*s.Essential)) {
				return src
			}
		}
	}
	return ""
}

// isDatacollector reports whether an image reference names a Lacework
// datacollector repository (any registry, tag or digest).
func isDatacollector(ref string) bool {
	repo := ref
	if i := strings.Index(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return path.Base(repo) == "datacollector"
}

func tagValue(tags []types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

// ErrNotTwin is returned by Source for a task definition without our sidecar.
var ErrNotTwin = errors.New("not a twin: no sidecar with the reconciler's labels")

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
	si := ourSidecar(twin.ContainerDefinitions, prefix)
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
