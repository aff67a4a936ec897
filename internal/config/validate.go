package config

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ecs-sidecar/reconciler/internal/patch"
	"github.com/ecs-sidecar/reconciler/internal/policy"
)

// Validate reports every problem of c at once, joined with errors.Join, each
// a *FieldError ("queue.waitTimeSeconds: must be between 0 and 20"). It
// checks what holds for every subcommand; ValidateRun adds what `run` needs.
// No message ever contains the value of tokenPlaintext.
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { fieldErr(&errs, path, format, args...) }

	// aws
	if c.AWS.Region != "" && !regionRE.MatchString(c.AWS.Region) {
		add("aws.region", "%q is not a Region name such as us-east-1", c.AWS.Region)
	}
	if c.AWS.Endpoint != "" {
		if msg := checkHTTPURL(c.AWS.Endpoint); msg != "" {
			add("aws.endpoint", "%s", msg)
		}
	}
	intRange(add, "aws.maxAttempts", c.AWS.MaxAttempts, 1, 10)
	if !(c.AWS.APIBudget.Share > 0 && c.AWS.APIBudget.Share <= 1) {
		add("aws.apiBudget.share", "must be greater than 0 and at most 1")
	}
	scale := c.AWS.APIBudget.BucketScale
	if !(scale > 0 && scale <= MaxBucketScale) {
		add("aws.apiBudget.bucketScale", "must be greater than 0 and at most %d", MaxBucketScale)
		scale = 1
	}

	// queue
	if c.Queue.URL != "" {
		if msg := checkQueueURL(c.Queue.URL); msg != "" {
			add("queue.url", "%s", msg)
		}
	}
	intRange(add, "queue.waitTimeSeconds", c.Queue.WaitTimeSeconds, 0, 20)
	if v := c.Queue.VisibilityTimeout.Duration; v < time.Second || v > 12*time.Hour || v%time.Second != 0 {
		add("queue.visibilityTimeout", "must be whole seconds between 1s and 12h")
	} else if h, lo := c.Queue.MaxHold.Duration, minMaxHold(v); h < lo || h > MaxMaxHold {
		add("queue.maxHold", "must be between 3 times queue.visibilityTimeout (%s) and 12h", D(lo))
	}
	intRange(add, "queue.maxMessages", c.Queue.MaxMessages, 1, 10)

	// sweeps
	positiveDuration(add, "sweeps.services.interval", c.Sweeps.Services.Interval, time.Second)
	fraction(add, "sweeps.services.jitter", c.Sweeps.Services.Jitter)
	positiveDuration(add, "sweeps.families.interval", c.Sweeps.Families.Interval, time.Second)
	fraction(add, "sweeps.families.jitter", c.Sweeps.Families.Jitter)
	if r := c.Sweeps.Families.MaxCallsPerSecond; !(r > 0 && r <= 20*scale) {
		if scale == 1 {
			add("sweeps.families.maxCallsPerSecond", "must be greater than 0 and at most 20 (the refill rate of the task definition read bucket)")
		} else {
			add("sweeps.families.maxCallsPerSecond", "must be greater than 0 and at most %g (20, the refill rate of the task definition read bucket, times aws.apiBudget.bucketScale)", 20*scale)
		}
	}

	c.Leases.validate(add)

	intRange(add, "workers", c.Workers, 1, 64)
	oneOf(add, "mode", c.Mode, policy.ModeEnforce, policy.ModeAudit, policy.ModeRemove)
	if msg := checkTagPrefix(c.TagPrefix); msg != "" {
		add("tagPrefix", "%s", msg)
	}
	switch {
	case len(c.OwnerTag) > 128:
		add("ownerTag", "must be at most 128 characters (an ECS tag key)")
	case strings.HasPrefix(strings.ToLower(c.OwnerTag), "aws:"):
		add("ownerTag", "must not start with aws: (reserved; CloudFormation's aws:cloudformation:* tags are recognised without it)")
	}

	// rollouts
	if c.Rollouts.MaxInFlight < 1 {
		add("rollouts.maxInFlight", "must be at least 1")
	}
	if c.Rollouts.MaxInFlightPerCluster < 1 {
		add("rollouts.maxInFlightPerCluster", "must be at least 1")
	} else if c.Rollouts.MaxInFlight >= 1 && c.Rollouts.MaxInFlightPerCluster > c.Rollouts.MaxInFlight {
		add("rollouts.maxInFlightPerCluster", "must not exceed rollouts.maxInFlight (%d)", c.Rollouts.MaxInFlight)
	}
	if c.Rollouts.RampStart < 0 || c.Rollouts.MaxInFlight >= 1 && c.Rollouts.RampStart > c.Rollouts.MaxInFlight {
		add("rollouts.rampStart", "must be between 0 (no ramp) and rollouts.maxInFlight (%d)", c.Rollouts.MaxInFlight)
	}
	positiveDuration(add, "rollouts.deadline", c.Rollouts.Deadline, time.Second)
	positiveDuration(add, "rollouts.poll", c.Rollouts.Poll, 100*time.Millisecond)
	intRange(add, "rollouts.contestedAfter", c.Rollouts.ContestedAfter, 0, 100)
	positiveDuration(add, "rollouts.contestedWindow", c.Rollouts.ContestedWindow, time.Minute)
	positiveDuration(add, "images.tagTTL", c.Images.TagTTL, time.Second)
	c.Images.validate(add)
	oneOf(add, "rollouts.onOptOut", c.Rollouts.OnOptOut, OnOptOutRevert, OnOptOutLeave)

	// audit, metrics, log
	if b := c.Audit.EventBus; b != "" && !eventBusNameRE.MatchString(b) {
		if a, ok := parseARN(b); !ok || a.service != "events" || !strings.HasPrefix(a.resource, "event-bus/") || !eventBusNameRE.MatchString(strings.TrimPrefix(a.resource, "event-bus/")) {
			add("audit.eventBus", "must be an event bus name or an arn:...:events:<region>:<account>:event-bus/<name> ARN")
		}
	}
	if msg := checkListen(c.Metrics.Listen); msg != "" {
		add("metrics.listen", "%s", msg)
	}
	oneOf(add, "log.format", c.Log.Format, LogFormatJSON, LogFormatText)
	oneOf(add, "log.level", c.Log.Level, "debug", "info", "warn", "error")

	// profiles
	for _, name := range c.ProfileNames() {
		p := joinKey("profiles", name)
		if !profileNameRE.MatchString(name) {
			add(p, "profile name must be 1-64 letters, digits, '-', '_' or '.' (it is written in tag values and metric labels)")
		}
		validateProfile(add, p, c.Profiles[name])
	}
	if _, ok := c.Profiles[c.DefaultProfile]; !ok {
		add("defaultProfile", "unknown profile %q", c.DefaultProfile)
	}
	c.profileList(add, "tagProfiles", c.TagProfiles)

	// policies
	seen := map[string]int{}
	for i, r := range c.Policies {
		p := joinIndex("policies", i)
		if r.Name == "" {
			add(p+".name", "required")
		} else if j, dup := seen[r.Name]; dup {
			add(p+".name", "%q is already the name of policies[%d]", r.Name, j)
		} else {
			seen[r.Name] = i
		}
		globs(add, p+".families.include", r.Families.Include)
		globs(add, p+".families.exclude", r.Families.Exclude)
		globs(add, p+".clusters", r.Clusters)
		if r.OptIn != "" {
			oneOf(add, p+".optIn", r.OptIn, policy.OptInTag, policy.OptInAlways)
		}
		if r.Profile != "" {
			if _, ok := c.Profiles[r.Profile]; !ok {
				add(p+".profile", "unknown profile %q", r.Profile)
			}
		}
		if r.Mode != "" {
			oneOf(add, p+".mode", r.Mode, policy.ModeEnforce, policy.ModeAudit, policy.ModeRemove)
		}
		c.profileList(add, p+".tagProfiles", r.TagProfiles)
	}
	return errors.Join(errs...)
}

