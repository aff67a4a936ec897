package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf16"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// imageConfigFlag is render's --image-config CONTAINER=FILE, repeatable:
// what one container's image declares, from a file the user made offline
// with `crane config IMAGE > FILE` or `docker image inspect IMAGE > FILE`.
// Set only records the value; checkSyntax reports a malformed one in one
// line (exit 2), so that the message is not buried in the usage text.
type imageConfigFlag []string

func (f *imageConfigFlag) String() string { return strings.Join(*f, " ") }
func (f *imageConfigFlag) Set(s string) error {
	*f = append(*f, s)
	return nil
}

// imageConfigArg is one parsed --image-config value.
type imageConfigArg struct{ container, file string }

const imageConfigUsage = "want --image-config CONTAINER=FILE, FILE from `crane config IMAGE > FILE` or `docker image inspect IMAGE > FILE`"

// parse checks every value's syntax: CONTAINER=FILE, both non-empty, each
// container at most once.
func (f imageConfigFlag) parse() ([]imageConfigArg, error) {
	var args []imageConfigArg
	seen := map[string]bool{}
	for _, v := range f {
		name, file, ok := strings.Cut(v, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || file == "" {
			return nil, fmt.Errorf("--image-config %q: %s", v, imageConfigUsage)
		}
		if seen[name] {
			return nil, fmt.Errorf("--image-config: container %q is given twice; give each container one file", name)
		}
		seen[name] = true
		args = append(args, imageConfigArg{container: name, file: file})
	}
	return args, nil
}

// checkImageConfigNames reports --image-config containers that td does not
// have (a usage error: a typo must not silently leave a container unknown).
func checkImageConfigNames(args []imageConfigArg, td *types.TaskDefinition) error {
	have := map[string]bool{}
	var names []string
	for _, c := range td.ContainerDefinitions {
		n := derefString(c.Name)
		have[n] = true
		names = append(names, n)
	}
	for _, a := range args {
		if !have[a.container] {
			return fmt.Errorf("--image-config %s=%s: the task definition has no container %q (its containers: %s)", a.container, a.file, a.container, strings.Join(names, ", "))
		}
	}
	return nil
}

// imageConfigFile is the one image a file describes.
type imageConfigFile struct {
	img      patch.Image
	os, arch string // as the file states them; empty when it does not
}

// loadImageConfigs reads every file. Errors are about the files (exit 1).
func loadImageConfigs(args []imageConfigArg, td *types.TaskDefinition) (map[string]imageConfigFile, error) {
	images := map[string]string{}
	for _, c := range td.ContainerDefinitions {
		images[derefString(c.Name)] = derefString(c.Image)
	}
	out := map[string]imageConfigFile{}
	for _, a := range args {
		data, err := os.ReadFile(a.file)
		if err != nil {
			ref := images[a.container]
			if ref == "" {
				ref = "IMAGE"
			}
			return nil, fmt.Errorf("--image-config %s: %w (write it with `crane config %s > %s`)", a.container, err, ref, a.file)
		}
		ic, err := parseImageConfig(data, images[a.container])
		if err != nil {
			return nil, fmt.Errorf("--image-config %s: %s: %w", a.container, a.file, err)
		}
		ic.img.Source = "file:" + a.file
		out[a.container] = ic
	}
	return out, nil
}

// ociConfig is the part of an image config's config object (Docker's and
// OCI's share the member names) that decides how the container starts.
type ociConfig struct {
	Entrypoint []string
	Cmd        []string
	User       string
}

// inspectImage is one element of `docker image inspect` output.
type inspectImage struct {
	ID           string `json:"Id"`
	RepoTags     []string
	RepoDigests  []string
	Os           string
	Architecture string
	Config       *ociConfig
}

// parseImageConfig reads `crane config` output (an image config object) or
// `docker image inspect` output (an array of one image), deciding by the
// first byte. imageRef is the container's image, to pick its RepoDigest.
func parseImageConfig(data []byte, imageRef string) (imageConfigFile, error) {
	var ic imageConfigFile
	data, err := utf8Text(data)
	if err != nil {
		return ic, err
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return ic, errors.New("the file is empty; write it with `crane config IMAGE > FILE`")
	}
	switch data[0] {
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(data, &elems); err != nil {
			return ic, fmt.Errorf("not JSON (%v); write it with `docker image inspect IMAGE > FILE`", err)
		}
		switch len(elems) {
		case 0:
			return ic, errors.New("an empty array: docker image inspect found no image; pull the image first")
		case 1:
			return parseInspect(elems[0], imageRef)
		}
		var names []string
		for _, e := range elems {
			var im inspectImage
			_ = json.Unmarshal(e, &im)
			names = append(names, inspectName(im))
		}
		return ic, fmt.Errorf("docker image inspect output of %d images (%s); a file describes one image: docker image inspect IMAGE > FILE, one file per container", len(elems), strings.Join(names, ", "))
	case '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(data, &top); err != nil {
			return ic, fmt.Errorf("not JSON (%v); write it with `crane config IMAGE > FILE`", err)
		}
		if _, ok := top["Id"]; ok {
			// One element, as docker image inspect --format '{{json .}}' prints it.
			return parseInspect(data, imageRef)
		}
		if _, ok := top["manifests"]; ok {
			return ic, errors.New("an image index (crane manifest output), not an image config; use `crane config --platform linux/amd64 IMAGE > FILE` (or linux/arm64)")
		}
		if _, ok := top["layers"]; ok {
			return ic, errors.New("an image manifest (crane manifest output), not an image config; use `crane config IMAGE > FILE`")
		}
		raw, ok := top["config"]
		if !ok || string(raw) == "null" {
			return ic, errors.New("no config object: not an image config; write it with `crane config IMAGE > FILE` or `docker image inspect IMAGE > FILE`")
		}
		var doc struct {
			Architecture string `json:"architecture"`
			OS           string `json:"os"`
			Config       ociConfig
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return ic, fmt.Errorf("the config object: %v", err)
		}
		ic.os, ic.arch = doc.OS, doc.Architecture
		ic.img = patch.Image{Known: true, Entrypoint: doc.Config.Entrypoint, Cmd: doc.Config.Cmd, User: doc.Config.User}
		// crane config prints no digest: the spec hash then covers the
		// entrypoint, command and user only.
		return ic, nil
	}
	return ic, errors.New("not JSON (it must start with { or [); write it with `crane config IMAGE > FILE` or `docker image inspect IMAGE > FILE`")
}

