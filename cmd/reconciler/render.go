package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/awsjson"
	"github.com/ecs-sidecar/reconciler/internal/cfnmacro"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// renderFlags are render's command line; profile flags override --config.
type renderFlags struct {
	config, profile, output string
	diff                    bool

	tokenSecretArn, tokenPlaintextFile string
	tokenOnArgv                        argvTokenFlag
	allowPlaintext                     bool
	serverURL, laceworkConfig          string
	verbose                            bool
	distroless, nonRoot                string
	sidecarImage, executionRole        string
	include, exclude                   listFlag

	imageEntrypoint, imageCmd, imageUser, imageDigest string
	imageContainers                                   listFlag
	sourceRevision                                    int
	tagPrefix                                         string
	resolveImages                                     bool
	imageConfigs                                      imageConfigFlag

	// Registry access of --resolve-images, added to the config's images.*.
	insecureRegistries listFlag
	registryCAs        repeatFlag
	imageTimeout       time.Duration
	pinDigest          bool

	// cloudFormation is a template whose task definitions are rendered as
	// the CloudFormation macro would instrument them.
	cloudFormation string
}

// repeatFlag is a repeatable flag whose values are kept whole (file names
// may hold commas).
type repeatFlag []string

func (r *repeatFlag) String() string { return strings.Join(*r, ",") }
func (r *repeatFlag) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*r = append(*r, s)
	return nil
}

// listFlag is a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*l = append(*l, x)
		}
	}
	return nil
}

