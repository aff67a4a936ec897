package config

import (
	"errors"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/patch"
	"github.com/ecs-sidecar/reconciler/internal/policy"
)

const examplePath = "../../config.example.yaml"

// problems flattens an errors.Join tree into its leaf messages.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, problems(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse(%q) = %v, want no error", doc, err)
	}
	return c
}

func TestExampleLoadsAndValidates(t *testing.T) {
	c, err := LoadWith(examplePath, func(string) string { return "" })
	if err != nil {
		t.Fatalf("LoadWith(%s) = %v", examplePath, err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	if err := c.ValidateRun(false); err != nil {
		t.Errorf("ValidateRun(false) = %v", err)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"aws.region", c.AWS.Region, "us-east-1"},
		{"queue.url", c.Queue.URL, "https://sqs.us-east-1.amazonaws.com/123456789012/ecs-sidecar-reconciler"},
		{"queue.visibilityTimeout", c.Queue.VisibilityTimeout.Duration, 2 * time.Minute},
		{"queue.maxHold", c.Queue.MaxHold.Duration, 15 * time.Minute},
		{"sweeps.families.interval", c.Sweeps.Families.Interval.Duration, 30 * time.Minute},
		{"defaultProfile", c.DefaultProfile, "lacework"},
		{"profile names", c.ProfileNames(), []string{"example-agent", "lacework"}},
		{"lacework token", c.Profiles["lacework"].TokenSecretArn, "arn:aws:secretsmanager:us-east-1:123456789012:secret:lacework/agent-token-AbCdEf"},
		{"lacework name", c.Profiles["lacework"].Name, "lacework"},
		{"lacework excludes", c.Profiles["lacework"].Containers.Exclude, []string{"envoy", "*-init"}},
		{"custom wrapper", c.Profiles["example-agent"].Custom.Wrapper, []string{"/opt/example/bin/wrap.sh"}},
		{"policy", c.Policies, []policy.Rule{{
			Name:     "payments",
			Families: policy.Selector{Include: []string{"payments-*"}, Exclude: []string{"payments-batch-*"}},
			Clusters: []string{"prod-*"},
			OptIn:    policy.OptInAlways,
			Profile:  "lacework",
			Mode:     policy.ModeAudit,
		}}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.got, tt.want); diff != "" {
			t.Errorf("%s: (-got +want)\n%s", tt.name, diff)
		}
	}
}

// The example states the defaults: apart from the keys it marks as example
// values, loading it gives what an empty file gives.
func TestExampleStatesTheDefaults(t *testing.T) {
	ex, err := LoadWith(examplePath, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	def := mustParse(t, "")
	// The example values.
	ex.AWS.Region = ""
	ex.Queue.URL = ""
	ex.Audit.EventBus = ""
	ex.Policies = nil
	ex.Profiles = map[string]patch.Profile{"lacework": {Name: "lacework"}}
	if diff := cmp.Diff(ex, def); diff != "" {
		t.Errorf("example differs from the defaults beyond its example values (-example +defaults)\n%s", diff)
	}
	exProfile, _ := mustExample(t).Profile("lacework")
	defProfile, _ := def.Profile("lacework")
	// Example values of the lacework profile.
	exProfile.TokenSecretArn = ""
	exProfile.DefaultExecutionRoleArn = ""
	exProfile.LaceworkConfig = ""
	exProfile.Containers = patch.ContainerSelector{}
	if diff := cmp.Diff(exProfile, defProfile); diff != "" {
		t.Errorf("example lacework profile differs from the built-in beyond its example values (-example +builtin)\n%s", diff)
	}
}

func mustExample(t *testing.T) *Config {
	t.Helper()
	c, err := LoadWith(examplePath, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Every key of the schema appears in the example, where a comment describes it.
func TestExampleDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, key := range schemaKeys(configType, "") {
		leaf := key[strings.LastIndex(key, ".")+1:]
		re := regexp.MustCompile(`(?m)^\s*(#\s*)?(-\s*)?` + regexp.QuoteMeta(leaf) + `:`)
		if !re.MatchString(text) {
			t.Errorf("%s: key %q does not appear in %s", key, leaf, examplePath)
		}
	}
}

// schemaKeys lists the dotted key paths of t (maps and slices add no segment).
func schemaKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerTy) {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(jsonFields(t))) {
		k := joinKey(prefix, name)
		keys = append(keys, k)
		keys = append(keys, schemaKeys(jsonFields(t)[name], k)...)
	}
	return keys
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, "")
	tests := []struct {
		key  string
		got  any
		want any
	}{
		{"aws.region", c.AWS.Region, ""},
		{"aws.endpoint", c.AWS.Endpoint, ""},
		{"aws.maxAttempts", c.AWS.MaxAttempts, 3},
		{"aws.apiBudget.share", c.AWS.APIBudget.Share, 0.5},
		{"aws.apiBudget.bucketScale", c.AWS.APIBudget.BucketScale, 1.0},
		{"queue.url", c.Queue.URL, ""},
		{"queue.waitTimeSeconds", c.Queue.WaitTimeSeconds, 20},
		{"queue.visibilityTimeout", c.Queue.VisibilityTimeout, D(2 * time.Minute)},
		{"queue.maxMessages", c.Queue.MaxMessages, 10},
		{"queue.maxHold", c.Queue.MaxHold, D(15 * time.Minute)},
		{"sweeps.services.interval", c.Sweeps.Services.Interval, D(5 * time.Minute)},
		{"sweeps.services.jitter", c.Sweeps.Services.Jitter, 0.1},
		{"sweeps.families.interval", c.Sweeps.Families.Interval, D(30 * time.Minute)},
		{"sweeps.families.jitter", c.Sweeps.Families.Jitter, 0.1},
		{"sweeps.families.maxCallsPerSecond", c.Sweeps.Families.MaxCallsPerSecond, 2.0},
		{"sweeps.families.taggingAPI", c.Sweeps.Families.TaggingAPI, true},
		{"workers", c.Workers, 4},
		{"mode", c.Mode, policy.ModeEnforce},
		{"tagPrefix", c.TagPrefix, "ecs-sidecar/"},
		{"rollouts.maxInFlight", c.Rollouts.MaxInFlight, 100},
		{"rollouts.maxInFlightPerCluster", c.Rollouts.MaxInFlightPerCluster, 20},
		{"rollouts.rampStart", c.Rollouts.RampStart, 5},
		{"rollouts.deadline", c.Rollouts.Deadline, D(30 * time.Minute)},
		{"rollouts.poll", c.Rollouts.Poll, D(15 * time.Second)},
		{"rollouts.canary", c.Rollouts.Canary, false},
		{"rollouts.onOptOut", c.Rollouts.OnOptOut, OnOptOutRevert},
		{"rollouts.contestedAfter", c.Rollouts.ContestedAfter, 3},
		{"rollouts.contestedWindow", c.Rollouts.ContestedWindow, D(24 * time.Hour)},
		{"cleanup.deregisterUnusedTwins", c.Cleanup.DeregisterUnusedTwins, false},
		{"images.resolve", c.Images.Resolve, true},
		{"images.tagTTL", c.Images.TagTTL, D(5 * time.Minute)},
		{"images.timeout", c.Images.Timeout, D(30 * time.Second)},
		{"images.insecureRegistries", c.Images.InsecureRegistries, []string(nil)},
		{"images.caFiles", c.Images.CAFiles, []string(nil)},
		{"images.pinDigest", c.Images.PinDigest, false},
		{"audit.eventBus", c.Audit.EventBus, ""},
		{"metrics.listen", c.Metrics.Listen, ":9102"},
		{"log.format", c.Log.Format, "json"},
		{"log.level", c.Log.Level, "info"},
		{"defaultProfile", c.DefaultProfile, "lacework"},
		{"profiles", c.Profiles, map[string]patch.Profile{"lacework": {Name: "lacework"}}},
		{"policies", c.Policies, []policy.Rule(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if diff := cmp.Diff(tt.got, tt.want); diff != "" {
				t.Errorf("(-got +want)\n%s", diff)
			}
		})
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	if diff := cmp.Diff(c, Default()); diff != "" {
		t.Errorf("Parse(\"\") differs from Default() (-got +want)\n%s", diff)
	}
}

// A key given explicitly keeps its value, even when it is the zero value;
// keys left out keep their defaults.
func TestExplicitValuesOverDefaults(t *testing.T) {
	c := mustParse(t, `
queue: {waitTimeSeconds: 0}
sweeps: {services: {jitter: 0}}
workers: 8
rollouts: {canary: true, onOptOut: leave}
log: {level: debug, format: text}
`)
	tests := []struct {
		key  string
		got  any
		want any
	}{
		{"queue.waitTimeSeconds", c.Queue.WaitTimeSeconds, 0},
		{"queue.maxMessages", c.Queue.MaxMessages, 10},
		{"sweeps.services.jitter", c.Sweeps.Services.Jitter, 0.0},
		{"sweeps.services.interval", c.Sweeps.Services.Interval, D(5 * time.Minute)},
		{"workers", c.Workers, 8},
		{"rollouts.canary", c.Rollouts.Canary, true},
		{"rollouts.onOptOut", c.Rollouts.OnOptOut, OnOptOutLeave},
		{"rollouts.maxInFlight", c.Rollouts.MaxInFlight, 100},
		{"log.level", c.Log.SlogLevel().String(), "DEBUG"},
		{"log.format", c.Log.Format, LogFormatText},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.got, tt.want); diff != "" {
			t.Errorf("%s: (-got +want)\n%s", tt.key, diff)
		}
	}
}

