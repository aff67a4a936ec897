package patch

// Profile says how to instrument a task definition. The built-in profile is
// Lacework's sidecar method (DESIGN.md, "The built-in lacework profile"); other
// agents that use the same volumes-from pattern are profiles of type "custom".
//
// The YAML/JSON names are the config file's keys (internal/config loads them).
// Every field that changes the output of Instrument is part of the spec hash.
type Profile struct {
	// Name is the profile's key in the config's profiles map; it is set by
	// the loader, not read from the file.
	Name string `json:"-"`

	// Type is "lacework" (default) or "custom".
	Type string `json:"type,omitempty"`

	// SidecarName is the sidecar container's name (default "datacollector-sidecar").
	SidecarName string `json:"sidecarName,omitempty"`
	// SidecarImage is the whole sidecar image reference: a tag, a pinned
	// digest, a private mirror or an ECR pull-through cache
	// (default "lacework/datacollector:latest-sidecar").
	SidecarImage string `json:"sidecarImage,omitempty"`
	// LogStreamPrefix is the awslogs stream prefix given to the sidecar's log
	// configuration, which is otherwise copied from the app container's
	// (default: the sidecar's name).
	LogStreamPrefix string `json:"logStreamPrefix,omitempty"`

	// TokenSecretArn is the Secrets Manager secret (or SSM parameter) ARN that
	// holds the agent access token. It is injected as a container secret
	// (valueFrom), never read by the reconciler.
	TokenSecretArn string `json:"tokenSecretArn,omitempty"`
	// TokenPlaintext puts the token in the task definition as a plain
	// environment variable. Allowed only with AllowPlaintextToken, and reported.
	TokenPlaintext string `json:"tokenPlaintext,omitempty"`
	// AllowPlaintextToken must be true for TokenPlaintext to be accepted.
	AllowPlaintextToken bool `json:"allowPlaintextToken,omitempty"`
	// DefaultExecutionRoleArn is set as executionRoleArn on revisions that
	// have none, so that ECS can resolve the token secret. Without it such
	// revisions are refused (no_execution_role).
	DefaultExecutionRoleArn string `json:"defaultExecutionRoleArn,omitempty"`

	// ServerURL is "US" (default: no variable), "EU", "ANZ", or an https URL.
	ServerURL string `json:"serverUrl,omitempty"`
	// LaceworkConfig is the JSON document given as LaceworkConfig, for
	// example {"fim":{"mode":"enable","coolingperiod":"0"}}.
	LaceworkConfig string `json:"laceworkConfig,omitempty"`
	// Verbose sets LaceworkVerbose=true.
	Verbose bool `json:"verbose,omitempty"`
	// Distroless is "auto" (default: from the image), "true" or "false".
	Distroless string `json:"distroless,omitempty"`
	// NonRoot is what to do with containers that run as a user other than
	// root: "skip" (default) or "sudo".
	NonRoot string `json:"nonRoot,omitempty"`

	// Containers selects the containers to instrument. By default every
	// essential container is; a dockerLabel <prefix>inject=false opts one out.
	Containers ContainerSelector `json:"containers,omitempty"`

	// AgentImages are the image repository patterns of agents and sidecars
	// that are never instrumented (see DefaultAgentImages, used when the
	// profile lists none; an empty list turns the defaults off).
	AgentImages []string `json:"agentImages,omitempty"`
	// LaunchTypes are the launch types (requiresCompatibilities values)
	// whose task definitions are instrumented; default FARGATE only.
	LaunchTypes []string `json:"launchTypes,omitempty"`

	// Custom holds what a "custom" profile injects; unused for "lacework".
	Custom *CustomProfile `json:"custom,omitempty"`
}

// ContainerSelector chooses containers by name (exact names or globs).
type ContainerSelector struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// CustomProfile describes another agent that uses the volumes-from pattern:
// a non-essential sidecar exporting a volume and a wrapper entrypoint.
type CustomProfile struct {
	// Wrapper is prepended to the effective entrypoint of each instrumented container.
	Wrapper []string `json:"wrapper"`
	// Environment is added to each instrumented container (existing names win).
	Environment map[string]string `json:"environment,omitempty"`
	// Secrets maps variable names to valueFrom ARNs (existing names win).
	Secrets map[string]string `json:"secrets,omitempty"`
	// DependsOnCondition is the app containers' condition on the sidecar (default SUCCESS).
	DependsOnCondition string `json:"dependsOnCondition,omitempty"`
}

// Defaults of the built-in lacework profile.
const (
	ProfileTypeLacework = "lacework"
	ProfileTypeCustom   = "custom"

	DefaultSidecarName  = "datacollector-sidecar"
	DefaultSidecarImage = "lacework/datacollector:latest-sidecar"
	SidecarScript       = "/var/lib/lacework-backup/lacework-sidecar.sh"
	DistrolessShell     = "/var/lib/lacework-backup/distroless/bin/sh"

	ServerUS  = "US"
	ServerEU  = "EU"
	ServerANZ = "ANZ"
	// ServerURLEU and ServerURLANZ are the guide's agent server URLs.
	ServerURLEU  = "https://api.fra.lacework.net"
	ServerURLANZ = "https://auprodn1.agent.lacework.net"

	DistrolessAuto  = "auto"
	DistrolessTrue  = "true"
	DistrolessFalse = "false"

	NonRootSkip = "skip"
	NonRootSudo = "sudo"
)

// WithDefaults returns a copy of p with every empty option set to its default.
func (p Profile) WithDefaults() Profile {
	if p.Type == "" {
		p.Type = ProfileTypeLacework
	}
	if p.SidecarName == "" {
		p.SidecarName = DefaultSidecarName
	}
	if p.SidecarImage == "" && p.Type == ProfileTypeLacework {
		p.SidecarImage = DefaultSidecarImage
	}
	if p.LogStreamPrefix == "" {
		p.LogStreamPrefix = p.SidecarName
	}
	if p.ServerURL == "" {
		p.ServerURL = ServerUS
	}
	if p.Distroless == "" {
		p.Distroless = DistrolessAuto
	}
	if p.NonRoot == "" {
		p.NonRoot = NonRootSkip
	}
	return p
}