// profileList checks a list of profile names (tagProfiles).
func (c *Config) profileList(add func(string, string, ...any), base string, names []string) {
	for i, name := range names {
		if _, ok := c.Profiles[name]; !ok {
			add(joinIndex(base, i), "unknown profile %q", name)
		} else if slices.Index(names, name) < i {
			add(joinIndex(base, i), "%q is listed twice", name)
		}
	}
}

// ValidateRun is Validate plus what `reconciler run` needs: a queue URL
// (unless embedded, where the embedded AWS provides the queue). A lacework
// profile without a token is allowed, as the guide allows the token to come
// from the image's config.json or the container's own variables: the patch
// injects none and warns (LaceworkProfilesWithoutToken lists them).
func (c *Config) ValidateRun(embedded bool) error {
	var errs []error
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if !embedded && c.Queue.URL == "" {
		fieldErr(&errs, "queue.url", "required by run (or use --embedded)")
	}
	if embedded && c.Leases.Enabled() && c.Leases.Endpoint == "" {
		fieldErr(&errs, "leases.endpoint", "required with --embedded and leases.table: the embedded AWS serves no DynamoDB")
	}
	return errors.Join(errs...)
}

// LaceworkProfilesWithoutToken names the lacework profiles that inject no
// access token (neither tokenSecretArn nor tokenPlaintext), for a warning.
func (c *Config) LaceworkProfilesWithoutToken() []string {
	var out []string
	for _, name := range c.ProfileNames() {
		p, _ := c.Profile(name)
		if p.Type == patch.ProfileTypeLacework && p.TokenSecretArn == "" && p.TokenPlaintext == "" {
			out = append(out, name)
		}
	}
	return out
}