func TestProfiles(t *testing.T) {
	builtin, ok := mustParse(t, "").Profile("lacework")
	if !ok {
		t.Fatal(`Profile("lacework") of an empty file: not found`)
	}
	want := patch.Profile{Name: "lacework"}.WithDefaults()
	if diff := cmp.Diff(builtin, want); diff != "" {
		t.Errorf("built-in profile (-got +want)\n%s", diff)
	}
	if builtin.SidecarImage != patch.DefaultSidecarImage {
		t.Errorf("built-in sidecarImage = %q, want %q", builtin.SidecarImage, patch.DefaultSidecarImage)
	}

	// A single named profile replaces the built-in and becomes the default.
	c := mustParse(t, `
profiles:
  agent:
    sidecarImage: registry.example.com/mirror/datacollector:7.1
    serverUrl: EU
`)
	if _, ok := c.Profile("lacework"); ok {
		t.Error(`Profile("lacework") found, want no built-in profile once profiles are given`)
	}
	got, ok := c.Profile("")
	if !ok {
		t.Fatal(`Profile("") not found, want the default profile`)
	}
	want = patch.Profile{
		Name: "agent", Type: "lacework", SidecarName: "datacollector-sidecar",
		SidecarImage: "registry.example.com/mirror/datacollector:7.1", LogStreamPrefix: "datacollector-sidecar",
		ServerURL: "EU", Distroless: "auto", NonRoot: "skip",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf(`Profile("") (-got +want)\n%s`, diff)
	}

	// With several profiles and no lacework one, defaultProfile is required.
	_, err := Parse([]byte("profiles: {a: {}, b: {}}\n"))
	if diff := cmp.Diff(problems(err), []string{`defaultProfile: unknown profile "lacework"`}); diff != "" {
		t.Errorf("two profiles, no default: (-got +want)\n%s", diff)
	}
	c = mustParse(t, "profiles: {a: {}, b: {}}\ndefaultProfile: b\n")
	if p, _ := c.Profile(""); p.Name != "b" {
		t.Errorf(`Profile("").Name = %q, want "b"`, p.Name)
	}
	if _, ok := c.Profile("nope"); ok {
		t.Error(`Profile("nope") found`)
	}
}

