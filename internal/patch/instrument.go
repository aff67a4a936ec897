// Package patch turns a task definition into its instrumented twin (the
// Lacework sidecar method of reference/lacework-fargate-guide.txt, or a
// custom profile of the same volumes-from pattern), recognises twins and
// already covered task definitions, rebuilds a source from its twin and
// checks an output against ECS's rules. It is pure: no I/O, no AWS calls,
// and it never mutates its inputs.
package patch

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/deepcopy"
)

// Names of the variables the lacework profile sets in app containers.
const (
	EnvAccessToken = "LaceworkAccessToken"
	EnvServerURL   = "LaceworkServerUrl"
	EnvConfig      = "LaceworkConfig"
	EnvVerbose     = "LaceworkVerbose"
	EnvDistroless  = "LaceworkDistroless"
)

// CapSysPtrace is the one capability Fargate lets a task add; the agent
// needs it to see processes of a non-root application.
const CapSysPtrace = "SYS_PTRACE"

// MaxContainers, MaxTags and MaxSize are ECS's hard limits.
const (
	MaxContainers = 10
	MaxTags       = 50
	MaxSize       = 64 * 1024
)

// SidecarMemoryReservation (MiB) is given to the sidecar only when the task
// has no task-level memory, where ECS requires a per-container value. The
// sidecar copies files and exits.
const SidecarMemoryReservation = 64

// sudoScript runs the agent script as root, then the application whatever
// the script's outcome (";" not "&&"): "$0" "$@" are the original argv.
func sudoScript(wrapper []string) string {
	return "sudo -E " + shellJoin(wrapper) + `; exec "$0" "$@"`
}

// containerPlan is what Instrument decided for one container.
type containerPlan struct {
	idx        int
	name       string
	entry, cmd []string // effective original entrypoint and command
	sudo       bool
	distroless bool
	img        Image
	// router is the FireLens log router this container must start after
	// (explicitly, since the twin adds conditions), or "".
	router string
}