func validateProfile(add func(string, string, ...any), base string, raw patch.Profile) {
	at := func(key string) string { return base + "." + key }
	p := raw.WithDefaults()

	if !oneOf(add, at("type"), p.Type, patch.ProfileTypeLacework, patch.ProfileTypeCustom) {
		return // the other checks depend on the type
	}
	if !containerNameRE.MatchString(p.SidecarName) {
		add(at("sidecarName"), "must be 1-255 letters, digits, hyphens or underscores")
	}
	if p.Type == patch.ProfileTypeCustom && raw.SidecarImage == "" {
		add(at("sidecarImage"), "required for a custom profile")
	} else if !validImageRef(p.SidecarImage) {
		add(at("sidecarImage"), "%q is not an image reference such as registry/repository:tag or repository@sha256:<64 hex>", p.SidecarImage)
	}
	if len(p.LogStreamPrefix) > 512 || strings.ContainsAny(p.LogStreamPrefix, ":*") {
		add(at("logStreamPrefix"), "must be at most 512 characters, without ':' or '*'")
	}

	// The token. Never echo TokenPlaintext.
	if p.TokenSecretArn != "" {
		if msg := checkSecretRef(p.TokenSecretArn); msg != "" {
			add(at("tokenSecretArn"), "%s", msg)
		}
	}
	if p.TokenPlaintext != "" {
		if !p.AllowPlaintextToken {
			add(at("tokenPlaintext"), "requires allowPlaintextToken: true (prefer tokenSecretArn)")
		}
		if p.TokenSecretArn != "" {
			add(at("tokenPlaintext"), "cannot be combined with tokenSecretArn")
		}
	}
	if p.DefaultExecutionRoleArn != "" {
		if msg := checkRoleARN(p.DefaultExecutionRoleArn); msg != "" {
			add(at("defaultExecutionRoleArn"), "%s", msg)
		}
	}

	switch p.ServerURL {
	case patch.ServerUS, patch.ServerEU, patch.ServerANZ:
	default:
		if u, err := url.Parse(p.ServerURL); err != nil || u.Scheme != "https" || u.Host == "" {
			add(at("serverUrl"), "must be US, EU, ANZ or an https URL")
		}
	}
	if p.LaceworkConfig != "" {
		var obj map[string]any
		if err := json.Unmarshal([]byte(p.LaceworkConfig), &obj); err != nil || obj == nil {
			add(at("laceworkConfig"), "must be a JSON object, such as {\"fim\":{\"mode\":\"enable\"}}")
		}
	}
	oneOf(add, at("distroless"), p.Distroless, patch.DistrolessAuto, patch.DistrolessTrue, patch.DistrolessFalse)
	oneOf(add, at("nonRoot"), p.NonRoot, patch.NonRootSkip, patch.NonRootSudo)
	globs(add, at("containers.include"), p.Containers.Include)
	globs(add, at("containers.exclude"), p.Containers.Exclude)
	globs(add, at("agentImages"), p.AgentImages)
	for i, lt := range p.LaunchTypes {
		oneOf(add, joinIndex(at("launchTypes"), i), lt, patch.LaunchTypes()...)
	}

	switch {
	case p.Type == patch.ProfileTypeLacework && p.Custom != nil:
		add(at("custom"), "only for type custom")
	case p.Type == patch.ProfileTypeCustom && p.Custom == nil:
		add(at("custom"), "required for type custom")
	case p.Type == patch.ProfileTypeCustom:
		validateCustom(add, at("custom"), p.Custom)
	}
}