func parseInspect(raw json.RawMessage, imageRef string) (imageConfigFile, error) {
	var ic imageConfigFile
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return ic, fmt.Errorf("docker image inspect output: %v", err)
	}
	if _, ok := top["State"]; ok {
		return ic, errors.New("docker container inspect output (it has State), whose command may be the container's own; use `docker image inspect IMAGE > FILE`")
	}
	var im inspectImage
	if err := json.Unmarshal(raw, &im); err != nil {
		return ic, fmt.Errorf("docker image inspect output: %v", err)
	}
	if im.Config == nil {
		return ic, errors.New("docker image inspect output without a Config object; write it with `docker image inspect IMAGE > FILE`")
	}
	ic.os, ic.arch = im.Os, im.Architecture
	ic.img = patch.Image{Known: true, Entrypoint: im.Config.Entrypoint, Cmd: im.Config.Cmd, User: im.Config.User,
		Digest: inspectDigest(im, imageRef)}
	return ic, nil
}

// inspectDigest is the manifest digest of the RepoDigest whose repository
// is the container's (the digest `run` reads from the registry), else the
// first RepoDigest's, else the image ID (a config digest: a locally built
// image has no other).
func inspectDigest(im inspectImage, imageRef string) string {
	repo := imageRepo(imageRef)
	for _, rd := range im.RepoDigests {
		if r, d, ok := strings.Cut(rd, "@"); ok && r == repo {
			return d
		}
	}
	for _, rd := range im.RepoDigests {
		if _, d, ok := strings.Cut(rd, "@"); ok {
			return d
		}
	}
	return im.ID
}