// Instrument returns the instrumented twin of td, or a *Refusal listing every
// reason it cannot. tags are the source revision's tags (copied, minus
// aws: tags and old markers); images holds, per container name, what its
// image declares. td, tags and images are not modified.
func Instrument(td *types.TaskDefinition, tags []types.Tag, p Profile, images map[string]Image, opts Options) (*Result, error) {
	if td == nil {
		return nil, &Refusal{Reasons: []Reason{{Code: CodeMissingField, Detail: "no task definition"}}}
	}
	p = p.WithDefaults()
	prefix := opts.prefix()
	var refuse []Reason
	refuse = append(refuse, checkProfile(p)...)

	// The profile's own wrapper counts as running the agent too.
	class := classify(td, tags, images, opts, func(argv []string) bool { return runsAgent(argv, p) })
	switch class.Kind {
	case KindTwin:
		return nil, &Refusal{Reasons: []Reason{{Code: CodeAlreadyTwin, Detail: "twin of revision " + strconv.Itoa(int(class.SourceRevision))}}}
	case KindManualSidecar:
		return nil, &Refusal{Reasons: []Reason{{Code: CodeAlreadyCovered, Container: strings.Join(class.Containers, ","), Detail: class.Detail}}}
	case KindWindows:
		return nil, &Refusal{Reasons: []Reason{{Code: CodeWindows, Detail: class.Detail}}}
	}
	if why := inScope(td, p); why != "" {
		return nil, &Refusal{Reasons: []Reason{{Code: CodeLaunchType, Detail: why}}}
	}
	if len(td.ContainerDefinitions) == 0 {
		return nil, &Refusal{Reasons: []Reason{{Code: CodeNoContainers, Detail: "the task definition has no containers"}}}
	}
	if n := len(td.ContainerDefinitions); n >= MaxContainers {
		refuse = append(refuse, Reason{Code: CodeTooManyContainers, Detail: fmt.Sprintf("%d containers already, the sidecar would make %d (limit %d)", n, n+1, MaxContainers)})
	}
	for _, c := range td.ContainerDefinitions {
		if aws.ToString(c.Name) == p.SidecarName {
			refuse = append(refuse, Reason{Code: CodeNameCollision, Container: p.SidecarName, Detail: "a container already has the sidecar's name"})
		}
	}

	res := &Result{}
	var plans []containerPlan
	roles := map[string]Code{}
	embedded := 0
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		name := aws.ToString(c.Name)
		skip, why, role := skipBeforeImage(td, i, p, prefix)
		if role {
			roles[name] = skip
		}
		if skip != "" {
			res.Skipped = append(res.Skipped, Reason{Code: skip, Container: name, Detail: why})
			continue
		}
		img := images[name]
		entry, cmd, known := effectiveCommand(c, img)
		if !known {
			detail := "states no entryPoint and its image config is unknown"
			if len(c.Command) > 0 {
				detail = "states a command but no entryPoint, so the image's ENTRYPOINT runs, and the image config is unknown"
			}
			refuse = append(refuse, Reason{Code: CodeUnknownCommand, Container: name, Detail: detail +
				" (state the entryPoint in the task definition, or let the image be read: images.resolve in the config, render --image-config or --resolve-images)"})
			continue
		}
		if runsAgent(entry, p) {
			embedded++
			res.Skipped = append(res.Skipped, Reason{Code: SkipEmbeddedAgent, Container: name, Detail: "the entrypoint already runs the agent"})
			continue
		}
		if len(entry) == 0 && len(cmd) == 0 {
			refuse = append(refuse, Reason{Code: CodeUnknownCommand, Container: name, Detail: "neither the task definition nor the image declares a command"})
			continue
		}
		if !img.Known && aws.ToString(c.User) == "" {
			res.Warnings = append(res.Warnings, Reason{Code: WarnImageUnknown, Container: name, Detail: "image config unknown: its user was not checked (assumed root)"})
		}
		cp := containerPlan{idx: i, name: name, entry: entry, cmd: cmd, img: img, router: routerFor(td, c)}
		if p.Type == ProfileTypeLacework {
			switch p.Distroless {
			case DistrolessTrue:
				cp.distroless = true
			case DistrolessAuto:
				cp.distroless = img.HasShell != nil && !*img.HasShell
			}
		}
		user := aws.ToString(c.User)
		if user == "" {
			user = img.User
		}
		if !isRoot(user) {
			if p.NonRoot != NonRootSudo {
				res.Skipped = append(res.Skipped, Reason{Code: SkipNonRoot, Container: name, Detail: "its image runs as user " + user + " and the profile's nonRoot is skip"})
				continue
			}
			if cp.distroless {
				refuse = append(refuse, Reason{Code: CodeNonRootDistroless, Container: name, Detail: "non-root with sudo needs a shell, and the image is distroless"})
				continue
			}
			cp.sudo = true
			switch {
			case img.HasSudo == nil:
				res.Warnings = append(res.Warnings, Reason{Code: WarnNonRootSudo, Container: name, Detail: "non-root: the agent starts with sudo, whose presence in the image is unverified"})
			case !*img.HasSudo:
				res.Warnings = append(res.Warnings, Reason{Code: WarnNonRootNoSudo, Container: name, Detail: "non-root: the image has no sudo, the application starts without the agent"})
			}
		}
		if aws.ToBool(c.ReadonlyRootFilesystem) {
			refuse = append(refuse, Reason{Code: CodeReadonlyRootFS, Container: name, Detail: "the agent script writes to the root filesystem"})
			continue
		}
		plans = append(plans, cp)
	}
	if len(plans) == 0 && len(refuse) == 0 {
		if embedded > 0 {
			return nil, &Refusal{Reasons: []Reason{{Code: CodeAlreadyCovered, Detail: "every selected container already runs the agent"}}}
		}
		return nil, &Refusal{Reasons: []Reason{{Code: CodeNoContainers, Detail: "no container selected for instrumentation" + skipSummary(res.Skipped)}}}
	}

	// The token, and the execution role its secret needs.
	tok := tokenPlan(p)
	needSecret := false
	for _, cp := range plans {
		c := &td.ContainerDefinitions[cp.idx]
		for _, s := range tok.secrets {
			if !hasVar(c, s.name) {
				needSecret = true
			}
		}
	}
	// The default execution role is given only to a task definition that
	// would use it for nothing but the token: ECS resolves every secret of
	// the task with it, so the source's own would become readable through
	// the reconciler's role (its PassRole), a privilege the source's author
	// did not have.
	defaultRole := false
	if needSecret && aws.ToString(td.ExecutionRoleArn) == "" {
		own := ownSecretRefs(td)
		switch {
		case p.DefaultExecutionRoleArn == "":
			refuse = append(refuse, Reason{Code: CodeNoExecutionRole, Detail: "the token secret needs an execution role and neither the task definition nor the profile names one"})
		case len(own) > 0:
			refuse = append(refuse, Reason{Code: CodeNoExecutionRole, Detail: "the token secret needs an execution role, and the task definition has none but references secrets or registry credentials of its own (" +
				strings.Join(own, "; ") + "): the profile's defaultExecutionRoleArn is not given to it, since ECS would resolve those with it and they would become readable through the reconciler's role; " +
				"give the task definition its own executionRoleArn (one that may read them and the token secret)"})
		default:
			defaultRole = true
			res.Warnings = append(res.Warnings, Reason{Code: WarnDefaultExecutionRole, Detail: "executionRoleArn set from the profile's defaultExecutionRoleArn"})
		}
	}
	if len(refuse) > 0 {
		return nil, &Refusal{Reasons: refuse}
	}
	if tok.warn != "" {
		res.Warnings = append(res.Warnings, Reason{Code: tok.warn, Detail: tok.warnDetail})
	}

	rev := opts.SourceRevision
	if rev == 0 {
		rev = td.Revision
	}
	in := registerInput(td)
	res.Spec = specHash(p, prefix, in, plans, roles)

	for _, cp := range plans {
		c := &in.ContainerDefinitions[cp.idx]
		applyPatch(c, cp, p, tok, prefix)
		res.Instrumented = append(res.Instrumented, cp.name)
	}
	if defaultRole {
		in.ExecutionRoleArn = aws.String(p.DefaultExecutionRoleArn)
	}
	side := sidecar(p, in, &in.ContainerDefinitions[plans[0].idx], prefix, rev, res.Spec, defaultRole)
	in.ContainerDefinitions = append([]types.ContainerDefinition{side}, in.ContainerDefinitions...)

	in.Tags = twinTags(tags, prefix, rev, res.Spec)
	if rev == 0 {
		res.Warnings = append(res.Warnings, Reason{Code: WarnNoSourceRevision, Detail: "source revision unknown: no source tag written"})
	}
	res.Input = in
	if rs := Validate(in, res.Instrumented); len(rs) > 0 {
		return nil, &Refusal{Reasons: rs}
	}
	return res, nil
}

