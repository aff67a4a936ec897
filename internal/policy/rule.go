// Package policy decides, from tags, names and rules, whether a task
// definition family is instrumented and with which profile. It is pure: no AWS.
package policy

// Rule is one policy of the config file's policies list. Rules are tried in
// order; the first whose Families and Clusters match a family decides.
type Rule struct {
	// Name identifies the rule in logs and metrics.
	Name string `json:"name"`
	// Families are globs (path.Match syntax) on the family name.
	Families Selector `json:"families,omitempty"`
	// Clusters restricts the rule to services in these clusters (names or
	// globs); empty means every cluster.
	Clusters []string `json:"clusters,omitempty"`
	// OptIn is "tag" (default: only families that opt in by tag) or
	// "always" (every matching family, unless its tag says false).
	OptIn string `json:"optIn,omitempty"`
	// Profile names the profile to use unless the family's profile tag names
	// one that tags may pick.
	Profile string `json:"profile,omitempty"`
	// TagProfiles names the profiles the profile tag may pick for the
	// families this rule matches, in place of the global list
	// (TagProfiles.Allow). Unset (nil): the global list; empty: no tag
	// picks a profile. A profile with a plaintext token is picked by a tag
	// only when a list names it.
	TagProfiles []string `json:"tagProfiles,omitzero"`
	// Mode overrides the global mode for this rule: "enforce", "audit" or "remove".
	Mode string `json:"mode,omitempty"`
}

// Selector includes and excludes by glob; an empty Include matches everything.
type Selector struct {
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// Opt-in styles and modes.
const (
	OptInTag    = "tag"
	OptInAlways = "always"

	ModeEnforce = "enforce"
	ModeAudit   = "audit"
	ModeRemove  = "remove"
)