// A profile tag picks by default any profile but those with a plaintext
// token; tagProfiles, global or per policy, lists what it may pick, and an
// empty list (not an unset one) allows none.
func TestTagProfilePolicy(t *testing.T) {
	const profiles = `defaultProfile: secret
profiles:
  secret: {tokenSecretArn: ` + secretARN + `}
  plain: {tokenPlaintext: "tok", allowPlaintextToken: true}
  none: {}
`
	tests := []struct {
		name, doc string
		want      policy.TagProfiles
		rules     [][]string // each policy's tagProfiles
	}{
		{"unset", profiles, policy.TagProfiles{Plaintext: []string{"plain"}, Default: "secret"}, nil},
		{"null is unset", profiles + "tagProfiles:\n", policy.TagProfiles{Plaintext: []string{"plain"}, Default: "secret"}, nil},
		{"a list, naming a plaintext profile", profiles + "tagProfiles: [none, plain]\n",
			policy.TagProfiles{Allow: []string{"none", "plain"}, Plaintext: []string{"plain"}, Default: "secret"}, nil},
		{"empty: none", profiles + "tagProfiles: []\n", policy.TagProfiles{Allow: []string{}, Plaintext: []string{"plain"}, Default: "secret"}, nil},
		{"per policy", profiles + "policies: [{name: a}, {name: b, tagProfiles: [plain]}, {name: c, tagProfiles: []}]\n",
			policy.TagProfiles{Plaintext: []string{"plain"}, Default: "secret"}, [][]string{nil, {"plain"}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.doc)
			if diff := cmp.Diff(c.TagProfilePolicy(), tt.want); diff != "" {
				t.Errorf("TagProfilePolicy (-got +want)\n%s", diff)
			}
			var rules [][]string
			for _, r := range c.Policies {
				rules = append(rules, r.TagProfiles)
			}
			if diff := cmp.Diff(rules, tt.rules); diff != "" {
				t.Errorf("policies' tagProfiles (-got +want)\n%s", diff)
			}
			// The printed configuration reads back the same: an empty list
			// stays empty.
			back := mustParse(t, c.String())
			if diff := cmp.Diff(back.TagProfiles, c.TagProfiles); diff != "" {
				t.Errorf("tagProfiles after String and Parse (-got +want)\n%s", diff)
			}
		})
	}
}