// ownSecretRefs lists what of td's own ECS would fetch with the task
// execution role, other than images and logs: container secrets,
// repositoryCredentials, logConfiguration.secretOptions, environmentFiles
// (S3 objects), a FireLens configuration file in S3, and the credentials of
// an FSx for Windows File Server volume. Names only, never values or ARNs.
func ownSecretRefs(td *types.TaskDefinition) []string {
	var out []string
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		at := "container " + aws.ToString(c.Name) + ": "
		if len(c.Secrets) > 0 {
			out = append(out, at+"secrets "+secretNames(c.Secrets))
		}
		if c.RepositoryCredentials != nil {
			out = append(out, at+"repositoryCredentials")
		}
		if lc := c.LogConfiguration; lc != nil && len(lc.SecretOptions) > 0 {
			out = append(out, at+"logConfiguration.secretOptions "+secretNames(lc.SecretOptions))
		}
		if len(c.EnvironmentFiles) > 0 {
			out = append(out, at+"environmentFiles")
		}
		if fc := c.FirelensConfiguration; fc != nil && strings.EqualFold(fc.Options["config-file-type"], "s3") {
			out = append(out, at+"firelensConfiguration config file in S3")
		}
	}
	for _, v := range td.Volumes {
		if fx := v.FsxWindowsFileServerVolumeConfiguration; fx != nil && fx.AuthorizationConfig != nil && aws.ToString(fx.AuthorizationConfig.CredentialsParameter) != "" {
			out = append(out, "volume "+aws.ToString(v.Name)+": FSx for Windows File Server credentials")
		}
	}
	return out
}

