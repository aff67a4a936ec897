// Package config is the YAML configuration of `reconciler run`, `plan`,
// `check` and `render`: its schema, its defaults, and a Validate that reports
// every problem at once, each with the path of the key at fault.
//
// The file is YAML, read as JSON (sigs.k8s.io/yaml): the keys are the json
// tags of the types below, matched case-sensitively; unknown keys are errors.
// config.example.yaml at the repository root documents every key.
package config

import (
	"log/slog"
	"slices"
	"time"

	"github.com/ecs-sidecar/reconciler/internal/patch"
	"github.com/ecs-sidecar/reconciler/internal/policy"
)

// Config is the whole configuration file. Print it through a *Config (String,
// LogValue) or Redacted: those never show a plaintext token.
type Config struct {
	// AWS configures the SDK clients.
	AWS AWS `json:"aws"`
	// Queue is the SQS queue the EventBridge rule delivers events to.
	Queue Queue `json:"queue"`
	// Sweeps are the periodic rescans that catch what events miss.
	Sweeps Sweeps `json:"sweeps"`
	// Leases let several replicas share the account, one writer per
	// family (off without a table).
	Leases Leases `json:"leases"`
	// Workers is the number of families reconciled at the same time (1-64).
	Workers int `json:"workers"`
	// Mode is what the reconciler does: "enforce" (instrument and roll out),
	// "audit" (report only, write nothing) or "remove" (move every service back
	// to its source revision). A policy may override it.
	Mode string `json:"mode"`
	// TagPrefix prefixes every tag key and docker label the reconciler reads
	// or writes (inject, profile, source, spec, failed).
	TagPrefix string `json:"tagPrefix"`
	// OwnerTag is the key of a tag whose value names the tool that manages
	// a family's task definitions (terraform, pulumi), for families that
	// CloudFormation's (aws:cloudformation:*) and Copilot's (copilot-*) own
	// tags do not name. "" (default): those only.
	OwnerTag string `json:"ownerTag"`
	// Rollouts bounds the service updates in flight.
	Rollouts Rollouts `json:"rollouts"`
	// Cleanup says what the reconciler may delete.
	Cleanup Cleanup `json:"cleanup"`
	// Images says how image configs are read from registries.
	Images Images `json:"images"`
	// Audit sends an event for every write.
	Audit Audit `json:"audit"`
	// Metrics is the Prometheus endpoint.
	Metrics Metrics `json:"metrics"`
	// Log configures the slog handler.
	Log Log `json:"log"`
	// DefaultProfile is the profile of a family that opts in by tag without a
	// profile tag, and of policies that name none. Default: "lacework", or
	// the only profile when exactly one is configured.
	DefaultProfile string `json:"defaultProfile,omitempty"`
	// TagProfiles names the profiles that a family's profile tag may pick,
	// unless the family's policy has a list of its own (policies[].tagProfiles).
	// Unset: every profile without a plaintext token (tokenPlaintext); an
	// empty list: none. Whoever may tag a task definition chooses among them.
	TagProfiles []string `json:"tagProfiles,omitzero"`
	// Profiles are the injection profiles by name. When the file gives none,
	// the built-in "lacework" profile with its defaults is the only one.
	Profiles map[string]patch.Profile `json:"profiles,omitempty"`
	// Policies opt families in by name, in order; the first match decides.
	Policies []policy.Rule `json:"policies,omitempty"`
}

// AWS configures the SDK clients.
type AWS struct {
	// Region is the AWS Region. Empty: Load falls back to AWS_REGION, then
	// AWS_DEFAULT_REGION, then the SDK's own resolution (profile, IMDS).
	Region string `json:"region,omitempty"`
	// Endpoint overrides every service endpoint (awssim, moto): an http(s) URL.
	Endpoint string `json:"endpoint,omitempty"`
	// MaxAttempts is the SDK's attempts per call, first one included (1-10).
	MaxAttempts int `json:"maxAttempts"`
	// APIBudget is the part of the account's ECS throttle buckets the
	// reconciler may use.
	APIBudget APIBudget `json:"apiBudget"`
}

