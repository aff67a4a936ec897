package policy

import (
	"path"
	"strings"
)

// DefaultTagPrefix is the prefix of the reconciler's tags unless configured.
const DefaultTagPrefix = "ecs-sidecar/"

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
)

// Reasons lists every reason, for pre-creating metric series.
func Reasons() []Reason {
	return []Reason{OptedInByTag, OptedOutByTag, OptedInByPolicy, ExcludedByPolicy, NotOptedIn, InvalidTag}
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
	// TagPrefix defaults to DefaultTagPrefix.
	TagPrefix string
}

// Decision says whether a family is instrumented, with which profile, and why.
type Decision struct {
	Instrument bool
	// Profile is the profile named by the profile tag, else by the rule;
	// empty means the configuration's default.
	Profile string
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
// in, tag (the default) does not.
func Decide(in Input) Decision {
	prefix := in.TagPrefix
	if prefix == "" {
		prefix = DefaultTagPrefix
	}
	var d Decision

	tag, tagRev, hasTag := inherited(in.Revisions, prefix, prefix+"inject")
	profile, _, _ := inherited(in.Revisions, prefix, prefix+"profile")

	rule, excluded := firstRule(in.Rules, in.Family, in.Clusters)
	if rule != nil {
		d.Rule, d.Mode, d.Profile = rule.Name, rule.Mode, rule.Profile
	}
	if profile != "" {
		d.Profile = profile
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
			d.Instrument, d.Reason = true, OptedInByTag
		case "false":
			d.Reason = OptedOutByTag
		default:
			d.Reason = InvalidTag
		}
		return d
	}
	if rule != nil && rule.OptIn == OptInAlways {
		d.Instrument, d.Reason = true, OptedInByPolicy
		return d
	}
	d.Reason = NotOptedIn
	return d
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