func TestPolicyOptInDefaultsToTag(t *testing.T) {
	c := mustParse(t, "policies: [{name: a}, {name: b, optIn: always}]\n")
	got := []string{c.Policies[0].OptIn, c.Policies[1].OptIn}
	if diff := cmp.Diff(got, []string{policy.OptInTag, policy.OptInAlways}); diff != "" {
		t.Errorf("optIn (-got +want)\n%s", diff)
	}
}

func TestLoadEnvironmentFallback(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := write("empty.yaml", "")
	withRegion := write("region.yaml", "aws: {region: eu-west-1}\n")
	tests := []struct {
		name string
		path string
		env  map[string]string
		want string
	}{
		{"AWS_REGION", empty, map[string]string{"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "us-east-2"}, "us-west-2"},
		{"AWS_DEFAULT_REGION", empty, map[string]string{"AWS_DEFAULT_REGION": "us-east-2"}, "us-east-2"},
		{"none", empty, nil, ""},
		{"file wins", withRegion, map[string]string{"AWS_REGION": "us-west-2"}, "eu-west-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadWith(tt.path, func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if c.AWS.Region != tt.want {
				t.Errorf("aws.region = %q, want %q", c.AWS.Region, tt.want)
			}
		})
	}

	// A bad Region from the environment is reported like one from the file.
	_, err := LoadWith(empty, func(k string) string { return map[string]string{"AWS_REGION": "nowhere"}[k] })
	if err == nil || !strings.Contains(err.Error(), `aws.region: "nowhere" is not a Region`) {
		t.Errorf("LoadWith(AWS_REGION=nowhere) = %v, want an aws.region error", err)
	}
	// Parse never reads the environment.
	t.Setenv("AWS_REGION", "us-west-2")
	if c := mustParse(t, ""); c.AWS.Region != "" {
		t.Errorf("Parse read AWS_REGION: aws.region = %q", c.AWS.Region)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(t.TempDir() + "/nope.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want os.ErrNotExist", err)
	}
}

func TestValidateRun(t *testing.T) {
	const token = "profiles: {lacework: {tokenSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:t'}}\n"
	const queue = "queue: {url: 'https://sqs.us-east-1.amazonaws.com/123456789012/q'}\n"
	tests := []struct {
		name     string
		doc      string
		embedded bool
		want     []string
	}{
		{"complete", token + queue, false, nil},
		{"embedded needs no queue", token, true, nil},
		{"no queue", token, false, []string{"queue.url: required by run (or use --embedded)"}},
		{"no token is allowed (the image may carry it); the patch warns", queue, false, nil},
		{"plaintext token", queue + "profiles: {lacework: {tokenPlaintext: x, allowPlaintextToken: true}}\n", false, nil},
		{"custom needs no token", queue + "profiles: {c: {type: custom, sidecarImage: 'a/b:1', custom: {wrapper: [w]}}}\n", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.doc)
			if diff := cmp.Diff(problems(c.ValidateRun(tt.embedded)), tt.want); diff != "" {
				t.Errorf("(-got +want)\n%s", diff)
			}
		})
	}
}

func TestLaceworkProfilesWithoutToken(t *testing.T) {
	c := mustParse(t, "profiles: {a: {tokenSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:t'}, b: {}, "+
		"c: {type: custom, sidecarImage: 'a/b:1', custom: {wrapper: [w]}}}\ndefaultProfile: a\n")
	if diff := cmp.Diff(c.LaceworkProfilesWithoutToken(), []string{"b"}); diff != "" {
		t.Errorf("(-got +want)\n%s", diff)
	}
}