func cmdRender(e env, args []string) int {
	fs := newFlagSet(e, "render", "[flags] [FILE|-]\n\n"+
		"Reads a task definition (describe-task-definition --include TAGS output, a bare task\n"+
		"definition, or register-task-definition --cli-input-json input) from FILE or stdin and\n"+
		"writes its instrumented twin as register-task-definition --cli-input-json input.\n"+
		"Exit 0 with output, 1 when it refuses (one line per reason on stderr), 2 on bad usage.")
	var f renderFlags
	f.define(fs)
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(e.stderr, "render: at most one input file, got %d arguments\n", fs.NArg())
		fs.Usage()
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if f.tokenOnArgv {
		// Its value is dropped unseen: never echo it.
		fmt.Fprintln(e.stderr, "render: --token-plaintext is not accepted: a token on the command line can be read by other users of the machine (ps, /proc) and stays in shell history; "+
			"put it in a file only you can read and give --token-plaintext-file FILE --allow-plaintext-token")
		return exitUsage
	}
	if set["token-plaintext-file"] && !f.allowPlaintext {
		fmt.Fprintln(e.stderr, "render: --token-plaintext-file needs --allow-plaintext-token (the token ends up in the task definition in clear)")
		return exitUsage
	}
	if set["token-plaintext-file"] && set["token-secret-arn"] {
		fmt.Fprintln(e.stderr, "render: --token-secret-arn and --token-plaintext-file both give the token; give one")
		return exitUsage
	}
	img, hasImage, err := f.image(set)
	if err != nil {
		fmt.Fprintf(e.stderr, "render: %v\n", err)
		return exitUsage
	}
	if hasImage && f.resolveImages {
		fmt.Fprintln(e.stderr, "render: --resolve-images reads the images from their registries; it cannot be combined with --image-* flags")
		return exitUsage
	}
	imageConfigs, err := f.imageConfigs.parse()
	if err != nil {
		fmt.Fprintf(e.stderr, "render: %v\n", err)
		return exitUsage
	}
	if len(imageConfigs) > 0 && f.resolveImages {
		fmt.Fprintln(e.stderr, "render: --resolve-images reads the images from their registries; it cannot be combined with --image-config (drop one of them)")
		return exitUsage
	}

	if code, ok := f.checkRegistryFlags(e, set); !ok {
		return code
	}

	if set["cloudformation"] {
		return f.renderCloudFormation(e, set, fs.NArg(), hasImage || len(imageConfigs) > 0)
	}
	prof, opts, renv, err := f.profileAndOptions(e, set)
	if err != nil {
		fmt.Fprintf(e.stderr, "render: %v\n", err)
		return exitFail
	}
	if f.resolveImages && renv.configured && !renv.images.Resolve {
		// An explicit flag against an explicit key: neither silently wins.
		fmt.Fprintf(e.stderr, "render: --resolve-images conflicts with images.resolve: false in --config %s: drop the flag to render offline, or set images.resolve: true in the config\n", f.config)
		return exitUsage
	}
	ra := f.registryAccess(renv.images, set)

	data, err := readInput(e, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(e.stderr, "render: %v\n", err)
		return exitFail
	}
	td, tags, err := parseRenderInput(data)
	if err != nil {
		fmt.Fprintf(e.stderr, "render: %v\n", err)
		return exitFail
	}

	if err := checkImageConfigNames(imageConfigs, td); err != nil {
		fmt.Fprintf(e.stderr, "render: %v\n", err)
		return exitUsage
	}
	files, err := loadImageConfigs(imageConfigs, td)
	if err != nil {
		fmt.Fprintf(e.stderr, "render: %v\n", err)
		return exitFail
	}

	var images map[string]patch.Image
	if hasImage || len(files) > 0 {
		images = map[string]patch.Image{}
	}
	if hasImage {
		for _, c := range td.ContainerDefinitions {
			name := derefString(c.Name)
			if len(f.imageContainers) == 0 || contains(f.imageContainers, name) {
				images[name] = img
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		// A file describes its container's image whole: it wins over --image-*.
		images[name] = files[name].img
		if m := platformMismatch(files[name], td); m != "" {
			fmt.Fprintf(e.stderr, "image: %s: %s\n", name, m)
		}
	}
	if f.resolveImages {
		var errs []error
		images, errs, err = resolveImages(context.Background(), renv.aws, ra, prof, td)
		if err != nil {
			fmt.Fprintf(e.stderr, "render: --resolve-images: %v\n", err)
			return exitFail
		}
		for _, err := range errs {
			// The patch refuses the containers that needed this image.
			fmt.Fprintf(e.stderr, "image: %v\n", err)
		}
	}

	res, err := patch.Instrument(td, tags, prof, images, opts)
	var ref *patch.Refusal
	if errors.As(err, &ref) {
		for _, r := range ref.Reasons {
			fmt.Fprintf(e.stderr, "refused: %s\n", r)
			if h := commandHint(r, td, images, f.resolveImages); h != "" {
				fmt.Fprintf(e.stderr, "hint: %s\n", h)
			}
		}
		return exitFail
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "render: %v\n", err)
		return exitFail
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(e.stderr, "skipped: %s\n", s)
	}

	srcObject := sourceObject(data)
	out, err := encodeRegisterInput(res.Input, srcObject)
	if err != nil {
		fmt.Fprintf(e.stderr, "render: encoding the output: %v\n", err)
		return exitFail
	}
	out = append(out, '\n')
	if f.diff {
		// A diff is for reading: plaintext tokens are shown redacted on
		// both sides (the output to register, without --diff, has them).
		src, err := encodeRegisterInput(redactTokens(patch.RegisterInput(td, tags), prof.TokenPlaintext), srcObject)
		if err != nil {
			fmt.Fprintf(e.stderr, "render: encoding the source: %v\n", err)
			return exitFail
		}
		twin, err := encodeRegisterInput(redactTokens(res.Input, prof.TokenPlaintext), srcObject)
		if err != nil {
			fmt.Fprintf(e.stderr, "render: encoding the output: %v\n", err)
			return exitFail
		}
		out = []byte(redactText(lineDiff("source", "instrumented", string(src)+"\n", string(twin)+"\n"), prof.TokenPlaintext))
	}
	if f.output != "" {
		if err := os.WriteFile(f.output, out, 0o600); err != nil {
			fmt.Fprintf(e.stderr, "render: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	if _, err := e.stdout.Write(out); err != nil {
		fmt.Fprintf(e.stderr, "render: %v\n", err)
		return exitFail
	}
	return exitOK
}

// define declares render's flags on fs, into f.
func (f *renderFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "configuration `file` to take the profile and tag prefix from")
	fs.StringVar(&f.cloudFormation, "cloudformation", "", "instrument the opted-in AWS::ECS::TaskDefinition resources of this CloudFormation template `file`\n"+
		"(YAML or JSON) as the EcsSidecar macro does, and print the template as JSON")
	fs.StringVar(&f.profile, "profile", "", "profile `name` in --config (default: the config's default profile)")
	fs.StringVar(&f.output, "output", "", "write the output to `file` instead of stdout")
	fs.BoolVar(&f.diff, "diff", false, "print a diff of the source and the instrumented revision instead")
	fs.StringVar(&f.tokenSecretArn, "token-secret-arn", "", "Secrets Manager `arn` of the agent access token (injected as a container secret)")
	fs.StringVar(&f.tokenPlaintextFile, "token-plaintext-file", "", "`file` holding the agent access token alone, put in the task definition as a plain\n"+
		"variable (needs --allow-plaintext-token; never on the command line, where other users see it)")
	fs.Var(&f.tokenOnArgv, "token-plaintext", "not accepted (a token on the command line is visible to other users): use --token-plaintext-file")
	fs.BoolVar(&f.allowPlaintext, "allow-plaintext-token", false, "accept --token-plaintext-file: the token ends up in the task definition in clear")
	fs.StringVar(&f.serverURL, "server-url", "", "agent server: US (default), EU, ANZ or an https `URL`")
	fs.StringVar(&f.laceworkConfig, "lacework-config", "", "LaceworkConfig `json`, e.g. {\"fim\":{\"mode\":\"enable\",\"coolingperiod\":\"0\"}}")
	fs.BoolVar(&f.verbose, "verbose-agent", false, "set LaceworkVerbose=true")
	fs.StringVar(&f.distroless, "distroless", "", "distroless app images: auto (default), true or false")
	fs.StringVar(&f.nonRoot, "non-root", "", "containers running as non-root: skip (default) or sudo")
	fs.StringVar(&f.sidecarImage, "sidecar-image", "", "the whole sidecar image `reference` (default lacework/datacollector:latest-sidecar)")
	fs.StringVar(&f.executionRole, "execution-role-arn", "", "execution role `arn` for task definitions that have none")
	fs.Var(&f.include, "include", "instrument only these container `names` (globs, comma-separated, repeatable)")
	fs.Var(&f.exclude, "exclude", "never instrument these container `names` (globs, comma-separated, repeatable)")
	fs.StringVar(&f.imageEntrypoint, "image-entrypoint", "", "the image's ENTRYPOINT as a JSON `array`")
	fs.StringVar(&f.imageCmd, "image-cmd", "", "the image's CMD as a JSON `array`")
	fs.StringVar(&f.imageUser, "image-user", "", "the image's USER")
	fs.StringVar(&f.imageDigest, "image-digest", "", "the image's `digest` (part of the spec hash)")
	fs.Var(&f.imageContainers, "image-container", "the container `names` the --image-* flags describe (default: every container)")
	fs.IntVar(&f.sourceRevision, "source-revision", 0, "source revision `number` for the marker tag (default: the input's revision)")
	fs.StringVar(&f.tagPrefix, "tag-prefix", "", "tag and label prefix (default: the config's, else ecs-sidecar/)")
	fs.Var(&f.imageConfigs, "image-config", "a container's image config, as `CONTAINER=FILE` with FILE from 'crane config IMAGE > FILE'\n"+
		"or 'docker image inspect IMAGE > FILE' (repeatable; wins over --image-* for that container)")
	fs.BoolVar(&f.resolveImages, "resolve-images", false, "read each container's ENTRYPOINT, CMD and USER from its registry, as ECS pulls it:\n"+
		"ECR with the AWS credentials, private registries through repositoryCredentials, others with\n"+
		"docker login's credentials (DOCKER_CONFIG, ~/.docker/config.json, credential helpers) or anonymously")
	fs.Var(&f.insecureRegistries, "insecure-registry", "with --resolve-images: a registry `host[:port]` that may be spoken to over plain http\n"+
		"(repeatable; added to the config's images.insecureRegistries)")
	fs.Var(&f.registryCAs, "registry-ca", "with --resolve-images: a PEM `file` of CA certificates trusted for registry TLS, besides the\n"+
		"system's (repeatable; added to the config's images.caFiles)")
	fs.DurationVar(&f.imageTimeout, "image-timeout", 0, "with --resolve-images: how long one image lookup may take (default: the config's\n"+
		"images.timeout, 30s)")
	fs.BoolVar(&f.pinDigest, "pin-digest", false, "with --resolve-images: run each instrumented container's image by the digest read\n"+
		"(repo@sha256:..., a multi-platform image's index digest; default: the config's images.pinDigest)")
}

// registryFlags are the flags that shape --resolve-images' lookups.
var registryFlags = []string{"insecure-registry", "registry-ca", "image-timeout", "pin-digest"}

// checkRegistryFlags refuses registry flags without --resolve-images and
// values of the wrong form (exit 2), and CA files that are not PEM
// certificates (exit 1, as for a file that cannot be read).
func (f *renderFlags) checkRegistryFlags(e env, set map[string]bool) (int, bool) {
	for _, name := range registryFlags {
		if set[name] && !f.resolveImages {
			fmt.Fprintf(e.stderr, "render: --%s shapes how --resolve-images reads the registries: give --resolve-images too\n", name)
			return exitUsage, false
		}
	}
	for _, h := range f.insecureRegistries {
		if msg := config.CheckRegistryHost(h); msg != "" {
			fmt.Fprintf(e.stderr, "render: --insecure-registry: %s\n", msg)
			return exitUsage, false
		}
	}
	if set["image-timeout"] && f.imageTimeout <= 0 {
		fmt.Fprintf(e.stderr, "render: --image-timeout: must be greater than 0, got %v\n", f.imageTimeout)
		return exitUsage, false
	}
	for _, file := range f.registryCAs {
		if msg := config.CheckCAFile(file); msg != "" {
			fmt.Fprintf(e.stderr, "render: --registry-ca: %s\n", msg)
			return exitFail, false
		}
	}
	return 0, true
}

// registryAccess is the config's images section with the registry flags
// applied: the lists are added to, the timeout and pin replaced.
func (f *renderFlags) registryAccess(im config.Images, set map[string]bool) registryAccess {
	ra := accessOf(im)
	ra.insecure = append(slices.Clone(ra.insecure), f.insecureRegistries...)
	ra.caFiles = append(slices.Clone(ra.caFiles), f.registryCAs...)
	if set["image-timeout"] {
		ra.timeout = f.imageTimeout
	}
	if set["pin-digest"] {
		ra.pinDigest = f.pinDigest
	}
	return ra
}

// renderEnv is what render takes of --config besides the profile: the aws
// section (the environment's Region without a config) and the images
// section (the defaults without one).
type renderEnv struct {
	aws        config.AWS
	images     config.Images
	configured bool // --config was given
}

// image is what the --image-* flags say of the image(s).
func (f *renderFlags) image(set map[string]bool) (patch.Image, bool, error) {
	var img patch.Image
	if !set["image-entrypoint"] && !set["image-cmd"] && !set["image-user"] && !set["image-digest"] {
		if len(f.imageContainers) > 0 {
			return img, false, errors.New("--image-container without any --image-* flag")
		}
		return img, false, nil
	}
	for _, a := range []struct {
		flag, val string
		dst       *[]string
	}{{"image-entrypoint", f.imageEntrypoint, &img.Entrypoint}, {"image-cmd", f.imageCmd, &img.Cmd}} {
		if !set[a.flag] || a.val == "" {
			continue
		}
		if err := json.Unmarshal([]byte(a.val), a.dst); err != nil {
			return img, false, fmt.Errorf("--%s: want a JSON array of strings such as [\"/bin/app\",\"--flag\"]: %v", a.flag, err)
		}
	}
	img.User, img.Digest, img.Source = f.imageUser, f.imageDigest, "flags"
	// The config is known as soon as entrypoint, cmd or user is given: an
	// image that declares no ENTRYPOINT is given as --image-entrypoint '[]'.
	img.Known = set["image-entrypoint"] || set["image-cmd"] || set["image-user"]
	return img, true, nil
}

// profileAndOptions builds the profile from --config (or the built-in
// defaults) and the profile flags.
// It also returns the config's aws and images sections (the environment's
// region and the defaults when there is no --config), for --resolve-images.
func (f *renderFlags) profileAndOptions(e env, set map[string]bool) (patch.Profile, patch.Options, renderEnv, error) {
	var p patch.Profile
	opts := patch.Options{SourceRevision: int32(f.sourceRevision)}
	awsCfg := renderEnv{aws: config.AWS{Region: e.getenv("AWS_REGION")}, images: config.Default().Images}
	if awsCfg.aws.Region == "" {
		awsCfg.aws.Region = e.getenv("AWS_DEFAULT_REGION")
	}
	if f.config != "" {
		cfg, err := config.LoadWith(f.config, e.getenv)
		if err != nil {
			return p, opts, awsCfg, fmt.Errorf("--config %s: %w", f.config, err)
		}
		prof, ok := cfg.Profile(f.profile)
		if !ok {
			return p, opts, awsCfg, fmt.Errorf("--profile %q: not in %s (profiles: %s)", f.profile, f.config, strings.Join(cfg.ProfileNames(), ", "))
		}
		p = prof
		opts.TagPrefix = cfg.TagPrefix
		awsCfg = renderEnv{aws: cfg.AWS, images: cfg.Images, configured: true}
	} else if set["profile"] {
		return p, opts, awsCfg, errors.New("--profile needs --config")
	}
	p, err := f.applyProfileFlags(p, set)
	if err != nil {
		return p, opts, awsCfg, err
	}
	str := func(name string, dst *string, v string) {
		if set[name] {
			*dst = v
		}
	}
	str("tag-prefix", &opts.TagPrefix, f.tagPrefix)
	return p, opts, awsCfg, nil
}

// applyProfileFlags applies the profile flags to p.
func (f *renderFlags) applyProfileFlags(p patch.Profile, set map[string]bool) (patch.Profile, error) {
	str := func(name string, dst *string, v string) {
		if set[name] {
			*dst = v
		}
	}
	// Either flag replaces the config's token, whichever kind.
	if set["token-secret-arn"] {
		p.TokenSecretArn, p.TokenPlaintext = f.tokenSecretArn, ""
	}
	if set["token-plaintext-file"] {
		tok, err := readTokenFile(f.tokenPlaintextFile)
		if err != nil {
			return p, err
		}
		p.TokenSecretArn, p.TokenPlaintext, p.AllowPlaintextToken = "", tok, true
	}
	str("server-url", &p.ServerURL, f.serverURL)
	str("lacework-config", &p.LaceworkConfig, f.laceworkConfig)
	if set["verbose-agent"] {
		p.Verbose = f.verbose
	}
	str("distroless", &p.Distroless, f.distroless)
	str("non-root", &p.NonRoot, f.nonRoot)
	str("sidecar-image", &p.SidecarImage, f.sidecarImage)
	str("execution-role-arn", &p.DefaultExecutionRoleArn, f.executionRole)
	if set["include"] {
		p.Containers.Include = f.include
	}
	if set["exclude"] {
		p.Containers.Exclude = f.exclude
	}
	return p, nil
}

// argvTokenFlag is --token-plaintext, which is refused: a token on the
// command line is visible to every user of the machine. Its value is
// dropped, so that no message can echo it.
type argvTokenFlag bool

func (a *argvTokenFlag) String() string   { return "" }
func (a *argvTokenFlag) Set(string) error { *a = true; return nil }

// maxTokenFile bounds what --token-plaintext-file reads: a token is short.
const maxTokenFile = 4096

// readTokenFile reads the token of --token-plaintext-file: the file's one
// word, surrounding white space (a final newline) dropped, UTF-16 decoded.
// No error names the file or shows its content: a token given in place of
// the file name must not be printed.
func readTokenFile(name string) (string, error) {
	const flagName = "--token-plaintext-file"
	fh, err := os.Open(name)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("%s: cannot open the file: %v", flagName, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("%s: cannot read the file", flagName)
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("%s: the file is larger than %d bytes: it must hold the token alone", flagName, maxTokenFile)
	}
	if b, err = utf8Text(b); err != nil {
		return "", fmt.Errorf("%s: %v", flagName, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s: the file is empty", flagName)
	}
	if strings.IndexFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 || !utf8.ValidString(tok) {
		return "", fmt.Errorf("%s: the file holds more than the token (white space or control characters inside it): it must hold the token alone", flagName)
	}
	return tok, nil
}

func readInput(e env, name string) ([]byte, error) {
	if name == "" || name == "-" {
		b, err := io.ReadAll(e.stdin)
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		return b, nil
	}
	return os.ReadFile(name)
}

// parseRenderInput accepts the three shapes people have:
// describe-task-definition output ({"taskDefinition": {...}, "tags": [...]}),
// a bare task definition, and register-task-definition --cli-input-json
// input (a task definition whose tags sit beside its members). Unknown
// members are errors: a typo must not silently drop a setting.
func parseRenderInput(data []byte) (*types.TaskDefinition, []types.Tag, error) {
	codec := awsjson.Codec{Service: awsjson.ECS, Strict: true}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, nil, fmt.Errorf("input is not a JSON object: %w", err)
	}
	if _, ok := top["taskDefinition"]; ok {
		var out ecs.DescribeTaskDefinitionOutput
		if err := codec.Unmarshal(data, &out); err != nil {
			return nil, nil, fmt.Errorf("describe-task-definition output: %w", err)
		}
		if out.TaskDefinition == nil {
			return nil, nil, errors.New("describe-task-definition output: taskDefinition is null")
		}
		return out.TaskDefinition, out.Tags, nil
	}
	if _, ok := top["containerDefinitions"]; !ok {
		return nil, nil, errors.New("input has neither taskDefinition nor containerDefinitions: not a task definition")
	}
	var tags []types.Tag
	if raw, ok := top["tags"]; ok {
		var lt ecs.ListTagsForResourceOutput
		if err := codec.Unmarshal(wrapTags(raw), &lt); err != nil {
			return nil, nil, fmt.Errorf("tags: %w", err)
		}
		tags = lt.Tags
		delete(top, "tags")
	}
	rest, err := json.Marshal(top)
	if err != nil {
		return nil, nil, err
	}
	var td types.TaskDefinition
	if err := codec.Unmarshal(rest, &td); err != nil {
		return nil, nil, fmt.Errorf("task definition: %w", err)
	}
	return &td, tags, nil
}

// encodeRegisterInput encodes in as register-task-definition input, with
// every member of the source object that SDK types cannot hold (cpu 0,
// ipcMode "", a ulimit's softLimit 0) put back as the source had it.
func encodeRegisterInput(in *ecs.RegisterTaskDefinitionInput, source json.RawMessage) ([]byte, error) {
	codec := awsjson.Codec{Service: awsjson.ECS}
	out, err := codec.MarshalIndent(in, "", "  ")
	if err != nil {
		return nil, err
	}
	return codec.RestorePresent((*ecs.RegisterTaskDefinitionInput)(nil), source, out)
}

// sourceObject is the task definition object of render's input, as its
// author wrote it: describe output's taskDefinition, or the input less its
// tags (which the twin rewrites). parseRenderInput has accepted data.
func sourceObject(data []byte) json.RawMessage {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil
	}
	if td, ok := top["taskDefinition"]; ok {
		return td
	}
	delete(top, "tags")
	b, err := json.Marshal(top)
	if err != nil {
		return nil
	}
	return b
}

func wrapTags(raw json.RawMessage) []byte {
	var b bytes.Buffer
	b.WriteString(`{"tags":`)
	b.Write(raw)
	b.WriteString(`}`)
	return b.Bytes()
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// renderCloudFormation is render --cloudformation TEMPLATE: the template's
// opted-in task definitions instrumented as the EcsSidecar macro does
// (internal/cfnmacro, the same engine and opt-in), printed as JSON. The
// profile comes from --config (each resource's profile tag, as the macro
// picks it) with the profile flags applied. Exit 1 with one refused: line
// per reason when an opted-in resource is refused, as render does.
func (f *renderFlags) renderCloudFormation(e env, set map[string]bool, nargs int, hasImage bool) int {
	for _, bad := range []string{"diff", "resolve-images", "profile", "source-revision", "tag-prefix"} {
		if set[bad] {
			fmt.Fprintf(e.stderr, "render: --cloudformation cannot be combined with --%s\n", bad)
			return exitUsage
		}
	}
	if hasImage || nargs > 0 {
		fmt.Fprintln(e.stderr, "render: --cloudformation takes the template as its value, and no --image-* flags or input file (the macro reads no image either)")
		return exitUsage
	}
	cfg := config.Default()
	if f.config != "" {
		var err error
		if cfg, err = config.LoadWith(f.config, e.getenv); err != nil {
			fmt.Fprintf(e.stderr, "render: --config %s: %v\n", f.config, err)
			return exitFail
		}
	}
	var flagErr error
	adjust := func(p patch.Profile) patch.Profile {
		q, err := f.applyProfileFlags(p, set)
		if err != nil {
			flagErr = err
			return p
		}
		return q
	}
	data, err := os.ReadFile(f.cloudFormation)
	if err != nil {
		fmt.Fprintf(e.stderr, "render: %v\n", err)
		return exitFail
	}
	tmpl, err := cfnmacro.ParseTemplate(data)
	if err != nil {
		fmt.Fprintf(e.stderr, "render: %s: %v\n", f.cloudFormation, err)
		return exitFail
	}
	out, rep, err := cfnmacro.Transform(tmpl, nil, cfnmacro.Options{Config: cfg, Adjust: adjust})
	if flagErr != nil {
		fmt.Fprintf(e.stderr, "render: %v\n", flagErr)
		return exitFail
	}
	for _, r := range rep.Resources {
		if r.Outcome == cfnmacro.Refused {
			for _, x := range r.Reasons {
				fmt.Fprintf(e.stderr, "refused: %s: %s\n", r.LogicalID, x)
			}
			continue
		}
		fmt.Fprintf(e.stderr, "resource: %s: %s (%s)\n", r.LogicalID, r.Outcome, r.Decision)
		for _, w := range r.Warnings {
			fmt.Fprintf(e.stderr, "warning: %s: %s\n", r.LogicalID, w)
		}
		for _, s := range r.Skipped {
			fmt.Fprintf(e.stderr, "skipped: %s: %s\n", r.LogicalID, s)
		}
	}
	var re *cfnmacro.RefusedError
	if errors.As(err, &re) {
		return exitFail
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "render: %s: %v\n", f.cloudFormation, err)
		return exitFail
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		fmt.Fprintf(e.stderr, "render: encoding the template: %v\n", err)
		return exitFail
	}
	b = append(b, '\n')
	if f.output != "" {
		if err := os.WriteFile(f.output, b, 0o600); err != nil {
			fmt.Fprintf(e.stderr, "render: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	if _, err := e.stdout.Write(b); err != nil {
		fmt.Fprintf(e.stderr, "render: %v\n", err)
		return exitFail
	}
	return exitOK
}