func validateCustom(add func(string, string, ...any), base string, c *patch.CustomProfile) {
	if len(c.Wrapper) == 0 {
		add(base+".wrapper", "required: the command prepended to each instrumented entrypoint")
	}
	for i, w := range c.Wrapper {
		if w == "" {
			add(joinIndex(base+".wrapper", i), "must not be empty")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Environment)) {
		if !envNameRE.MatchString(k) {
			add(joinKey(base+".environment", k), "not a variable name (letters, digits, '_', not starting with a digit)")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Secrets)) {
		p := joinKey(base+".secrets", k)
		if !envNameRE.MatchString(k) {
			add(p, "not a variable name (letters, digits, '_', not starting with a digit)")
		}
		if msg := checkSecretRef(c.Secrets[k]); msg != "" {
			add(p, "%s", msg)
		}
	}
	if c.DependsOnCondition != "" {
		oneOf(add, base+".dependsOnCondition", c.DependsOnCondition, "START", "COMPLETE", "SUCCESS", "HEALTHY")
	}
}

var (
	partitionRE     = regexp.MustCompile(`^aws(-[a-z]+)*$`)
	regionRE        = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountRE       = regexp.MustCompile(`^[0-9]{12}$`)
	secretNameRE    = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)
	parameterRE     = regexp.MustCompile(`^parameter/[A-Za-z0-9_./-]+$`)
	roleRE          = regexp.MustCompile(`^role/(?:[!-~]*/)?[\w+=,.@-]{1,64}$`)
	containerNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	profileNameRE   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	envNameRE       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	eventBusNameRE  = regexp.MustCompile(`^[/.\-_A-Za-z0-9]{1,256}$`)
	queueNameRE     = regexp.MustCompile(`^(?:[A-Za-z0-9_-]{1,80}|[A-Za-z0-9_-]{1,75}\.fifo)$`)
	tagKeyRE        = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

	// imageRefRE follows the distribution reference grammar:
	// [domain[:port]/]path[:tag][@sha256:digest].
	imageRefRE = func() *regexp.Regexp {
		const (
			domainPart = `(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])`
			domain     = domainPart + `(?:\.` + domainPart + `)*(?::[0-9]+)?`
			pathPart   = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
			name       = `(?:` + domain + `/)?` + pathPart + `(?:/` + pathPart + `)*`
			tag        = `[\w][\w.-]{0,127}`
			digest     = `sha256:[a-f0-9]{64}`
		)
		return regexp.MustCompile(`^(` + name + `)(?::` + tag + `)?(?:@` + digest + `)?$`)
	}()
)

type arn struct{ partition, service, region, account, resource string }

func parseARN(s string) (arn, bool) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !partitionRE.MatchString(parts[1]) || parts[2] == "" || parts[5] == "" {
		return arn{}, false
	}
	return arn{parts[1], parts[2], parts[3], parts[4], parts[5]}, true
}