func TestFromEnv(t *testing.T) {
	c, err := FromEnv(func(k string) string {
		if k == "AWS_DEFAULT_REGION" {
			return "eu-west-1"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.AWS.Region != "eu-west-1" || c.Workers != Default().Workers {
		t.Errorf("FromEnv: region %q workers %d, want eu-west-1 and the default", c.AWS.Region, c.Workers)
	}
}

func TestDuration(t *testing.T) {
	for _, tt := range []struct {
		in   time.Duration
		want string
	}{
		{5 * time.Minute, "5m"},
		{30 * time.Second, "30s"},
		{90 * time.Minute, "1h30m"},
		{2 * time.Hour, "2h"},
		{1500 * time.Millisecond, "1.5s"},
		{0, "0s"},
	} {
		b, err := D(tt.in).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(b), `"`+tt.want+`"`); diff != "" {
			t.Errorf("MarshalJSON(%v) (-got +want)\n%s", tt.in, diff)
		}
		var back Duration
		if err := back.UnmarshalJSON(b); err != nil || back.Duration != tt.in {
			t.Errorf("UnmarshalJSON(%s) = %v, %v; want %v", b, back.Duration, err, tt.in)
		}
	}
	for _, bad := range []string{`30`, `"30"`, `"soon"`, `true`} {
		var d Duration
		if err := d.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("UnmarshalJSON(%s) = nil error, want one", bad)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	var got []string
	for _, l := range []string{"debug", "info", "warn", "error"} {
		got = append(got, Log{Level: l}.SlogLevel().String())
	}
	if diff := cmp.Diff(got, []string{"DEBUG", "INFO", "WARN", "ERROR"}); diff != "" {
		t.Errorf("(-got +want)\n%s", diff)
	}
}

// queue.maxHold's default depends on queue.visibilityTimeout: 15m, or three
// visibility timeouts when longer, at most 12h; 0s is the default too.
func TestMaxHoldDefault(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want time.Duration
	}{
		{"queue: {visibilityTimeout: 1m}", 15 * time.Minute},
		{"queue: {visibilityTimeout: 10m}", 30 * time.Minute},
		{"queue: {visibilityTimeout: 12h}", 12 * time.Hour},
		{"queue: {maxHold: 0s}", 15 * time.Minute},
		{"queue: {visibilityTimeout: 10m, maxHold: 2h}", 2 * time.Hour},
	} {
		c := mustParse(t, tc.doc)
		if got := c.Queue.MaxHold.Duration; got != tc.want {
			t.Errorf("%s: queue.maxHold = %v, want %v", tc.doc, got, tc.want)
		}
	}
}

// The pacing defaults (a ramp from 5 to 100, 20 a cluster) follow a
// maxInFlight set below them: a file that says only maxInFlight: 3, valid
// before the ramp was the default, still loads, with 3 a cluster and a ramp
// that starts at 3; what the file says itself is kept.
func TestRolloutDefaultsFollowMaxInFlight(t *testing.T) {
	for _, tt := range []struct {
		yaml                       string
		max, perCluster, rampStart int
	}{
		{"rollouts: {}", DefaultMaxInFlight, DefaultMaxInFlightPerCluster, DefaultRampStart},
		{"rollouts: {maxInFlight: 3}", 3, 3, 3},
		{"rollouts: {maxInFlight: 10}", 10, 10, 5},
		{"rollouts: {maxInFlight: 10, maxInFlightPerCluster: 2, rampStart: 0}", 10, 2, 0},
		{"rollouts: {maxInFlight: 500}", 500, DefaultMaxInFlightPerCluster, DefaultRampStart},
	} {
		c, err := Parse([]byte(tt.yaml))
		if err != nil {
			t.Errorf("%s: %v", tt.yaml, err)
			continue
		}
		if r := c.Rollouts; r.MaxInFlight != tt.max || r.MaxInFlightPerCluster != tt.perCluster || r.RampStart != tt.rampStart {
			t.Errorf("%s: maxInFlight %d, maxInFlightPerCluster %d, rampStart %d; want %d, %d, %d",
				tt.yaml, r.MaxInFlight, r.MaxInFlightPerCluster, r.RampStart, tt.max, tt.perCluster, tt.rampStart)
		}
	}
}
