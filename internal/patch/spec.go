package patch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/deepcopy"
)

// engineVersion is hashed into every spec: bump it when Instrument's output
// for the same input changes, so that every twin is rebuilt.
const engineVersion = "1"

// SpecLen is the length of a spec hash, in hex characters.
const SpecLen = 12

// specImage is the part of an Image the patch read for one container.
type specImage struct {
	Entrypoint []string `json:"entrypoint"`
	Cmd        []string `json:"cmd"`
	User       string   `json:"user"`
	Digest     string   `json:"digest"`
	Known      bool     `json:"known"`
	HasShell   *bool    `json:"hasShell"`
	HasSudo    *bool    `json:"hasSudo"`
	// Pin is omitted when empty, so that the specs of twins made without
	// pinning stay what they were.
	Pin string `json:"pin,omitempty"`
}

// specHash hashes everything the output depends on: the engine version,
// the defaulted profile (its Name is not part of it: json:"-"), the tag
// prefix, the image data of the instrumented containers and the source's
// content (tags excluded: they change without changing the patch). The
// encoding is encoding/json of fixed structs, whose map keys are sorted,
// so it is deterministic.
// roles holds the containers left alone for their role; it is omitted when
// empty, so that task definitions the roles do not concern keep the specs
// they had before roles were recognised.
func specHash(p Profile, prefix string, src *ecs.RegisterTaskDefinitionInput, plans []containerPlan, roles map[string]Code) string {
	imgs := make(map[string]specImage, len(plans))
	for _, cp := range plans {
		i := cp.img
		imgs[cp.name] = specImage{Entrypoint: i.Entrypoint, Cmd: i.Cmd, User: i.User, Digest: i.Digest, Known: i.Known, HasShell: i.HasShell, HasSudo: i.HasSudo, Pin: i.Pin}
	}
	tagless := asRegistered(src)
	tagless.Tags = nil
	doc := struct {
		Engine  string                           `json:"engine"`
		Profile Profile                          `json:"profile"`
		Prefix  string                           `json:"prefix"`
		Images  map[string]specImage             `json:"images"`
		Source  *ecs.RegisterTaskDefinitionInput `json:"source"`
		Roles   map[string]Code                  `json:"roles,omitempty"`
	}{engineVersion, p, prefix, imgs, &tagless, roles}
	b, err := json.Marshal(doc)
	if err != nil {
		// Only unsupported kinds (channels, funcs) fail; the SDK has none.
		panic("patch: spec encoding: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:SpecLen]
}

// asRegistered returns a copy of src as ECS describes it once registered,
// so that a source hashes alike whether it was read from ECS (reconciler
// run) or from a file (render): ECS answers [] for the lists it always
// returns (a container's environment, mountPoints, portMappings and
// volumesFrom; a task's volumes and placementConstraints) and true for an
// unset essential. Nothing else is changed: DescribeTaskDefinition output
// already has this shape, so the specs of twins that run made from it stay
// what they were (a changed spec would roll every service out again).
func asRegistered(src *ecs.RegisterTaskDefinitionInput) ecs.RegisterTaskDefinitionInput {
	in := *src
	in.Volumes = orEmpty(in.Volumes)
	in.PlacementConstraints = orEmpty(in.PlacementConstraints)
	cs := make([]types.ContainerDefinition, len(in.ContainerDefinitions))
	for i, c := range in.ContainerDefinitions {
		c.Environment = orEmpty(c.Environment)
		c.MountPoints = orEmpty(c.MountPoints)
		c.PortMappings = orEmpty(c.PortMappings)
		c.VolumesFrom = orEmpty(c.VolumesFrom)
		if c.Essential == nil {
			c.Essential = aws.Bool(true)
		}
		cs[i] = c
	}
	in.ContainerDefinitions = cs
	return in
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Digest is a hash of a task definition's content as RegisterTaskDefinition
// takes it, tags aside, in a form in which what ECS fills in on
// registration (empty lists, an unset essential) and what it leaves out
// compare equal: a registered twin, as ECS describes it, has the digest of
// the input Instrument made for it. The controller trusts a twin only when
// its digest is that of what Instrument makes of its source today.
func Digest(in *ecs.RegisterTaskDefinitionInput) string {
	cp := deepcopy.Of(*in)
	cp.Tags = nil
	for i := range cp.ContainerDefinitions {
		if cp.ContainerDefinitions[i].Essential == nil {
			cp.ContainerDefinitions[i].Essential = aws.Bool(true)
		}
	}
	emptyToNil(reflect.ValueOf(&cp).Elem())
	sum := sha256.Sum256(appendWire(nil, reflect.ValueOf(&cp)))
	return hex.EncodeToString(sum[:16])
}

// emptyToNil sets every empty slice and map reachable from v (settable,
// owned by the caller) to nil.
func emptyToNil(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			emptyToNil(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				emptyToNil(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		for i := 0; i < v.Len(); i++ {
			emptyToNil(v.Index(i))
		}
	case reflect.Map:
		if v.Len() == 0 {
			v.SetZero()
		}
	}
}
