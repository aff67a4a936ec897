package patch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
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
		imgs[cp.name] = specImage{Entrypoint: i.Entrypoint, Cmd: i.Cmd, User: i.User, Digest: i.Digest, Known: i.Known, HasShell: i.HasShell, HasSudo: i.HasSudo}
	}
	tagless := *src
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
