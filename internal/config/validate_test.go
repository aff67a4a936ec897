package config

import (
	"bytes"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	secretARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lacework/token-AbCdEf"
	digest    = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	// custom is a valid custom profile to which rows add one mistake.
	custom = "profiles: {c: {type: custom, sidecarImage: 'example.com/agent:1', custom: {wrapper: [/w"
)

// Each row has one mistake; the error names it with its path.
func TestValidateReportsPath(t *testing.T) {
	tests := []struct {
		doc  string
		want string
	}{
		// aws
		{"aws: {region: 'US East'}", `aws.region: "US East" is not a Region`},
		{"aws: {endpoint: 'ftp://example.com'}", "aws.endpoint: must be an http:// or https:// URL"},
		{"aws: {endpoint: 'localhost:4566'}", "aws.endpoint: must be an http:// or https:// URL"},
		{"aws: {maxAttempts: 0}", "aws.maxAttempts: must be between 1 and 10"},
		{"aws: {apiBudget: {share: 0}}", "aws.apiBudget.share: must be greater than 0 and at most 1"},
		{"aws: {apiBudget: {share: 1.01}}", "aws.apiBudget.share: must be greater than 0 and at most 1"},
		{"aws: {apiBudget: {bucketScale: 0}}", "aws.apiBudget.bucketScale: must be greater than 0 and at most 10000"},
		{"aws: {apiBudget: {bucketScale: -1}}", "aws.apiBudget.bucketScale: must be greater than 0 and at most 10000"},
		{"aws: {apiBudget: {bucketScale: 10001}}", "aws.apiBudget.bucketScale: must be greater than 0 and at most 10000"},
		{"aws: {apiBudget: {bucketScale: 2}}\nsweeps: {families: {maxCallsPerSecond: 41}}", "sweeps.families.maxCallsPerSecond: must be greater than 0 and at most 40 (20, the refill rate"},
		// queue
		{"queue: {url: 'https://example.com/'}", "queue.url: must be an SQS queue URL"},
		{"queue: {url: 'sqs.us-east-1.amazonaws.com/123456789012/q'}", "queue.url: must be an SQS queue URL"},
		{"queue: {url: 'https://sqs.us-east-1.amazonaws.com/1234/q'}", "queue.url: must be an SQS queue URL"},
		{"queue: {url: 'https://sqs.us-east-1.amazonaws.com/123456789012/bad name'}", "queue.url: must be an SQS queue URL"},
		{"queue: {waitTimeSeconds: 21}", "queue.waitTimeSeconds: must be between 0 and 20"},
		{"queue: {waitTimeSeconds: -1}", "queue.waitTimeSeconds: must be between 0 and 20"},
		{"queue: {visibilityTimeout: 500ms}", "queue.visibilityTimeout: must be whole seconds between 1s and 12h"},
		{"queue: {visibilityTimeout: 1500ms}", "queue.visibilityTimeout: must be whole seconds between 1s and 12h"},
		{"queue: {visibilityTimeout: 13h}", "queue.visibilityTimeout: must be whole seconds between 1s and 12h"},
		{"queue: {maxMessages: 0}", "queue.maxMessages: must be between 1 and 10"},
		{"queue: {maxMessages: 11}", "queue.maxMessages: must be between 1 and 10"},
		{"queue: {maxHold: 5m}", "queue.maxHold: must be between 3 times queue.visibilityTimeout (6m) and 12h"},
		{"queue: {visibilityTimeout: 10m, maxHold: 15m}", "queue.maxHold: must be between 3 times queue.visibilityTimeout (30m) and 12h"},
		{"queue: {visibilityTimeout: 5h, maxHold: 11h}", "queue.maxHold: must be between 3 times queue.visibilityTimeout (12h) and 12h"},
		{"queue: {maxHold: 13h}", "queue.maxHold: must be between 3 times queue.visibilityTimeout (6m) and 12h"},
		{"queue: {maxHold: -15m}", "queue.maxHold: must be between 3 times queue.visibilityTimeout (6m) and 12h"},
		{"queue: {maxHold: 900}", "queue.maxHold: must be a duration string"},
		// sweeps
		{"sweeps: {services: {interval: 0s}}", "sweeps.services.interval: must be at least 1s"},
		{"sweeps: {services: {jitter: 1.5}}", "sweeps.services.jitter: must be between 0 and 1"},
		{"sweeps: {families: {interval: -1m}}", "sweeps.families.interval: must be at least 1s"},
		{"sweeps: {families: {jitter: -0.1}}", "sweeps.families.jitter: must be between 0 and 1"},
		{"sweeps: {families: {maxCallsPerSecond: 0}}", "sweeps.families.maxCallsPerSecond: must be greater than 0 and at most 20"},
		{"sweeps: {families: {maxCallsPerSecond: 21}}", "sweeps.families.maxCallsPerSecond: must be greater than 0 and at most 20"},
		// top level
		{"workers: 0", "workers: must be between 1 and 64"},
		{"workers: 65", "workers: must be between 1 and 64"},
		{"mode: Enforce", `mode: "Enforce" is not one of enforce, audit, remove`},
		{"tagPrefix: ecs-sidecar", "tagPrefix: must end in '/'"},
		{"tagPrefix: ''", "tagPrefix: must end in '/'"},
		{"tagPrefix: 'aws:sidecar/'", "tagPrefix: must not start with aws:"},
		{"tagPrefix: 'AWS:sidecar/'", "tagPrefix: must not start with aws:"},
		{"tagPrefix: 'ecs*sidecar/'", "tagPrefix: must match the tag key pattern"},
		{"tagPrefix: '" + strings.Repeat("a", 121) + "/'", "tagPrefix: too long"},
		{"defaultProfile: nope", `defaultProfile: unknown profile "nope"`},
		// rollouts
		{"rollouts: {maxInFlight: 0, maxInFlightPerCluster: 1}", "rollouts.maxInFlight: must be at least 1"},
		{"rollouts: {maxInFlightPerCluster: 0}", "rollouts.maxInFlightPerCluster: must be at least 1"},
		{"rollouts: {maxInFlightPerCluster: 101}", "rollouts.maxInFlightPerCluster: must not exceed rollouts.maxInFlight (100)"},
		{"rollouts: {maxInFlight: 3, maxInFlightPerCluster: 4}", "rollouts.maxInFlightPerCluster: must not exceed rollouts.maxInFlight (3)"},
		{"rollouts: {deadline: 0s}", "rollouts.deadline: must be at least 1s"},
		{"ownerTag: aws:cloudformation:stack-name", "ownerTag: must not start with aws:"},
		{"rollouts: {contestedAfter: -1}", "rollouts.contestedAfter: must be between 0 and 100"},
		{"rollouts: {contestedWindow: 10s}", "rollouts.contestedWindow: must be at least 1m"},
		{"rollouts: {rampStart: -1}", "rollouts.rampStart: must be between 0 (no ramp) and rollouts.maxInFlight (100)"},
		{"rollouts: {rampStart: 101}", "rollouts.rampStart: must be between 0 (no ramp) and rollouts.maxInFlight (100)"},
		{"rollouts: {maxInFlight: 3, rampStart: 4}", "rollouts.rampStart: must be between 0 (no ramp) and rollouts.maxInFlight (3)"},
		{"rollouts: {onOptOut: keep}", `rollouts.onOptOut: "keep" is not one of revert, leave`},
		// images
		{"images: {timeout: 0s}", "images.timeout: must be greater than 0"},
		{"images: {timeout: -5s}", "images.timeout: must be greater than 0"},
		{"images: {timeout: 30}", "images.timeout: must be a duration string"},
		{"images: {insecureRegistries: ['http://registry.example.com:5000']}", `images.insecureRegistries[0]: must be a registry host or host:port such as registry.example.com:5000, without a scheme, got "http://registry.example.com:5000"`},
		{"images: {insecureRegistries: ['registry.example.com/team']}", `images.insecureRegistries[0]: must be a registry host or host:port such as registry.example.com:5000, without a path`},
		{"images: {insecureRegistries: [ok.example.com, 'registry.example.com:0']}", `images.insecureRegistries[1]: must be a registry host or host:port such as registry.example.com:5000, got "registry.example.com:0" (the port must be 1 to 65535)`},
		{"images: {insecureRegistries: ['registry.example.com:']}", `images.insecureRegistries[0]: must be a registry host or host:port such as registry.example.com:5000, got "registry.example.com:" (a colon without a port)`},
		{"images: {insecureRegistries: ['-bad-.example.com']}", `images.insecureRegistries[0]: must be a registry host or host:port such as registry.example.com:5000, got "-bad-.example.com" (not a host name)`},
		{"images: {insecureRegistries: ['']}", `images.insecureRegistries[0]: must be a registry host or host:port such as registry.example.com:5000, got an empty string`},
		{"images: {insecureRegistries: ['[zz::1]:5000']}", `images.insecureRegistries[0]: must be a registry host or host:port such as registry.example.com:5000, got "[zz::1]:5000" (not an IPv6 address in brackets)`},
		{"images: {insecureRegistries: [a.example.com, A.example.com]}", `images.insecureRegistries[1]: "A.example.com" is already images.insecureRegistries[0]`},
		{"images: {insecureRegistries: registry.example.com}", "images.insecureRegistries: must be a list, got a string"},
		{"images: {caFiles: ['/nonexistent/ca.pem']}", "images.caFiles[0]: cannot read /nonexistent/ca.pem: no such file or directory"},
		{"images: {caFiles: ['/']}", "images.caFiles[0]: / is not a regular file"},
		{"images: {caFiles: ['']}", "images.caFiles[0]: must be the path of a PEM file of CA certificates, got an empty string"},
		{"images: {pinDigest: 'on'}", "images.pinDigest: must be"},
		// audit, metrics, log
		{"audit: {eventBus: 'bad bus!'}", "audit.eventBus: must be an event bus name or an arn:"},
		{"audit: {eventBus: 'arn:aws:sqs:us-east-1:123456789012:q'}", "audit.eventBus: must be an event bus name or an arn:"},
		{"metrics: {listen: '9102'}", "metrics.listen: must be host:port"},
		{"metrics: {listen: ':99999'}", "metrics.listen: must be host:port"},
		{"metrics: {listen: ''}", "metrics.listen: must be host:port"},
		{"log: {format: yaml}", `log.format: "yaml" is not one of json, text`},
		{"log: {level: verbose}", `log.level: "verbose" is not one of debug, info, warn, error`},
		// profiles
		{"profiles: {lacework: {type: other}}", `profiles.lacework.type: "other" is not one of lacework, custom`},
		{"profiles: {lacework: {sidecarName: 'bad name'}}", "profiles.lacework.sidecarName: must be 1-255 letters"},
		{"profiles: {lacework: {sidecarName: " + strings.Repeat("a", 256) + "}}", "profiles.lacework.sidecarName: must be 1-255 letters"},
		{"profiles: {lacework: {sidecarImage: 'Lacework/datacollector:x'}}", "profiles.lacework.sidecarImage: \"Lacework/datacollector:x\" is not an image reference"},
		{"profiles: {lacework: {sidecarImage: 'lacework/DataCollector:x'}}", "profiles.lacework.sidecarImage: "},
		{"profiles: {lacework: {sidecarImage: 'lacework/datacollector:'}}", "profiles.lacework.sidecarImage: "},
		{"profiles: {lacework: {sidecarImage: 'lacework/datacollector@sha256:abc'}}", "profiles.lacework.sidecarImage: "},
		{"profiles: {lacework: {sidecarImage: 'lacework/datacollector@md5:" + digest[7:] + "'}}", "profiles.lacework.sidecarImage: "},
		{"profiles: {lacework: {sidecarImage: 'https://registry/x:1'}}", "profiles.lacework.sidecarImage: "},
		{"profiles: {lacework: {logStreamPrefix: 'a:b'}}", "profiles.lacework.logStreamPrefix: must be at most 512 characters, without ':' or '*'"},
		{"profiles: {lacework: {tokenSecretArn: garbage}}", "profiles.lacework.tokenSecretArn: not an ARN"},
		{"profiles: {lacework: {tokenSecretArn: 'arn:aws:s3:::bucket/token'}}", "profiles.lacework.tokenSecretArn: must be a Secrets Manager secret"},
		{"profiles: {lacework: {tokenSecretArn: 'arn:aws:secretsmanager:us-east-1:1234:secret:t'}}", "profiles.lacework.tokenSecretArn: must be a Secrets Manager secret"},
		{"profiles: {lacework: {tokenSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:parameter/t'}}", "profiles.lacework.tokenSecretArn: must be a Secrets Manager secret"},
		{"profiles: {lacework: {tokenSecretArn: 'arn:aws:ssm:us-east-1:123456789012:secret:t'}}", "profiles.lacework.tokenSecretArn: must be a Secrets Manager secret"},
		{"profiles: {lacework: {tokenSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:a:b:c:d:e'}}", "profiles.lacework.tokenSecretArn: must be a Secrets Manager secret"},
		{"profiles: {lacework: {tokenPlaintext: x}}", "profiles.lacework.tokenPlaintext: requires allowPlaintextToken: true"},
		{"profiles: {lacework: {tokenPlaintext: x, allowPlaintextToken: true, tokenSecretArn: '" + secretARN + "'}}", "profiles.lacework.tokenPlaintext: cannot be combined with tokenSecretArn"},
		{"profiles: {lacework: {defaultExecutionRoleArn: ecsTaskExecutionRole}}", "profiles.lacework.defaultExecutionRoleArn: not an ARN"},
		{"profiles: {lacework: {defaultExecutionRoleArn: 'arn:aws:iam::123456789012:user/bob'}}", "profiles.lacework.defaultExecutionRoleArn: must be an IAM role ARN"},
		{"profiles: {lacework: {defaultExecutionRoleArn: 'arn:aws:iam:us-east-1:123456789012:role/r'}}", "profiles.lacework.defaultExecutionRoleArn: must be an IAM role ARN"},
		{"profiles: {lacework: {serverUrl: eu}}", "profiles.lacework.serverUrl: must be US, EU, ANZ or an https URL"},
		{"profiles: {lacework: {serverUrl: 'http://agent.example.com'}}", "profiles.lacework.serverUrl: must be US, EU, ANZ or an https URL"},
		{"profiles: {lacework: {laceworkConfig: '{bad'}}", "profiles.lacework.laceworkConfig: must be a JSON object"},
		{"profiles: {lacework: {laceworkConfig: '[1]'}}", "profiles.lacework.laceworkConfig: must be a JSON object"},
		{"profiles: {lacework: {laceworkConfig: 'null'}}", "profiles.lacework.laceworkConfig: must be a JSON object"},
		{"profiles: {lacework: {distroless: maybe}}", `profiles.lacework.distroless: "maybe" is not one of auto, true, false`},
		{"profiles: {lacework: {nonRoot: root}}", `profiles.lacework.nonRoot: "root" is not one of skip, sudo`},
		{"profiles: {lacework: {containers: {include: ['[']}}}", `profiles.lacework.containers.include[0]: bad glob "["`},
		{"profiles: {lacework: {containers: {exclude: [a, '']}}}", "profiles.lacework.containers.exclude[1]: empty pattern"},
		{"profiles: {lacework: {custom: {wrapper: [/w]}}}", "profiles.lacework.custom: only for type custom"},
		{"profiles: {c: {type: custom, sidecarImage: 'a/b:1'}}", "profiles.c.custom: required for type custom"},
		{"profiles: {c: {type: custom, custom: {wrapper: [/w]}}}", "profiles.c.sidecarImage: required for a custom profile"},
		{"profiles: {c: {type: custom, sidecarImage: 'a/b:1', custom: {wrapper: []}}}", "profiles.c.custom.wrapper: required"},
		{"profiles: {c: {type: custom, sidecarImage: 'a/b:1', custom: {}}}", "profiles.c.custom.wrapper: required"},
		{custom + ", '']}}}", "profiles.c.custom.wrapper[1]: must not be empty"},
		{custom + "], environment: {1X: a}}}}", `profiles.c.custom.environment.1X: not a variable name`},
		{custom + "], secrets: {KEY: plain}}}}", "profiles.c.custom.secrets.KEY: not an ARN"},
		{custom + "], dependsOnCondition: DONE}}}", `profiles.c.custom.dependsOnCondition: "DONE" is not one of START, COMPLETE, SUCCESS, HEALTHY`},
		{"profiles: {'bad name': {}}", `profiles["bad name"]: profile name must be 1-64`},
		// policies
		{"policies: [{families: {include: [a]}}]", "policies[0].name: required"},
		{"policies: [{name: a}, {name: a}]", `policies[1].name: "a" is already the name of policies[0]`},
		{"policies: [{name: a, families: {include: ['[a-']}}]", `policies[0].families.include[0]: bad glob "[a-"`},
		{"policies: [{name: a, families: {exclude: ['\\']}}]", `policies[0].families.exclude[0]: bad glob`},
		{"policies: [{name: a, clusters: [prod, '[']}]", `policies[0].clusters[1]: bad glob "["`},
		{"policies: [{name: a, optIn: sometimes}]", `policies[0].optIn: "sometimes" is not one of tag, always`},
		{"policies: [{name: a}, {name: b, profile: x}]", `policies[1].profile: unknown profile "x"`},
		{"policies: [{name: a, mode: sometimes}]", `policies[0].mode: "sometimes" is not one of enforce, audit, remove`},
		{"policies: [{name: a, tagProfiles: [lacework, x]}]", `policies[0].tagProfiles[1]: unknown profile "x"`},
		{"tagProfiles: [x]", `tagProfiles[0]: unknown profile "x"`},
		{"tagProfiles: [lacework, lacework]", `tagProfiles[1]: "lacework" is listed twice`},
		{"tagProfiles: lacework", `tagProfiles: must be a list, got a string`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			got := problems(err)
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("Parse(%q) problems:\n%s\nwant exactly one, starting with %q", tt.doc, strings.Join(got, "\n"), tt.want)
			}
			var fe *FieldError
			if err != nil && !errors.As(err, &fe) {
				t.Errorf("Parse(%q) = %v, want a *FieldError in it", tt.doc, err)
			}
		})
	}
}