// imageRepo is the repository part of an image reference: no tag, no
// digest, and Docker Hub's short names spelled as docker prints them in
// RepoDigests (nginx, not docker.io/library/nginx).
func imageRepo(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	ref = strings.TrimPrefix(ref, "docker.io/")
	return strings.TrimPrefix(ref, "library/")
}

func inspectName(im inspectImage) string {
	if len(im.RepoTags) > 0 {
		return im.RepoTags[0]
	}
	if len(im.RepoDigests) > 0 {
		return im.RepoDigests[0]
	}
	if im.ID != "" {
		return im.ID
	}
	return "unnamed"
}

// utf8Text drops a UTF-8 byte order mark and decodes UTF-16 text with one
// (what Windows PowerShell's > writes).
func utf8Text(b []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		return b[3:], nil
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		le := b[0] == 0xFF
		b = b[2:]
		if len(b)%2 != 0 {
			return nil, errors.New("UTF-16 text of an odd length; write the file as UTF-8 (PowerShell: | Out-File -Encoding utf8 FILE)")
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			if le {
				u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
			} else {
				u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
			}
		}
		return []byte(string(utf16.Decode(u))), nil
	}
	return b, nil
}

// platformMismatch describes a file of another platform than the one the
// task runs on: its runtimePlatform, linux/amd64 for the architecture when
// it states none (the config run reads, aws-facts.md section 8); "" when
// they agree or the file states no platform. ENTRYPOINT and CMD seldom
// differ between the platforms of one image, so this is a warning.
func platformMismatch(ic imageConfigFile, td *types.TaskDefinition) string {
	wantOS, wantArch := "", "amd64"
	if rp := td.RuntimePlatform; rp != nil {
		if f := string(rp.OperatingSystemFamily); f != "" {
			wantOS = "linux"
			if strings.HasPrefix(f, "WINDOWS") {
				wantOS = "windows"
			}
		}
		if rp.CpuArchitecture == types.CPUArchitectureArm64 {
			wantArch = "arm64"
		}
	}
	osBad := wantOS != "" && ic.os != "" && ic.os != wantOS
	archBad := ic.arch != "" && ic.arch != wantArch
	if !osBad && !archBad {
		return ""
	}
	plat := wantOS
	if plat == "" {
		plat = ic.os
	}
	return fmt.Sprintf("the file describes %s/%s and the task runs on %s/%s; if the two configs differ, use `crane config --platform %s/%s IMAGE`",
		ic.os, ic.arch, plat, wantArch, plat, wantArch)
}

// commandHint is the line printed after an unknown_command refusal: how to
// let render know the container's command. images is what render was given.
func commandHint(r patch.Reason, td *types.TaskDefinition, images map[string]patch.Image, resolved bool) string {
	if r.Code != patch.CodeUnknownCommand || r.Container == "" {
		return ""
	}
	ref := "IMAGE"
	for _, c := range td.ContainerDefinitions {
		if derefString(c.Name) == r.Container && derefString(c.Image) != "" {
			ref = derefString(c.Image)
		}
	}
	if img := images[r.Container]; img.Known {
		what := "the image (" + img.Source + ") declares"
		switch {
		case strings.HasPrefix(img.Source, "file:"):
			what = "the image config in " + strings.TrimPrefix(img.Source, "file:") + " declares"
		case img.Source == "flags" || img.Source == "":
			what = "the --image-* flags give"
		}
		return what + " neither ENTRYPOINT nor CMD: state the container's entryPoint (and command) in the task definition"
	}
	file := r.Container + ".json"
	get := fmt.Sprintf("`crane config %s > %s` (or `docker image inspect %s > %s`), then render --image-config %s=%s", ref, file, ref, file, r.Container, file)
	if resolved {
		return "the registry lookup failed (see the image: line above); " + get + " instead of --resolve-images; or state the entryPoint in the task definition"
	}
	return get + "; or --resolve-images to read it from the registry; or state the entryPoint in the task definition. `reconciler run` reads it from the registry itself"
}
