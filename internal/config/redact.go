package config

import (
	"log/slog"
	"maps"

	"sigs.k8s.io/yaml"
)

// Redacted is the placeholder that replaces secrets in Redacted and String.
const RedactedText = "REDACTED"

// Redacted returns a copy of c whose tokenPlaintext values are replaced by
// the placeholder "REDACTED", fit for logs and `check` output. c is unchanged.
func (c *Config) Redacted() *Config {
	r := *c
	r.Profiles = maps.Clone(c.Profiles)
	for name, p := range r.Profiles {
		if p.TokenPlaintext != "" {
			p.TokenPlaintext = RedactedText
		}
		if p.Custom != nil {
			cp := *p.Custom
			p.Custom = &cp
		}
		r.Profiles[name] = p
	}
	return &r
}

// String is the redacted configuration as YAML: every key, defaults
// included, and never the value of tokenPlaintext.
func (c *Config) String() string {
	b, err := yaml.Marshal(c.Redacted())
	if err != nil {
		return "<config: " + err.Error() + ">"
	}
	return string(b)
}

// LogValue makes slog print the redacted configuration.
func (c *Config) LogValue() slog.Value {
	return slog.StringValue(c.String())
}