// The exact message the brief asks for.
func TestTokenSecretArnGarbageMessage(t *testing.T) {
	_, err := Parse([]byte("profiles: {lacework: {tokenSecretArn: not-an-arn}}\n"))
	if got, want := err.Error(), "profiles.lacework.tokenSecretArn: not an ARN"; got != want {
		t.Errorf("Parse() error = %q, want %q", got, want)
	}
}

// Values near the edges that must be accepted.
func TestValidateAccepts(t *testing.T) {
	for _, doc := range []string{
		"aws: {region: us-gov-west-1}",
		"aws: {region: cn-north-1, endpoint: 'http://127.0.0.1:4566', maxAttempts: 10, apiBudget: {share: 1}}",
		"queue: {url: 'http://127.0.0.1:4566/000000000000/reconciler'}",
		"queue: {url: 'https://sqs.eu-west-1.amazonaws.com/123456789012/events.fifo', waitTimeSeconds: 0, maxMessages: 1}",
		"queue: {visibilityTimeout: 12h}",
		"queue: {maxHold: 6m}",
		"queue: {maxHold: 12h}",
		"queue: {visibilityTimeout: 3s, maxHold: 9s}",
		"queue: {visibilityTimeout: 5h, maxHold: 12h}",
		"sweeps: {services: {interval: 1s, jitter: 1}, families: {jitter: 0, maxCallsPerSecond: 20}}",
		"aws: {apiBudget: {share: 1, bucketScale: 10000}}",
		"aws: {apiBudget: {bucketScale: 0.5}}",
		"aws: {apiBudget: {bucketScale: 50}}\nsweeps: {families: {maxCallsPerSecond: 1000}}",
		"workers: 64",
		"mode: remove",
		"tagPrefix: 'acme.io/sidecar/'",
		"tagPrefix: 'sécurité:@=+ x/'",
		"tagPrefix: '" + strings.Repeat("a", 120) + "/'",
		"rollouts: {maxInFlight: 1, maxInFlightPerCluster: 1, deadline: 1s}",
		"rollouts: {maxInFlight: 50, maxInFlightPerCluster: 10, rampStart: 2}",
		"rollouts: {rampStart: 5}",
		"rollouts: {maxInFlight: 3}", // the per-cluster bound and the ramp's start follow it (TestRolloutDefaultsFollowMaxInFlight)
		"images: {timeout: 1ms, pinDigest: true, insecureRegistries: [registry.example.com, 'registry.example.com:5000', 'localhost:5000', '10.0.0.7:80', '[::1]:5000', '[fd00::1]', my-registry]}",
		"audit: {eventBus: 'aws.partner/example.com/123/events'}",
		"audit: {eventBus: 'arn:aws:events:us-east-1:123456789012:event-bus/audit'}",
		"metrics: {listen: '127.0.0.1:0'}",
		"metrics: {listen: '[::1]:9102'}",
		"profiles: {lacework: {tokenSecretArn: 'arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:t'}}",
		"profiles: {lacework: {tokenSecretArn: '" + secretARN + ":token:AWSCURRENT:'}}",
		"profiles: {lacework: {tokenSecretArn: 'arn:aws:ssm:us-east-1:123456789012:parameter/lacework/token'}}",
		"profiles: {lacework: {tokenPlaintext: x, allowPlaintextToken: true}}",
		"profiles: {lacework: {defaultExecutionRoleArn: 'arn:aws-us-gov:iam::123456789012:role/service-role/ecs-exec'}}",
		"profiles: {lacework: {sidecarImage: '123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/lacework/datacollector:latest-sidecar'}}",
		"profiles: {lacework: {sidecarImage: 'localhost:5000/a/b'}}",
		"profiles: {lacework: {sidecarImage: busybox}}",
		"profiles: {lacework: {sidecarImage: 'Registry.Example.com/lacework/datacollector:v1'}}",
		"profiles: {lacework: {sidecarImage: 'lacework/datacollector@" + digest + "'}}",
		"profiles: {lacework: {sidecarImage: 'lacework/datacollector:7.2.0@" + digest + "'}}",
		"profiles: {lacework: {serverUrl: ANZ}}",
		"profiles: {lacework: {serverUrl: 'https://agent.example.com:8443/path'}}",
		"profiles: {lacework: {laceworkConfig: '{}', distroless: true, nonRoot: sudo}}",
		"profiles: {lacework: {distroless: 'false', verbose: true}}",
		"profiles: {lacework: {containers: {include: ['app-*', '[ab]?'], exclude: [sidecar]}}}",
		"profiles: {lacework: {}, c: {type: custom, sidecarImage: 'a/b:1', custom: {wrapper: [/w, --], environment: {_A1: x}, secrets: {K: '" + secretARN + "'}, dependsOnCondition: START}}}",
		"policies: [{name: a, families: {include: ['*']}, clusters: ['*'], optIn: tag, profile: lacework, mode: audit}, {name: b}]",
	} {
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("Parse(%q) = %v, want no error", doc, err)
		}
	}
}

