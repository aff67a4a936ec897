package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ecs-sidecar/reconciler/internal/patch"
)

const plaintext = "s3cr3t-VALUE-42"

// No error ever contains the value of tokenPlaintext, whatever is wrong
// around it.
func TestPlaintextTokenNeverInErrors(t *testing.T) {
	docs := []string{
		"profiles: {lacework: {tokenPlaintext: " + plaintext + "}}",
		"profiles: {lacework: {tokenPlaintext: " + plaintext + ", allowPlaintextToken: true, tokenSecretArn: '" + secretARN + "'}}",
		"profiles: {lacework: {tokenPlaintext: " + plaintext + ", allowPlaintextToken: true, serverUrl: x, sidecarName: 'a b'}}",
		"profiles: {lacework: {tokenPlaintext: [" + plaintext + "]}}",
		"profiles: {lacework: {tokenPlaintext: {" + plaintext + ": " + plaintext + "}}}",
		"profiles: {lacework: {TokenPlaintext: " + plaintext + "}}",
		"profiles: {lacework: {tokenplaintext: " + plaintext + "}}",
		"profiles: {lacework: {extra: {tokenPlaintext: " + plaintext + "}}}",
		"profiles: {lacework: {custom: {tokenPlaintext: " + plaintext + "}}}",
		"tokenPlaintext: " + plaintext,
		"profiles:\n  lacework:\n    tokenPlaintext: " + plaintext + "\n    tokenPlaintext: " + plaintext + "\n",
		"profiles: {lacework: {tokenPlaintext: " + plaintext + ", ]",
		"profiles:\n  lacework:\n    tokenPlaintext: " + plaintext + "\n   bad: indent\n",
		"profiles: {lacework: {tokenPlaintext: 123456789012345}}",
		"profiles: {lacework: {tokenPlaintext: '" + plaintext + "', allowPlaintextToken: 'yes'}}",
		"profiles: [{tokenPlaintext: " + plaintext + "}]",
	}
	for _, doc := range docs {
		_, err := Parse([]byte(doc))
		if err == nil {
			t.Errorf("Parse(%q) = nil error, want one", doc)
			continue
		}
		for _, secret := range []string{plaintext, "123456789012345"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Parse(%q) error contains the plaintext token:\n%v", doc, err)
			}
		}
	}

	// ValidateRun and Validate of a decoded config, too.
	c := mustParse(t, "profiles: {lacework: {tokenPlaintext: "+plaintext+", allowPlaintextToken: true}}")
	c.Profiles["lacework"] = withSecretARN(c, "lacework")
	for _, err := range []error{c.Validate(), c.ValidateRun(false)} {
		if err == nil {
			t.Error("Validate of plaintext + secret ARN = nil, want an error")
		} else if strings.Contains(err.Error(), plaintext) {
			t.Errorf("Validate error contains the plaintext token:\n%v", err)
		}
	}
}

func withSecretARN(c *Config, name string) (p patch.Profile) {
	p = c.Profiles[name]
	p.TokenSecretArn = secretARN
	return p
}

// The printed forms of a config never contain tokenPlaintext, and
// redacting does not change the config.
func TestRedacted(t *testing.T) {
	c := mustParse(t, "profiles: {lacework: {tokenPlaintext: "+plaintext+", allowPlaintextToken: true}, other: {tokenSecretArn: '"+secretARN+"'}}")

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", c)
	printed := map[string]string{
		"String":      c.String(),
		"%v":          fmt.Sprintf("%v", c),
		"%+v":         fmt.Sprintf("%+v", c),
		"Redacted %v": fmt.Sprintf("%v", c.Redacted()),
		"slog":        logged.String(),
	}
	for name, s := range printed {
		if strings.Contains(s, plaintext) {
			t.Errorf("%s contains the plaintext token:\n%s", name, s)
		}
		if !strings.Contains(s, "tokenPlaintext: REDACTED") {
			t.Errorf("%s does not show the redacted token:\n%s", name, s)
		}
		if !strings.Contains(s, secretARN) {
			t.Errorf("%s does not show the secret ARN (not a secret):\n%s", name, s)
		}
	}
	if got := c.Profiles["lacework"].TokenPlaintext; got != plaintext {
		t.Errorf("after Redacted, tokenPlaintext = %q, want the original", got)
	}
	if got := c.Redacted().Profiles["other"].TokenPlaintext; got != "" {
		t.Errorf("Redacted set tokenPlaintext %q on a profile without one", got)
	}
}