// checkSecretRef accepts what ECS accepts as a secret's valueFrom by ARN: a
// Secrets Manager secret (optionally :json-key:version-stage:version-id) or
// an SSM parameter.
func checkSecretRef(s string) string {
	a, ok := parseARN(s)
	if !ok {
		return "not an ARN"
	}
	const want = "must be a Secrets Manager secret (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>) or SSM parameter (arn:<partition>:ssm:<region>:<account>:parameter/<name>) ARN"
	if !regionRE.MatchString(a.region) || !accountRE.MatchString(a.account) {
		return want
	}
	switch a.service {
	case "secretsmanager":
		rest, ok := strings.CutPrefix(a.resource, "secret:")
		if !ok {
			return want
		}
		fields := strings.Split(rest, ":")
		if len(fields) > 4 || !secretNameRE.MatchString(fields[0]) {
			return want
		}
		return ""
	case "ssm":
		if !parameterRE.MatchString(a.resource) || len(a.resource) > len("parameter/")+2048 {
			return want
		}
		return ""
	}
	return want
}

func checkRoleARN(s string) string {
	a, ok := parseARN(s)
	if !ok {
		return "not an ARN"
	}
	if a.service != "iam" || a.region != "" || !accountRE.MatchString(a.account) || !roleRE.MatchString(a.resource) {
		return "must be an IAM role ARN (arn:<partition>:iam::<account>:role/<name>)"
	}
	return ""
}

func checkHTTPURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an http:// or https:// URL"
	}
	return ""
}

// minMaxHold is the shortest queue.maxHold with a visibility timeout: three
// visibility timeouts (a reconcile gets several, and the message several
// extensions), but no more than MaxMaxHold.
func minMaxHold(visibility time.Duration) time.Duration {
	return min(3*visibility, MaxMaxHold)
}

// checkQueueURL accepts <scheme>://<host>/<account>/<queue name>, the form of
// SQS queue URLs on AWS and on its emulators.
func checkQueueURL(s string) string {
	const want = "must be an SQS queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/name"
	if checkHTTPURL(s) != "" {
		return want
	}
	u, _ := url.Parse(s)
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || !accountRE.MatchString(parts[0]) || !queueNameRE.MatchString(parts[1]) || u.RawQuery != "" || u.Fragment != "" {
		return want
	}
	return ""
}

func checkTagPrefix(s string) string {
	switch {
	case !strings.HasSuffix(s, "/"):
		return "must end in '/'"
	case utf8.RuneCountInString(s) > 128-len("profile"):
		return "too long: tag keys are at most 128 characters"
	case !tagKeyRE.MatchString(s):
		return `must match the tag key pattern [\p{L}\p{Z}\p{N}_.:/=+\-@]*`
	case strings.HasPrefix(strings.ToLower(s), "aws:"):
		return "must not start with aws: (reserved by AWS)"
	}
	return ""
}

func checkListen(s string) string {
	const want = "must be host:port, such as :9102 or 127.0.0.1:9102"
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return want
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n > 65535 {
		return want
	}
	return ""
}

func validImageRef(s string) bool {
	m := imageRefRE.FindStringSubmatch(s)
	if m == nil || len(m[1]) > 255 {
		return false
	}
	// As in Docker, the first component is a registry only if it looks like
	// a host (a dot, a port, or localhost); otherwise it is part of the
	// repository path, which is lowercase.
	if first, _, found := strings.Cut(m[1], "/"); found && !strings.ContainsAny(first, ".:") && first != "localhost" {
		return first == strings.ToLower(first)
	}
	return true
}

func intRange(add func(string, string, ...any), path string, v, lo, hi int) {
	if v < lo || v > hi {
		add(path, "must be between %d and %d", lo, hi)
	}
}

func fraction(add func(string, string, ...any), path string, v float64) {
	if !(v >= 0 && v <= 1) {
		add(path, "must be between 0 and 1")
	}
}

func positiveDuration(add func(string, string, ...any), path string, d Duration, lo time.Duration) {
	if d.Duration < lo {
		add(path, "must be at least %s", D(lo))
	}
}