func secretNames(ss []types.Secret) string {
	ns := make([]string, len(ss))
	for i, s := range ss {
		ns[i] = aws.ToString(s.Name)
	}
	return strings.Join(ns, ", ")
}

// skipBeforeImage says why container i is left alone, from the task
// definition alone (role is true for a role: router, proxy, init, agent),
// or "" when the decision needs its image.
func skipBeforeImage(td *types.TaskDefinition, i int, p Profile, prefix string) (skip Code, why string, role bool) {
	c := &td.ContainerDefinitions[i]
	if skip, why = roleOf(td, i, p.agentImages()); skip != "" {
		return skip, why, true
	}
	if skip, why = selectContainer(c, p, prefix); skip != "" {
		return skip, why, false
	}
	if p.NonRoot != NonRootSudo && !isRoot(aws.ToString(c.User)) {
		return SkipNonRoot, "runs as user " + aws.ToString(c.User) + " and the profile's nonRoot is skip", false
	}
	return "", "", false
}

// ImageCandidates returns td with only the containers whose image config
// Instrument may read (a shallow copy; td itself when that is all of them):
// the others are left alone from the task definition alone, so their
// images need not be fetched.
func ImageCandidates(td *types.TaskDefinition, p Profile, opts Options) *types.TaskDefinition {
	p = p.WithDefaults()
	keep := make([]types.ContainerDefinition, 0, len(td.ContainerDefinitions))
	for i := range td.ContainerDefinitions {
		if skip, _, _ := skipBeforeImage(td, i, p, opts.prefix()); skip == "" {
			keep = append(keep, td.ContainerDefinitions[i])
		}
	}
	if len(keep) == len(td.ContainerDefinitions) {
		return td
	}
	cp := *td
	cp.ContainerDefinitions = keep
	return &cp
}

// checkProfile reports the profile options Instrument cannot use.
func checkProfile(p Profile) []Reason {
	var rs []Reason
	bad := func(f string, a ...any) {
		rs = append(rs, Reason{Code: CodeInvalidProfile, Detail: fmt.Sprintf(f, a...)})
	}
	switch p.Type {
	case ProfileTypeLacework:
		if _, err := serverURL(p.ServerURL); err != nil {
			bad("serverUrl: %v", err)
		}
		if p.TokenPlaintext != "" && !p.AllowPlaintextToken {
			bad("tokenPlaintext is set but allowPlaintextToken is not")
		}
		if p.TokenPlaintext != "" && p.TokenSecretArn != "" {
			bad("both tokenSecretArn and tokenPlaintext are set")
		}
		if p.LaceworkConfig != "" && !json.Valid([]byte(p.LaceworkConfig)) {
			bad("laceworkConfig is not JSON")
		}
	case ProfileTypeCustom:
		if p.Custom == nil || len(p.Custom.Wrapper) == 0 {
			bad("a custom profile needs custom.wrapper")
		}
		if p.SidecarImage == "" {
			bad("a custom profile needs sidecarImage")
		}
		if p.Custom != nil && p.Custom.DependsOnCondition != "" {
			switch types.ContainerCondition(p.Custom.DependsOnCondition) {
			case types.ContainerConditionStart, types.ContainerConditionComplete,
				types.ContainerConditionSuccess, types.ContainerConditionHealthy:
			default:
				bad("custom.dependsOnCondition %q is not START, COMPLETE, SUCCESS or HEALTHY", p.Custom.DependsOnCondition)
			}
		}
	default:
		bad("unknown profile type %q", p.Type)
	}
	switch p.Distroless {
	case DistrolessAuto, DistrolessTrue, DistrolessFalse:
	default:
		bad("distroless %q is not auto, true or false", p.Distroless)
	}
	switch p.NonRoot {
	case NonRootSkip, NonRootSudo:
	default:
		bad("nonRoot %q is not skip or sudo", p.NonRoot)
	}
	for _, lt := range p.LaunchTypes {
		if !slices.Contains(LaunchTypes(), lt) {
			bad("launchTypes: %q is not one of %s", lt, strings.Join(LaunchTypes(), ", "))
		}
	}
	for _, pat := range p.AgentImages {
		if _, err := path.Match(pat, ""); err != nil {
			bad("agentImages: %q is not a pattern: %v", pat, err)
		}
	}
	if p.SidecarName == "" || strings.ContainsAny(p.SidecarName, " /:") {
		bad("sidecarName %q is not a container name", p.SidecarName)
	}
	return rs
}