// One file with many mistakes: every one is reported, in a stable order.
func TestEveryMistakeReported(t *testing.T) {
	doc := `
aws:
  regoin: us-east-1
  maxAttempts: many
  apiBudget: {share: 0}
queue:
  waitTimeSeconds: 30
  visibilityTimeout: 30
  maxMessages: 0
workers: 100
mode: observe
tagPrefix: ecs-sidecar
rollouts: {onOptOut: never}
profiles:
  lacework:
    tokenSecretArn: garbage
    sidecarName: "no spaces"
    distroless: sometimes
  agent:
    type: custom
policies:
  - name: one
    profile: missing
  - name: one
    families: {include: ["["]}
`
	_, err := Parse([]byte(doc))
	var paths []string
	for _, e := range problemErrors(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Errorf("problem %q is not a *FieldError", e)
			continue
		}
		paths = append(paths, fe.Path)
	}
	want := []string{
		"aws.maxAttempts",
		"aws.regoin",
		"queue.visibilityTimeout",
		"aws.apiBudget.share",
		"queue.waitTimeSeconds",
		"queue.maxMessages",
		"workers",
		"mode",
		"tagPrefix",
		"rollouts.onOptOut",
		"profiles.agent.sidecarImage",
		"profiles.agent.custom",
		"profiles.lacework.sidecarName",
		"profiles.lacework.tokenSecretArn",
		"profiles.lacework.distroless",
		"policies[0].profile",
		"policies[1].name",
		"policies[1].families.include[0]",
	}
	if diff := cmp.Diff(paths, want); diff != "" {
		t.Errorf("problem paths (-got +want)\n%s\nerror:\n%v", diff, err)
	}
	if got, want := len(problems(err)), 18; got != want {
		t.Errorf("%d problems, want %d", got, want)
	}
}

func problemErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, problemErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// Unknown keys, wrong types and YAML errors, with the key at fault.
func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown top-level key", "wrokers: 4", []string{`wrokers: unknown key (did you mean "workers"?)`}},
		{"unknown nested key", "aws: {apiBudget: {shares: 1}}", []string{`aws.apiBudget.shares: unknown key (did you mean "share"?)`}},
		{"keys are case-sensitive", "queue: {URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/q'}", []string{`queue.URL: unknown key (did you mean "url"?)`}},
		{"unknown key, nothing close", "telemetry: {}", []string{"telemetry: unknown key"}},
		{"unknown profile key", "profiles: {lacework: {token: x}}", []string{"profiles.lacework.token: unknown key"}},
		{"name is not a profile key", "profiles: {lacework: {name: x}}", []string{"profiles.lacework.name: unknown key"}},
		{"unknown custom key", "profiles: {c: {type: custom, sidecarImage: 'a/b:1', custom: {wrapper: [w], env: {}}}}", []string{`profiles.c.custom.env: unknown key`}},
		{"unknown policy key", "policies: [{name: a}, {name: b, family: x}]", []string{`policies[1].family: unknown key (did you mean "families"?)`}},
		{"int as string", "workers: four", []string{"workers: must be an integer, got a string"}},
		{"int with fraction", "queue: {maxMessages: 2.5}", []string{"queue.maxMessages: must be an integer"}},
		{"int out of range", "workers: 99999999999999999999", []string{"workers: integer out of range"}},
		{"float as string", "aws: {apiBudget: {share: half}}", []string{"aws.apiBudget.share: must be a number, got a string"}},
		{"bool as string", "rollouts: {canary: 'yes'}", []string{"rollouts.canary: must be true or false, got a string"}},
		{"string as list", "mode: [enforce]", []string{"mode: must be a string, got a list"}},
		{"struct as scalar", "queue: 5", []string{"queue: must be a mapping, got a number"}},
		{"map as list", "profiles: [lacework]", []string{"profiles: must be a mapping, got a list"}},
		{"list as map", "policies: {name: a}", []string{"policies: must be a list, got a mapping"}},
		{"glob list as string", "policies: [{name: a, clusters: prod}]", []string{"policies[0].clusters: must be a list, got a string"}},
		{"duration as number", "rollouts: {deadline: 30}", []string{`rollouts.deadline: must be a duration string such as "30s" or "5m"`}},
		{"duration garbage", "rollouts: {deadline: soon}", []string{`rollouts.deadline: must be a duration such as "30s" or "5m", got "soon"`}},
		{"document not a mapping", "- a\n- b", []string{"(top level): must be a mapping, got a list"}},
		{"broken YAML", "aws: {region: [", []string{"yaml: line 1: did not find expected node content"}},
		{"duplicate key", "workers: 1\nworkers: 2", []string{"yaml: unmarshal errors:\n  line 2: key \"workers\" already set in map"}},
		{"several decode errors", "wrokers: 4\nmode: [x]\nqueue: {maxMessages: x}", []string{
			`wrokers: unknown key (did you mean "workers"?)`,
			"mode: must be a string, got a list",
			"queue.maxMessages: must be an integer, got a string",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			got := problems(err)
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("Parse(%q) (-got +want)\n%s", tt.doc, diff)
			}
		})
	}
}

