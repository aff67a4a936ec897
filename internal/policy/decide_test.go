package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func rev(n int32, kv ...string) Revision {
	r := Revision{Number: n, Tags: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Tags[kv[i]] = kv[i+1]
	}
	return r
}

func TestDecide(t *testing.T) {
	always := Rule{Name: "web-always", Families: Selector{Include: []string{"web-*"}, Exclude: []string{"web-legacy"}}, OptIn: OptInAlways, Profile: "eu", Mode: ModeAudit}
	prod := Rule{Name: "prod-only", Families: Selector{Include: []string{"api"}}, Clusters: []string{"prod-*"}, OptIn: OptInAlways}
	byTag := Rule{Name: "by-tag", Profile: "default-lw"}

	tests := []struct {
		name string
		in   Input
		want Decision
	}{
		{
			name: "no tag, no rule",
			in:   Input{Family: "web", Revisions: []Revision{rev(3), rev(2)}},
			want: Decision{Reason: NotOptedIn},
		},
		{
			name: "newest revision with the tag decides, untagged newer revisions inherit",
			in:   Input{Family: "web", Revisions: []Revision{rev(5), rev(4), rev(3, "ecs-sidecar/inject", "true"), rev(2, "ecs-sidecar/inject", "false")}},
			want: Decision{Instrument: true, Reason: OptedInByTag, Revision: 3},
		},
		{
			name: "explicit false opts out even when an older revision opted in",
			in:   Input{Family: "web", Revisions: []Revision{rev(4), rev(3, "ecs-sidecar/inject", "False"), rev(2, "ecs-sidecar/inject", "true")}},
			want: Decision{Reason: OptedOutByTag, Revision: 3},
		},
		{
			name: "twins' tags never count, by flag or by marker tag",
			in: Input{Family: "web", Revisions: []Revision{
				{Number: 6, Twin: true, Tags: map[string]string{"ecs-sidecar/inject": "false"}},
				rev(5, "ecs-sidecar/source", "4", "ecs-sidecar/inject", "false"),
				rev(4, "ecs-sidecar/inject", "true", "ecs-sidecar/profile", "eu"),
			}},
			want: Decision{Instrument: true, Reason: OptedInByTag, Profile: "eu", Revision: 4},
		},
		{
			name: "a value other than true or false is reported, not guessed",
			in:   Input{Family: "web", Revisions: []Revision{rev(2, "ecs-sidecar/inject", "yes")}},
			want: Decision{Reason: InvalidTag, Revision: 2},
		},
		{
			name: "policy opts in without a tag, with its profile and mode",
			in:   Input{Family: "web-shop", Revisions: []Revision{rev(1)}, Rules: []Rule{always, byTag}},
			want: Decision{Instrument: true, Reason: OptedInByPolicy, Rule: "web-always", Profile: "eu", Mode: ModeAudit},
		},
		{
			name: "the tag's profile wins over the rule's; a false tag wins over optIn always",
			in:   Input{Family: "web-shop", Revisions: []Revision{rev(1, "ecs-sidecar/inject", "false", "ecs-sidecar/profile", "us")}, Rules: []Rule{always}},
			want: Decision{Reason: OptedOutByTag, Rule: "web-always", Profile: "us", Mode: ModeAudit, Revision: 1},
		},
		{
			name: "policy exclusion wins over an opt-in tag",
			in:   Input{Family: "web-legacy", Revisions: []Revision{rev(1, "ecs-sidecar/inject", "true")}, Rules: []Rule{always, byTag}},
			want: Decision{Reason: ExcludedByPolicy, Rule: "web-always", Profile: "eu", Mode: ModeAudit, Revision: 1},
		},
		{
			name: "a rule with optIn tag needs the tag",
			in:   Input{Family: "billing", Revisions: []Revision{rev(1)}, Rules: []Rule{always, byTag}},
			want: Decision{Reason: NotOptedIn, Rule: "by-tag", Profile: "default-lw"},
		},
		{
			name: "a cluster rule applies to a family with a service in a matching cluster (ARN or name)",
			in:   Input{Family: "api", Clusters: []string{"arn:aws:ecs:us-east-1:123456789012:cluster/staging", "arn:aws:ecs:us-east-1:123456789012:cluster/prod-eu"}, Rules: []Rule{prod}},
			want: Decision{Instrument: true, Reason: OptedInByPolicy, Rule: "prod-only"},
		},
		{
			name: "a cluster rule does not apply elsewhere, nor to a family without services",
			in:   Input{Family: "api", Clusters: []string{"staging"}, Rules: []Rule{prod, byTag}},
			want: Decision{Reason: NotOptedIn, Rule: "by-tag", Profile: "default-lw"},
		},
		{
			name: "custom tag prefix",
			in:   Input{Family: "web", TagPrefix: "sec/", Revisions: []Revision{rev(2, "ecs-sidecar/inject", "false", "sec/inject", "true")}},
			want: Decision{Instrument: true, Reason: OptedInByTag, Revision: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.in)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Decide (-got +want):\n%s", diff)
			}
		})
	}
}

func TestReasonsComplete(t *testing.T) {
	seen := map[Reason]bool{}
	for _, r := range Reasons() {
		if seen[r] || r == "" {
			t.Errorf("duplicate or empty reason %q", r)
		}
		seen[r] = true
	}
	if len(seen) != 7 {
		t.Errorf("got %d reasons, want 7", len(seen))
	}
}