// serverURL maps the profile's serverUrl to the LaceworkServerUrl value
// ("" for US: the agent's default).
func serverURL(s string) (string, error) {
	switch strings.ToUpper(s) {
	case "", ServerUS:
		return "", nil
	case ServerEU:
		return ServerURLEU, nil
	case ServerANZ:
		return ServerURLANZ, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q is not US, EU, ANZ or an https URL", s)
	}
	return s, nil
}

// selectContainer says why a container is left alone ("" when it is not).
func selectContainer(c *types.ContainerDefinition, p Profile, prefix string) (Code, string) {
	name := aws.ToString(c.Name)
	if v, ok := c.DockerLabels[prefix+KeyInject]; ok && strings.EqualFold(v, "false") {
		return SkipLabelOptOut, "docker label " + prefix + KeyInject + "=false"
	}
	if len(p.Containers.Include) > 0 {
		if !matchAny(p.Containers.Include, name) {
			return SkipNotIncluded, "not in the profile's containers.include"
		}
	} else if c.Essential != nil && !*c.Essential {
		return SkipNotEssential, "not essential"
	}
	if matchAny(p.Containers.Exclude, name) {
		return SkipExcluded, "in the profile's containers.exclude"
	}
	return "", ""
}

// matchAny reports whether name equals or matches (path.Match) a pattern.
func matchAny(patterns []string, name string) bool {
	for _, pat := range patterns {
		if pat == name {
			return true
		}
		if ok, err := path.Match(pat, name); err == nil && ok {
			return true
		}
	}
	return false
}

// effectiveCommand applies Docker's merge rules (aws-facts.md §5): known is
// false when the image config is needed and unknown.
func effectiveCommand(c *types.ContainerDefinition, img Image) (entry, cmd []string, known bool) {
	if len(c.EntryPoint) > 0 {
		// The image CMD is not used when the container sets an entrypoint.
		return c.EntryPoint, c.Command, true
	}
	if !img.Known {
		return nil, nil, false
	}
	if len(c.Command) > 0 {
		return img.Entrypoint, c.Command, true
	}
	return img.Entrypoint, img.Cmd, true
}

// isRoot reports whether a Docker user spec ("user", "uid", "user:group")
// runs as root. The empty user is root.
func isRoot(user string) bool {
	u, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	return u == "" || u == "root" || u == "0"
}

// runsAgent reports whether argv already starts the agent: the lacework
// sidecar script (directly, through the distroless shell, or in an sh -c
// string), or a custom profile's wrapper.
func runsAgent(argv []string, p Profile) bool {
	if runsScript(argv) {
		return true
	}
	if p.Type == ProfileTypeCustom && p.Custom != nil && len(p.Custom.Wrapper) > 0 && len(argv) > 0 {
		if argv[0] == p.Custom.Wrapper[0] {
			return true
		}
		if isShellC(argv) && strings.Contains(argv[2], p.Custom.Wrapper[0]) {
			return true
		}
	}
	return false
}

