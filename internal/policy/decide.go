package policy

import (
	"path"
	"slices"
	"strings"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// Reason is the fixed code of a decision; it becomes a metric label.
type Reason string

// Every reason Decide gives.
const (
	// OptedInByTag: the deciding revision's inject tag is true.
	OptedInByTag Reason = "opted_in_by_tag"
	// OptedOutByTag: the deciding revision's inject tag is false.
	OptedOutByTag Reason = "opted_out_by_tag"
	// OptedInByPolicy: no tag, and the first matching rule has optIn always.
	OptedInByPolicy Reason = "opted_in_by_policy"
	// ExcludedByPolicy: the first rule whose include matches also excludes the family.
	ExcludedByPolicy Reason = "excluded_by_policy"
	// NotOptedIn: no tag, and no matching rule opts in without one.
	NotOptedIn Reason = "not_opted_in"
	// InvalidTag: the deciding inject tag is neither true nor false.
	InvalidTag Reason = "invalid_tag"
	// ProfileTagNotAllowed: the family is instrumented (opted in by tag or
	// by policy), but its profile tag names a profile that tags may not pick
	// (see TagProfiles): it gets the rule's profile, or the default.
	ProfileTagNotAllowed Reason = "profile_tag_not_allowed"
)

// Reasons lists every reason, for pre-creating metric series.
func Reasons() []Reason {
	return []Reason{OptedInByTag, OptedOutByTag, OptedInByPolicy, ExcludedByPolicy, NotOptedIn, InvalidTag, ProfileTagNotAllowed}
}

// Revision is one revision of the family and its tags.
type Revision struct {
	Number int32
	Tags   map[string]string
	// Twin is true for the reconciler's own revisions (known from Classify);
	// a revision with the source marker tag is a twin too.
	Twin bool
}

// Input is what Decide looks at for one family.
type Input struct {
	Family string
	// Revisions are the family's revisions, newest first. Twins may be
	// included: they are ignored.
	Revisions []Revision
	// Clusters are the names (or ARNs) of the clusters where the family's
	// services run; empty for a family with no service.
	Clusters []string
	Rules    []Rule
	// TagPrefix defaults to patch.DefaultTagPrefix.
	TagPrefix string
	// TagProfiles says which profiles the profile tag may pick. The zero
	// value lets a tag pick any profile: callers that have the
	// configuration pass its TagProfilePolicy.
	TagProfiles TagProfiles
}

// TagProfiles says which profiles the profile tag may pick. Whoever may tag
// a task definition may choose among them, so by default a tag never picks
// a profile that writes a plaintext token into task definitions. A tag
// that names the profile the family gets without it (the rule's, else
// Default) picks nothing and is never refused.
type TagProfiles struct {
	// Allow names the profiles a tag may pick for families whose rule has
	// no TagProfiles of its own. Nil: every profile not in Plaintext; empty:
	// none.
	Allow []string
	// Plaintext names the profiles that carry a plaintext token: without a
	// list (Allow, Rule.TagProfiles) that names them, no tag picks them.
	Plaintext []string
	// Default is the profile of a family when neither its tag nor its rule
	// names one (the configuration's defaultProfile).
	Default string
}

// allows reports whether the profile tag may pick name for a family that
// rule (nil: none) matches.
func (t TagProfiles) allows(rule *Rule, name string) bool {
	without := t.Default
	if rule != nil && rule.Profile != "" {
		without = rule.Profile
	}
	if name == without {
		return true
	}
	allow := t.Allow
	if rule != nil && rule.TagProfiles != nil {
		allow = rule.TagProfiles
	}
	if allow != nil {
		return slices.Contains(allow, name)
	}
	return !slices.Contains(t.Plaintext, name)
}

// Decision says whether a family is instrumented, with which profile, and why.
type Decision struct {
	Instrument bool
	// Profile is the profile named by the profile tag when tags may pick
	// it, else by the rule; empty means the configuration's default.
	Profile string
	// RefusedProfile is the profile the profile tag names when tags may
	// not pick it (Input.TagProfiles); Profile is then the rule's or empty.
	// An instrumented family with a refused profile tag has the reason
	// ProfileTagNotAllowed.
	RefusedProfile string
	// Mode is the rule's mode override; empty means the global mode.
	Mode string
	// Rule names the rule that matched, if any.
	Rule   string
	Reason Reason
	// Revision is the source revision whose inject tag decided (0: none).
	Revision int32
}

// Decide applies the family's opt-in tag and the policy rules. The tag:
// the newest source revision (never a twin) carrying the inject tag
// decides, so revisions registered without tags inherit; only an explicit
// false opts out. Rules are tried in order; the first whose families and
// clusters match applies. A rule whose include matches and whose exclude
// also matches excludes the family, whatever its tag. Otherwise the tag
// decides if there is one, and without a tag the rule's optIn: always opts
// in, tag (the default) does not. The profile tag (inherited the same way)
// names the profile when in.TagProfiles lets tags pick it; a refused one
// leaves the rule's or the default profile, with the reason
// ProfileTagNotAllowed when the family is instrumented.
func Decide(in Input) Decision {
	prefix := in.TagPrefix
	if prefix == "" {
		prefix = patch.DefaultTagPrefix
	}
	var d Decision

	tag, tagRev, hasTag := inherited(in.Revisions, prefix, prefix+"inject")
	profile, _, _ := inherited(in.Revisions, prefix, prefix+"profile")

	rule, excluded := firstRule(in.Rules, in.Family, in.Clusters)
	if rule != nil {
		d.Rule, d.Mode, d.Profile = rule.Name, rule.Mode, rule.Profile
	}
	if profile != "" {
		if in.TagProfiles.allows(rule, profile) {
			d.Profile = profile
		} else {
			d.RefusedProfile = profile
		}
	}
	if excluded {
		d.Reason = ExcludedByPolicy
		d.Revision = tagRev
		return d
	}
	if hasTag {
		d.Revision = tagRev
		switch strings.ToLower(strings.TrimSpace(tag)) {
		case "true":
			d.Instrument, d.Reason = true, d.optedIn(OptedInByTag)
		case "false":
			d.Reason = OptedOutByTag
		default:
			d.Reason = InvalidTag
		}
		return d
	}
	if rule != nil && rule.OptIn == OptInAlways {
		d.Instrument, d.Reason = true, d.optedIn(OptedInByPolicy)
		return d
	}
	d.Reason = NotOptedIn
	return d
}

// optedIn is the reason of an instrumented family: why, unless its profile
// tag was refused.
func (d *Decision) optedIn(why Reason) Reason {
	if d.RefusedProfile != "" {
		return ProfileTagNotAllowed
	}
	return why
}

// inherited returns the value of key on the newest source revision that
// carries it.
func inherited(revs []Revision, prefix, key string) (string, int32, bool) {
	for _, r := range revs {
		if r.Twin {
			continue
		}
		if _, twin := r.Tags[prefix+"source"]; twin {
			continue
		}
		if v, ok := r.Tags[key]; ok {
			return v, r.Number, true
		}
	}
	return "", 0, false
}

// firstRule returns the first rule that applies to the family, and whether
// that rule excludes it.
func firstRule(rules []Rule, family string, clusters []string) (*Rule, bool) {
	for i := range rules {
		r := &rules[i]
		if len(r.Families.Include) > 0 && !Match(r.Families.Include, family) {
			continue
		}
		if len(r.Clusters) > 0 && !anyCluster(r.Clusters, clusters) {
			continue
		}
		return r, Match(r.Families.Exclude, family)
	}
	return nil, false
}

func anyCluster(patterns, clusters []string) bool {
	for _, c := range clusters {
		if i := strings.LastIndex(c, "/"); i >= 0 && strings.HasPrefix(c, "arn:") {
			c = c[i+1:]
		}
		if Match(patterns, c) {
			return true
		}
	}
	return false
}

// Match reports whether name equals or matches (path.Match) one of the patterns.
func Match(patterns []string, name string) bool {
	for _, p := range patterns {
		if p == name {
			return true
		}
		if ok, err := path.Match(p, name); err == nil && ok {
			return true
		}
	}
	return false
}