// Decode errors do not hide validation errors elsewhere in the file.
func TestDecodeAndValidationErrorsTogether(t *testing.T) {
	_, err := Parse([]byte("wrokers: 4\nqueue: {waitTimeSeconds: 99}\n"))
	want := []string{
		`wrokers: unknown key (did you mean "workers"?)`,
		"queue.waitTimeSeconds: must be between 0 and 20",
	}
	if diff := cmp.Diff(problems(err), want); diff != "" {
		t.Errorf("(-got +want)\n%s", diff)
	}
}

// YAML scalars given for string keys are read as strings, as the YAML
// decoder does.
func TestScalarsForStrings(t *testing.T) {
	c := mustParse(t, "profiles: {lacework: {distroless: true, sidecarName: 1234}}\n")
	p, _ := c.Profile("lacework")
	if diff := cmp.Diff([]string{p.Distroless, p.SidecarName}, []string{"true", "1234"}); diff != "" {
		t.Errorf("(-got +want)\n%s", diff)
	}
}

// images.caFiles are read when the config is: a CA bundle is accepted; a
// file that is not one is reported with its key and index, naming the file
// and quoting none of it.
func TestImagesCAFiles(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	srv.Close()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	good := write("ca.pem", append(append([]byte("# corp CA\n"), cert...), cert...))
	key := write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("k3y-Material")}))
	text := write("notes.txt", []byte("k3y-Material but no PEM\n"))
	broken := write("broken.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("k3y-Material")}))
	big := write("big.pem", bytes.Repeat([]byte("x"), 1<<20+1))

	c := mustParse(t, "images: {caFiles: ['"+good+"']}")
	if d := cmp.Diff(c.Images.CAFiles, []string{good}); d != "" {
		t.Errorf("caFiles (-got +want):\n%s", d)
	}
	_, err := Parse([]byte("images: {caFiles: ['" + good + "', '" + key + "', '" + text + "', '" + broken + "', '" + big + "']}"))
	want := []string{
		`images.caFiles[1]: ` + key + `: PEM block 1 is "PRIVATE KEY", not CERTIFICATE (want CA certificates only)`,
		`images.caFiles[2]: ` + text + ` holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
		`images.caFiles[3]: ` + broken + `: PEM block 1 is not an X.509 certificate`,
		`images.caFiles[4]: ` + big + ` is larger than 1 MiB: not a PEM file of CA certificates`,
	}
	if d := cmp.Diff(problems(err), want); d != "" {
		t.Errorf("problems (-got +want):\n%s", d)
	}
	if err != nil && strings.Contains(err.Error(), "k3y-Material") {
		t.Errorf("an error quotes a file's content: %v", err)
	}
}