func runsScript(argv []string) bool {
	const base = "/lacework-sidecar.sh"
	switch {
	case len(argv) == 0:
		return false
	case argv[0] == SidecarScript || strings.HasSuffix(argv[0], base):
		return true
	case len(argv) > 1 && strings.HasSuffix(argv[1], base):
		return true // the distroless shell, or sh script.sh
	case isShellC(argv) && strings.Contains(argv[2], "lacework-sidecar.sh"):
		return true
	}
	return false
}

func isShellC(argv []string) bool {
	if len(argv) < 3 || argv[1] != "-c" {
		return false
	}
	switch path.Base(argv[0]) {
	case "sh", "bash", "ash", "dash":
		return true
	}
	return false
}

// shellJoin quotes argv for sh when a word needs it.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-=:+,@%") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

// hasVar reports whether a container already defines name, as a variable
// or a secret: such names win over the profile's.
func hasVar(c *types.ContainerDefinition, name string) bool {
	for _, e := range c.Environment {
		if aws.ToString(e.Name) == name {
			return true
		}
	}
	for _, s := range c.Secrets {
		if aws.ToString(s.Name) == name {
			return true
		}
	}
	return false
}

type nameValue struct{ name, value string }

// injection is what the profile adds to each instrumented container.
type injection struct {
	env, secrets []nameValue
	warn         Code
	warnDetail   string
}

// tokenPlan computes the variables and secrets of a profile, in a fixed order.
func tokenPlan(p Profile) injection {
	var inj injection
	if p.Type == ProfileTypeCustom {
		if p.Custom != nil {
			for _, k := range slices.Sorted(maps.Keys(p.Custom.Environment)) {
				inj.env = append(inj.env, nameValue{k, p.Custom.Environment[k]})
			}
			for _, k := range slices.Sorted(maps.Keys(p.Custom.Secrets)) {
				inj.secrets = append(inj.secrets, nameValue{k, p.Custom.Secrets[k]})
			}
		}
		return inj
	}
	switch {
	case p.TokenSecretArn != "":
		inj.secrets = append(inj.secrets, nameValue{EnvAccessToken, p.TokenSecretArn})
	case p.TokenPlaintext != "":
		inj.env = append(inj.env, nameValue{EnvAccessToken, p.TokenPlaintext})
		inj.warn, inj.warnDetail = WarnPlaintextToken, "the access token is in the task definition as plain text"
	default:
		inj.warn, inj.warnDetail = WarnNoToken, "no token configured: the image's config.json or the container's own variables must provide it"
	}
	if u, _ := serverURL(p.ServerURL); u != "" {
		inj.env = append(inj.env, nameValue{EnvServerURL, u})
	}
	if p.LaceworkConfig != "" {
		inj.env = append(inj.env, nameValue{EnvConfig, p.LaceworkConfig})
	}
	if p.Verbose {
		inj.env = append(inj.env, nameValue{EnvVerbose, "true"})
	}
	return inj
}

// patchRecord is written, as JSON, in the KeyPatch label of each
// instrumented container: what Source needs to undo the patch exactly.
// Counts are of the items appended at the end of each list.
type patchRecord struct {
	EntryPoint      []string `json:"entryPoint,omitempty"`
	Command         []string `json:"command,omitempty"`
	Environment     int      `json:"environment,omitempty"`
	Secrets         int      `json:"secrets,omitempty"`
	VolumesFrom     int      `json:"volumesFrom,omitempty"`
	DependsOn       int      `json:"dependsOn,omitempty"`
	CapAdd          int      `json:"capAdd,omitempty"`
	LinuxParameters string   `json:"linuxParameters,omitempty"` // "created" or "capabilities": what was nil
	// Image is the source's image reference when the twin's was pinned to
	// a digest (Image.Pin).
	Image string `json:"image,omitempty"`
}