// oneOf reports v unless it is one of allowed, and says whether it is.
func oneOf(add func(string, string, ...any), path, v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	add(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
	return false
}

func globs(add func(string, string, ...any), base string, patterns []string) {
	for i, g := range patterns {
		if g == "" {
			add(joinIndex(base, i), "empty pattern")
			continue
		}
		if _, err := path.Match(g, ""); err != nil {
			add(joinIndex(base, i), "bad glob %q: %v", g, err)
		}
	}
}

// validate checks the images section other than tagTTL.
func (im *Images) validate(add func(string, string, ...any)) {
	if d := im.Timeout.Duration; d <= 0 {
		add("images.timeout", "must be greater than 0 (a duration such as \"30s\")")
	}
	seen := map[string]int{}
	for i, h := range im.InsecureRegistries {
		p := joinIndex("images.insecureRegistries", i)
		if msg := CheckRegistryHost(h); msg != "" {
			add(p, "%s", msg)
			continue
		}
		if j, dup := seen[strings.ToLower(h)]; dup {
			add(p, "%q is already images.insecureRegistries[%d]", h, j)
			continue
		}
		seen[strings.ToLower(h)] = i
	}
	for i, f := range im.CAFiles {
		if msg := CheckCAFile(f); msg != "" {
			add(joinIndex("images.caFiles", i), "%s", msg)
		}
	}
}

var dnsLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// CheckRegistryHost says what is wrong with a registry named as in an image
// reference, host or host:port (images.insecureRegistries, render
// --insecure-registry), or "" when nothing is. Its messages quote the value.
func CheckRegistryHost(s string) string {
	const want = "must be a registry host or host:port such as registry.example.com:5000"
	switch {
	case s == "":
		return want + ", got an empty string"
	case strings.Contains(s, "://"):
		return fmt.Sprintf("%s, without a scheme, got %q (the entry allows plain http; https is tried first)", want, s)
	case strings.ContainsAny(s, "/@?# \t"):
		return fmt.Sprintf("%s, without a path, user or spaces, got %q", want, s)
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			if end := strings.IndexByte(s, ']'); end == len(s)-1 {
				h, p = s[1:end], ""
			} else {
				return fmt.Sprintf("%s, got %q", want, s)
			}
		}
		if net.ParseIP(h) == nil {
			return fmt.Sprintf("%s, got %q (not an IPv6 address in brackets)", want, s)
		}
		host, port = "", p
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if port == "" {
			return fmt.Sprintf("%s, got %q (a colon without a port)", want, s)
		}
	}
	if port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Sprintf("%s, got %q (the port must be 1 to 65535)", want, s)
		}
	}
	if host != "" && net.ParseIP(host) == nil {
		if len(host) > 253 {
			return fmt.Sprintf("%s, got a host name longer than 253 characters", want)
		}
		for _, l := range strings.Split(host, ".") {
			if !dnsLabelRE.MatchString(l) {
				return fmt.Sprintf("%s, got %q (not a host name)", want, s)
			}
		}
	}
	return ""
}

// maxCAFile bounds a CA file (images.caFiles, render --registry-ca).
const maxCAFile = 1 << 20

// CheckCAFile says what is wrong with a CA file (images.caFiles, render
// --registry-ca): unreadable, not a regular file, larger than 1 MiB, or not
// a PEM file of X.509 certificates only; "" when nothing is. The messages
// name the file and quote none of its content.
func CheckCAFile(path string) string {
	if path == "" {
		return "must be the path of a PEM file of CA certificates, got an empty string"
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Sprintf("cannot read %s: %v", path, pathErr(err))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Sprintf("%s is not a regular file (want a PEM file of CA certificates)", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("cannot read %s: %v", path, pathErr(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return fmt.Sprintf("cannot read %s", path)
	}
	if len(b) > maxCAFile {
		return fmt.Sprintf("%s is larger than 1 MiB: not a PEM file of CA certificates", path)
	}
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		n++
		if blk.Type != "CERTIFICATE" {
			return fmt.Sprintf("%s: PEM block %d is %q, not CERTIFICATE (want CA certificates only)", path, n, blk.Type)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return fmt.Sprintf("%s: PEM block %d is not an X.509 certificate", path, n)
		}
	}
	if n == 0 {
		return fmt.Sprintf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path)
	}
	return ""
}

func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