// APIBudget is the reconciler's share of the account's ECS API rate.
type APIBudget struct {
	// Share is the fraction (0 < share <= 1) of each ECS throttle bucket
	// (burst and refill) that the reconciler's client-side buckets allow.
	Share float64 `json:"share"`
	// BucketScale multiplies the refill rate of every bucket the share is
	// taken of (bursts stay AWS's), for simulators and benchmarks whose
	// buckets are scaled (awssim's --throttle-scale). 1 is AWS's rates.
	BucketScale float64 `json:"bucketScale"`
}

// Queue is the SQS queue fed by the EventBridge rule.
type Queue struct {
	// URL is the queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>).
	// Required by `run`, except with --embedded.
	URL string `json:"url,omitempty"`
	// WaitTimeSeconds is the long-poll wait of ReceiveMessage (0-20).
	WaitTimeSeconds int `json:"waitTimeSeconds"`
	// VisibilityTimeout hides a received message while its family is
	// reconciled; it is extended while the message waits (1s-12h, whole seconds).
	VisibilityTimeout Duration `json:"visibilityTimeout"`
	// MaxMessages is ReceiveMessage's MaxNumberOfMessages (1-10).
	MaxMessages int `json:"maxMessages"`
	// MaxHold is how long, from its first receive, a message whose family
	// is not reconciled is kept hidden; then it goes back to the queue, and
	// SQS moves it to the dead-letter queue after the queue's
	// maxReceiveCount. Between 3 × VisibilityTimeout (at most 12h) and 12h.
	// Zero (unset): DefaultMaxHold, or 3 × VisibilityTimeout if longer.
	MaxHold Duration `json:"maxHold"`
}

// Sweeps are the two periodic rescans (DESIGN.md, "Data flow").
type Sweeps struct {
	// Services finds services on un-instrumented revisions.
	Services ServiceSweep `json:"services"`
	// Families finds opt-in changes and families with no service.
	Families FamilySweep `json:"families"`
}

// ServiceSweep is the frequent sweep: ListClusters, ListServices, DescribeServices.
type ServiceSweep struct {
	// Interval between the starts of two sweeps.
	Interval Duration `json:"interval"`
	// Jitter is the fraction (0-1) of Interval added at random to each wait.
	Jitter float64 `json:"jitter"`
}

// FamilySweep is the slow sweep: ListTaskDefinitionFamilies, newest revisions, tags.
type FamilySweep struct {
	// Interval between the starts of two sweeps.
	Interval Duration `json:"interval"`
	// Jitter is the fraction (0-1) of Interval added at random to each wait.
	Jitter float64 `json:"jitter"`
	// MaxCallsPerSecond caps the sweep's own ECS calls (0 < n <= 20), inside
	// the API budget.
	MaxCallsPerSecond float64 `json:"maxCallsPerSecond"`
	// TaggingAPI lists the opt-in tags of all task definitions with
	// tag:GetResources and the newest revisions with one account-wide
	// ListTaskDefinitions, instead of two ECS calls per family; a role
	// without tag:GetResources falls back to those, with a warning.
	TaggingAPI bool `json:"taggingAPI"`
}

// Rollouts bounds service updates.
type Rollouts struct {
	// MaxInFlight is the number of service rollouts in progress at once, account-wide.
	MaxInFlight int `json:"maxInFlight"`
	// MaxInFlightPerCluster is the same bound per cluster (<= MaxInFlight).
	MaxInFlightPerCluster int `json:"maxInFlightPerCluster"`
	// RampStart, when set, makes MaxInFlight a ceiling reached by steps:
	// RampStart rollouts at first, one more for each that completes, back to
	// RampStart at the first failure. 0: no ramp. Default 5.
	RampStart int `json:"rampStart"`
	// Deadline marks a rollout failed ("deadline") when it has no outcome by then.
	Deadline Duration `json:"deadline"`
	// Poll is how soon a family with a rollout under way is looked at again
	// when no deployment event has said its rollout ended (a family that
	// waits for a place: 8 times that). Default 15s.
	Poll Duration `json:"poll"`
	// Canary rolls a new spec out to one service first, and to the family's
	// other services only once that rollout has completed.
	Canary bool `json:"canary"`
	// OnOptOut is what happens to services running a twin when their family
	// opts out: "revert" (back to the source revision) or "leave".
	OnOptOut string `json:"onOptOut"`
	// ContestedAfter leaves a service on its source once another writer
	// (IaC) moved it back from its twin this many times within
	// ContestedWindow, until its source or spec changes. 0: insist for ever.
	ContestedAfter  int      `json:"contestedAfter"`
	ContestedWindow Duration `json:"contestedWindow"`
}