// applyPatch instruments container c (a copy the caller owns).
func applyPatch(c *types.ContainerDefinition, cp containerPlan, p Profile, inj injection, prefix string) {
	rec := patchRecord{EntryPoint: c.EntryPoint, Command: c.Command}
	if pin := cp.img.Pin; pin != "" && cp.img.Known && pin != aws.ToString(c.Image) {
		rec.Image = aws.ToString(c.Image)
		c.Image = aws.String(pin)
	}

	var wrapper []string
	if p.Type == ProfileTypeCustom {
		wrapper = append(wrapper, p.Custom.Wrapper...)
	} else if cp.distroless {
		wrapper = []string{DistrolessShell, SidecarScript}
	} else {
		wrapper = []string{SidecarScript}
	}
	if cp.sudo {
		wrapper = []string{"sh", "-c", sudoScript(wrapper)}
	}
	entry := make([]string, 0, len(wrapper)+len(cp.entry))
	entry = append(append(entry, wrapper...), cp.entry...)
	c.EntryPoint = entry
	if len(cp.cmd) > 0 {
		c.Command = append([]string(nil), cp.cmd...)
	} else {
		c.Command = nil
	}

	env := inj.env
	if cp.distroless {
		env = append(env[:len(env):len(env)], nameValue{EnvDistroless, "true"})
	}
	for _, kv := range env {
		if !hasVar(c, kv.name) {
			c.Environment = append(c.Environment, types.KeyValuePair{Name: aws.String(kv.name), Value: aws.String(kv.value)})
			rec.Environment++
		}
	}
	for _, kv := range inj.secrets {
		if !hasVar(c, kv.name) {
			c.Secrets = append(c.Secrets, types.Secret{Name: aws.String(kv.name), ValueFrom: aws.String(kv.value)})
			rec.Secrets++
		}
	}

	hasVolume := false
	for _, v := range c.VolumesFrom {
		hasVolume = hasVolume || aws.ToString(v.SourceContainer) == p.SidecarName
	}
	if !hasVolume {
		c.VolumesFrom = append(c.VolumesFrom, types.VolumeFrom{SourceContainer: aws.String(p.SidecarName), ReadOnly: aws.Bool(true)})
		rec.VolumesFrom++
	}
	if cp.router != "" {
		c.DependsOn = append(c.DependsOn, types.ContainerDependency{ContainerName: aws.String(cp.router), Condition: types.ContainerConditionStart})
		rec.DependsOn++
	}
	hasDep := false
	for _, d := range c.DependsOn {
		hasDep = hasDep || aws.ToString(d.ContainerName) == p.SidecarName
	}
	if !hasDep {
		cond := types.ContainerConditionSuccess
		if p.Custom != nil && p.Type == ProfileTypeCustom && p.Custom.DependsOnCondition != "" {
			cond = types.ContainerCondition(p.Custom.DependsOnCondition)
		}
		c.DependsOn = append(c.DependsOn, types.ContainerDependency{ContainerName: aws.String(p.SidecarName), Condition: cond})
		rec.DependsOn++
	}

	if cp.sudo {
		if c.LinuxParameters == nil {
			c.LinuxParameters = &types.LinuxParameters{}
			rec.LinuxParameters = "created"
		}
		if c.LinuxParameters.Capabilities == nil {
			c.LinuxParameters.Capabilities = &types.KernelCapabilities{}
			if rec.LinuxParameters == "" {
				rec.LinuxParameters = "capabilities"
			}
		}
		caps := c.LinuxParameters.Capabilities
		has := false
		for _, a := range caps.Add {
			has = has || strings.EqualFold(a, CapSysPtrace)
		}
		if !has {
			caps.Add = append(caps.Add, CapSysPtrace)
			rec.CapAdd++
		}
	}

	b, _ := json.Marshal(rec) // a struct of strings and ints cannot fail
	labels := make(map[string]string, len(c.DockerLabels)+1)
	for k, v := range c.DockerLabels {
		labels[k] = v
	}
	labels[prefix+KeyPatch] = string(b)
	c.DockerLabels = labels
}