// Whoever may tag a task definition may choose its profile among those that
// tags may pick; by default never one that writes a plaintext token.
func TestDecideTagProfiles(t *testing.T) {
	tagged := func(inject, profile string) []Revision {
		return []Revision{rev(3), rev(2, "ecs-sidecar/inject", inject, "ecs-sidecar/profile", profile)}
	}
	// Profiles: lacework (the default, a secret), eu (a secret), plain (a
	// plaintext token).
	def := TagProfiles{Plaintext: []string{"plain"}, Default: "lacework"}
	always := Rule{Name: "always", OptIn: OptInAlways}
	withProfile := Rule{Name: "eu-rule", OptIn: OptInAlways, Profile: "eu"}
	plainRule := Rule{Name: "plain-rule", Profile: "plain"}
	mayPlain := Rule{Name: "may-plain", TagProfiles: []string{"plain"}}
	noPicks := Rule{Name: "no-picks", TagProfiles: []string{}}

	tests := []struct {
		name string
		in   Input
		want Decision
	}{
		{
			name: "a tag picking a plaintext profile is refused: the default profile",
			in:   Input{Family: "web", Revisions: tagged("true", "plain"), TagProfiles: def},
			want: Decision{Instrument: true, Reason: ProfileTagNotAllowed, RefusedProfile: "plain", Revision: 2},
		},
		{
			name: "refused with a policy opt-in too: the rule's profile",
			in:   Input{Family: "web", Revisions: []Revision{rev(1, "ecs-sidecar/profile", "plain")}, Rules: []Rule{withProfile}, TagProfiles: def},
			want: Decision{Instrument: true, Reason: ProfileTagNotAllowed, RefusedProfile: "plain", Rule: "eu-rule", Profile: "eu"},
		},
		{
			name: "a normal profile tag still picks",
			in:   Input{Family: "web", Revisions: tagged("true", "eu"), TagProfiles: def},
			want: Decision{Instrument: true, Reason: OptedInByTag, Profile: "eu", Revision: 2},
		},
		{
			name: "a profile tag over a rule's profile",
			in:   Input{Family: "web", Revisions: tagged("true", "lacework"), Rules: []Rule{withProfile}, TagProfiles: def},
			want: Decision{Instrument: true, Reason: OptedInByTag, Rule: "eu-rule", Profile: "lacework", Revision: 2},
		},
		{
			name: "the global list can allow a plaintext profile",
			in:   Input{Family: "web", Revisions: tagged("true", "plain"), TagProfiles: TagProfiles{Allow: []string{"eu", "plain"}, Plaintext: []string{"plain"}, Default: "lacework"}},
			want: Decision{Instrument: true, Reason: OptedInByTag, Profile: "plain", Revision: 2},
		},
		{
			name: "a global list allows only what it names",
			in:   Input{Family: "web", Revisions: tagged("true", "eu"), TagProfiles: TagProfiles{Allow: []string{"plain"}, Plaintext: []string{"plain"}, Default: "lacework"}},
			want: Decision{Instrument: true, Reason: ProfileTagNotAllowed, RefusedProfile: "eu", Revision: 2},
		},
		{
			name: "a rule's list can allow a plaintext profile",
			in:   Input{Family: "web", Revisions: tagged("true", "plain"), Rules: []Rule{mayPlain}, TagProfiles: def},
			want: Decision{Instrument: true, Reason: OptedInByTag, Rule: "may-plain", Profile: "plain", Revision: 2},
		},
		{
			name: "a rule's list replaces the global one",
			in:   Input{Family: "web", Revisions: tagged("true", "eu"), Rules: []Rule{mayPlain}, TagProfiles: def},
			want: Decision{Instrument: true, Reason: ProfileTagNotAllowed, RefusedProfile: "eu", Rule: "may-plain", Revision: 2},
		},
		{
			name: "an empty rule list: no tag picks",
			in:   Input{Family: "web", Revisions: tagged("true", "eu"), Rules: []Rule{noPicks}, TagProfiles: def},
			want: Decision{Instrument: true, Reason: ProfileTagNotAllowed, RefusedProfile: "eu", Rule: "no-picks", Revision: 2},
		},
		{
			name: "naming the profile the family gets anyway is no pick: the default",
			in:   Input{Family: "web", Revisions: tagged("true", "lacework"), Rules: []Rule{noPicks}, TagProfiles: def},
			want: Decision{Instrument: true, Reason: OptedInByTag, Rule: "no-picks", Profile: "lacework", Revision: 2},
		},
		{
			name: "naming the profile the family gets anyway is no pick: the rule's plaintext profile",
			in:   Input{Family: "web", Revisions: tagged("true", "plain"), Rules: []Rule{plainRule}, TagProfiles: def},
			want: Decision{Instrument: true, Reason: OptedInByTag, Rule: "plain-rule", Profile: "plain", Revision: 2},
		},
		{
			name: "an opted-out family keeps its reason; the refused tag is still reported",
			in:   Input{Family: "web", Revisions: tagged("false", "plain"), Rules: []Rule{always}, TagProfiles: def},
			want: Decision{Reason: OptedOutByTag, RefusedProfile: "plain", Rule: "always", Revision: 2},
		},
		{
			name: "a profile tag names an unknown profile: not a plaintext one, left to the caller",
			in:   Input{Family: "web", Revisions: tagged("true", "nope"), TagProfiles: def},
			want: Decision{Instrument: true, Reason: OptedInByTag, Profile: "nope", Revision: 2},
		},
		{
			name: "the zero TagProfiles lets a tag pick any profile",
			in:   Input{Family: "web", Revisions: tagged("true", "plain")},
			want: Decision{Instrument: true, Reason: OptedInByTag, Profile: "plain", Revision: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(Decide(tt.in), tt.want); diff != "" {
				t.Errorf("Decide (-got +want):\n%s", diff)
			}
		})
	}
}