// Cleanup says what the reconciler may delete.
type Cleanup struct {
	// DeregisterUnusedTwins deregisters twins that no service runs and that
	// are not their family's latest revision.
	DeregisterUnusedTwins bool `json:"deregisterUnusedTwins"`
}

// Images says how the reconciler reads what the images declare (ENTRYPOINT,
// CMD, USER, and for distroless: auto and nonRoot: sudo, whether /bin/sh and
// sudo exist).
type Images struct {
	// Resolve reads each container's image config from its registry, as ECS
	// pulls it. Off, only task definitions that state their command (and
	// user, for the non-root rule) are instrumented; the others are refused.
	Resolve bool `json:"resolve"`
	// TagTTL is how long a tag's resolution is trusted before the registry is
	// asked again; digests are cached for good.
	TagTTL Duration `json:"tagTTL"`
	// Timeout bounds one image lookup's registry work (and the credential
	// calls it makes).
	Timeout Duration `json:"timeout"`
	// InsecureRegistries lists the registries (host or host:port, as image
	// references write them) that may be spoken to over plain http. https
	// is still tried first, with the certificate verified.
	InsecureRegistries []string `json:"insecureRegistries,omitempty"`
	// CAFiles are PEM files of certificates trusted for registries' TLS, in
	// addition to the system's roots (a registry of a private CA, or one
	// with a self-signed certificate).
	CAFiles []string `json:"caFiles,omitempty"`
	// PinDigest makes the twin run each instrumented container's image by
	// the digest that was read (a multi-platform image by its index
	// digest), instead of by its tag: the command the twin wraps is then
	// the one of the image ECS runs, even after the tag moves.
	PinDigest bool `json:"pinDigest"`
}

// Audit sends an EventBridge event for every write.
type Audit struct {
	// EventBus is an event bus name or ARN; empty sends no audit events.
	EventBus string `json:"eventBus,omitempty"`
}

// Metrics is the Prometheus endpoint.
type Metrics struct {
	// Listen is the host:port of the /metrics HTTP server; port 0 picks one.
	Listen string `json:"listen"`
}

// Log configures logging (log/slog).
type Log struct {
	// Format is "json" or "text".
	Format string `json:"format"`
	// Level is "debug", "info", "warn" or "error".
	Level string `json:"level"`
}

// DefaultImageTimeout is images.timeout's default.
const DefaultImageTimeout = 30 * time.Second

// Allowed values and defaults.
const (
	OnOptOutRevert = "revert"
	OnOptOutLeave  = "leave"

	LogFormatJSON = "json"
	LogFormatText = "text"

	DefaultMetricsListen = ":9102"
	// DefaultMaxHold is queue.maxHold unless 3 × queue.visibilityTimeout is
	// longer; MaxMaxHold bounds it (SQS's bound on a message's visibility).
	// The same as internal/watch's.
	DefaultMaxHold = 15 * time.Minute
	MaxMaxHold     = 12 * time.Hour
	// MaxBucketScale bounds aws.apiBudget.bucketScale.
	MaxBucketScale = 10000
	// BuiltinProfile is the name of the profile that exists when the file
	// gives none.
	BuiltinProfile = patch.ProfileTypeLacework
)