// sidecar builds the sidecar container. Its log configuration is the first
// instrumented container's (the FireLens router's own when that container
// logs through the router), with the sidecar's own awslogs stream prefix.
func sidecar(p Profile, in *ecs.RegisterTaskDefinitionInput, app *types.ContainerDefinition, prefix string, rev int32, spec string, defaultRole bool) types.ContainerDefinition {
	c := types.ContainerDefinition{
		Name:      aws.String(p.SidecarName),
		Image:     aws.String(p.SidecarImage),
		Essential: aws.Bool(false),
		Cpu:       0,
		DockerLabels: map[string]string{
			prefix + KeySpec: spec,
		},
	}
	if rev != 0 {
		c.DockerLabels[prefix+KeySource] = strconv.Itoa(int(rev))
	} else {
		c.DockerLabels[prefix+KeySource] = "0"
	}
	if defaultRole {
		c.DockerLabels[prefix+KeyExecutionRole] = "defaulted"
	}
	if in.Memory == nil {
		c.MemoryReservation = aws.Int32(SidecarMemoryReservation)
	}
	lc := app.LogConfiguration
	if lc != nil && lc.LogDriver == types.LogDriverAwsfirelens {
		// The app logs through the FireLens router. The router's own log
		// configuration (usually awslogs) serves the sidecar without making
		// it wait for the router or mixing its lines with the app's.
		if r := routerLog(in.ContainerDefinitions); r != nil && r.LogDriver != types.LogDriverAwsfirelens {
			lc = r
		}
	}
	if lc != nil {
		cp := deepcopy.Of(*lc)
		if cp.LogDriver == types.LogDriverAwslogs {
			opts := make(map[string]string, len(cp.Options)+1)
			for k, v := range cp.Options {
				opts[k] = v
			}
			opts["awslogs-stream-prefix"] = p.LogStreamPrefix
			cp.Options = opts
		}
		c.LogConfiguration = &cp
		if cp.LogDriver == types.LogDriverAwsfirelens {
			// The sidecar logs to the router, so it starts after it; a
			// router that waits for other containers could wait for the
			// sidecar through them, so the sidecar does not log there.
			if r, free := firelensRouterFree(in.ContainerDefinitions); free {
				c.DependsOn = []types.ContainerDependency{{ContainerName: aws.String(r), Condition: types.ContainerConditionStart}}
			} else {
				c.LogConfiguration = nil
			}
		}
	}
	return c
}

// twinTags copies the source's tags minus aws: tags and old markers, and
// adds the twin's markers.
func twinTags(tags []types.Tag, prefix string, rev int32, spec string) []types.Tag {
	out := make([]types.Tag, 0, len(tags)+2)
	for _, t := range tags {
		k := aws.ToString(t.Key)
		if isReservedTag(k) || isMarker(k, prefix) {
			continue
		}
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(aws.ToString(t.Value))})
	}
	if rev != 0 {
		out = append(out, types.Tag{Key: aws.String(prefix + KeySource), Value: aws.String(strconv.Itoa(int(rev)))})
	}
	out = append(out, types.Tag{Key: aws.String(prefix + KeySpec), Value: aws.String(spec)})
	return out
}

func isReservedTag(k string) bool {
	return len(k) >= 4 && strings.EqualFold(k[:4], "aws:")
}

func isMarker(k, prefix string) bool {
	switch k {
	case prefix + KeySource, prefix + KeySpec, prefix + KeyFailed:
		return true
	}
	return false
}

// skipSummary lists skipped containers and their codes, for a refusal's detail.
func skipSummary(skipped []Reason) string {
	if len(skipped) == 0 {
		return ""
	}
	parts := make([]string, len(skipped))
	for i, r := range skipped {
		parts[i] = r.Container + " " + string(r.Code)
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
