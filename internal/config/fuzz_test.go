package config

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/yaml"
)

// FuzzParse: Parse never panics; what it accepts is valid, redacts its
// plaintext tokens, and reads back to the same Config once written out.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example),
		"",
		"workers: 8\nmode: audit\n",
		"queue: {url: 'http://127.0.0.1:4566/000000000000/q', waitTimeSeconds: 0, visibilityTimeout: 90s}\n",
		"profiles: {lacework: {tokenPlaintext: hunter22, allowPlaintextToken: true, distroless: true}}\n",
		"profiles: {a: {}, b: {type: custom, sidecarImage: 'a/b:1', custom: {wrapper: [/w], secrets: {K: '" + secretARN + "'}}}}\ndefaultProfile: b\n",
		"policies: [{name: a, families: {include: ['web-*']}, profile: lacework}, {name: b, optIn: always}]\n",
		"aws: {region: us-east-1, apiBudget: {share: 0.25}}\nsweeps: {services: {interval: 1m, jitter: 0}}\n",
		"wrokers: 4\nmode: [x]\n",
		"- a\n- b\n",
		"aws: {region: [",
		"a: &a [*a]\n",
		"profiles: {'1.0': {}, 2: {}}\ndefaultProfile: '2'\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate refuses: %v", err)
		}
		for name := range c.Profiles {
			if _, ok := c.Profile(name); !ok {
				t.Fatalf("Profile(%q) not found", name)
			}
			if tok := c.Redacted().Profiles[name].TokenPlaintext; tok != "" && tok != RedactedText {
				t.Fatalf("Redacted() kept the plaintext token of profile %q", name)
			}
		}
		if _, ok := c.Profile(""); !ok {
			t.Fatalf("default profile %q not found", c.DefaultProfile)
		}

		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("yaml.Marshal: %v", err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(yaml.Marshal(c)) = %v\n%s", err, out)
		}
		// Empty lists and maps are left out when written (omitempty).
		if diff := cmp.Diff(back, c, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-back +parsed)\n%s", diff)
		}
	})
}