// Default returns the configuration of an empty file, before validation: no
// queue URL, no Region, and the built-in lacework profile without a token.
func Default() *Config {
	c := &Config{
		AWS: AWS{
			MaxAttempts: 3,
			APIBudget:   APIBudget{Share: 0.5, BucketScale: 1},
		},
		Queue: Queue{
			WaitTimeSeconds:   20,
			VisibilityTimeout: D(2 * time.Minute),
			MaxMessages:       10,
		},
		Sweeps: Sweeps{
			Services: ServiceSweep{Interval: D(5 * time.Minute), Jitter: 0.1},
			Families: FamilySweep{Interval: D(30 * time.Minute), Jitter: 0.1, MaxCallsPerSecond: 2, TaggingAPI: true},
		},
		Leases:    defaultLeases(),
		Workers:   4,
		Mode:      policy.ModeEnforce,
		TagPrefix: patch.DefaultTagPrefix,
		Rollouts: Rollouts{
			// A ramp from 5 to 100 (20 a cluster): a first install of
			// 1,000 services with 5-minute rollouts takes about 1.5 h
			// (docs/benchmarks.md), where a fixed 5 took 16.7 h; the first
			// failure brings it back to 5.
			MaxInFlight:           DefaultMaxInFlight,
			MaxInFlightPerCluster: DefaultMaxInFlightPerCluster,
			RampStart:             DefaultRampStart,
			Deadline:              D(30 * time.Minute),
			Poll:                  D(15 * time.Second),
			OnOptOut:              OnOptOutRevert,
			ContestedAfter:        3,
			ContestedWindow:       D(24 * time.Hour),
		},
		Images:  Images{Resolve: true, TagTTL: D(5 * time.Minute), Timeout: D(DefaultImageTimeout)},
		Metrics: Metrics{Listen: DefaultMetricsListen},
		Log:     Log{Format: LogFormatJSON, Level: "info"},
	}
	c.applyDefaults()
	return c
}

// The rollout pacing defaults.
const (
	DefaultMaxInFlight           = 100
	DefaultMaxInFlightPerCluster = 20
	DefaultRampStart             = 5
)

// applyDefaults fills what depends on the decoded file: the queue's max hold,
// the per-cluster bound and the ramp's start when only maxInFlight was set
// below them (maxInFlight: 3 alone means 3 a cluster and no ramp to speak
// of, as it did before these defaults, not an error),
// the built-in profile, profile names, the default profile and the policies'
// opt-in style.
func (c *Config) applyDefaults() {
	if c.Queue.MaxHold.Duration == 0 {
		c.Queue.MaxHold = D(max(DefaultMaxHold, minMaxHold(c.Queue.VisibilityTimeout.Duration)))
	}
	if r := &c.Rollouts; r.MaxInFlight >= 1 && r.MaxInFlight < DefaultMaxInFlight {
		if r.MaxInFlightPerCluster == DefaultMaxInFlightPerCluster {
			r.MaxInFlightPerCluster = min(r.MaxInFlightPerCluster, r.MaxInFlight)
		}
		if r.RampStart == DefaultRampStart {
			r.RampStart = min(r.RampStart, r.MaxInFlight)
		}
	}
	if len(c.Profiles) == 0 {
		c.Profiles = map[string]patch.Profile{BuiltinProfile: {}}
	}
	for name, p := range c.Profiles {
		p.Name = name
		c.Profiles[name] = p
	}
	if c.DefaultProfile == "" {
		c.DefaultProfile = BuiltinProfile
		if len(c.Profiles) == 1 {
			for name := range c.Profiles {
				c.DefaultProfile = name
			}
		}
	}
	for i := range c.Policies {
		if c.Policies[i].OptIn == "" {
			c.Policies[i].OptIn = policy.OptInTag
		}
	}
}

// Profile returns the named profile with its defaults applied; the empty name
// is the default profile.
func (c *Config) Profile(name string) (patch.Profile, bool) {
	if name == "" {
		name = c.DefaultProfile
	}
	p, ok := c.Profiles[name]
	if !ok {
		return patch.Profile{}, false
	}
	p.Name = name
	return p.WithDefaults(), true
}

// TagProfilePolicy is what policy.Decide needs to know of which profiles a
// profile tag may pick (policy.Input.TagProfiles): the tagProfiles list, the
// profiles that carry a plaintext token, and the default profile.
func (c *Config) TagProfilePolicy() policy.TagProfiles {
	t := policy.TagProfiles{Allow: slices.Clone(c.TagProfiles), Default: c.DefaultProfile}
	for _, name := range c.ProfileNames() {
		if p, _ := c.Profile(name); p.TokenPlaintext != "" {
			t.Plaintext = append(t.Plaintext, name)
		}
	}
	return t
}

// ProfileNames returns the names of the profiles, sorted.
func (c *Config) ProfileNames() []string {
	names := make([]string, 0, len(c.Profiles))
	for name := range c.Profiles {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// SlogLevel is Log.Level as a slog.Level (info when unset or unknown;
// Validate refuses unknown levels).
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
