package deploytest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// docBlock returns the fenced block that follows marker in
// docs/operations.md.
func docBlock(t *testing.T, marker string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Fatalf("docs/operations.md has no %s", marker)
	}
	rest := doc[i+len(marker):]
	open := strings.Index(rest, "```json\n")
	if open < 0 {
		t.Fatalf("no ```json block after %s", marker)
	}
	rest = rest[open+len("```json\n"):]
	end := strings.Index(rest, "\n```")
	if end < 0 {
		t.Fatalf("unterminated block after %s", marker)
	}
	return rest[:end]
}

// TestMarkerTagSCP evaluates the service control policy of
// docs/operations.md as written: only the reconciler's role may register,
// tag or untag with the marker keys. An SCP only filters, so it is
// evaluated beside an Allow of everything (what the account's own
// policies would grant).
func TestMarkerTagSCP(t *testing.T) {
	role := "arn:aws:iam::123456789012:role/reconciler-TaskRole-AbC123"
	doc := strings.ReplaceAll(docBlock(t, "<!-- deploytest: marker-tag-scp -->"), "<TaskRoleArn output>", role)

	// The keys are the reconciler's, with the default prefix.
	var raw struct {
		Statement []struct {
			Condition map[string]map[string][]string
		}
	}
	if err := json.Unmarshal([]byte(doc), &raw); err != nil {
		t.Fatalf("SCP: %v\n%s", err, doc)
	}
	if len(raw.Statement) != 1 {
		t.Fatalf("SCP has %d statements, want 1", len(raw.Statement))
	}
	var keys []string
	for _, k := range []string{patch.KeySource, patch.KeySpec, patch.KeyFailed} {
		keys = append(keys, "ecs-sidecar/"+k)
	}
	if d := cmp.Diff(raw.Statement[0].Condition["ForAnyValue:StringEquals"]["aws:TagKeys"], keys); d != "" {
		t.Errorf("reserved keys (-got +want):\n%s", d)
	}

	// awssim has no ArnNotLike: on a literal ARN it is StringNotEquals.
	principals := raw.Statement[0].Condition["ArnNotLike"]["aws:PrincipalArn"]
	if len(principals) == 0 || slices.ContainsFunc(principals, func(p string) bool { return strings.ContainsAny(p, "*?") }) {
		t.Fatalf("ArnNotLike aws:PrincipalArn %v: want literal role ARNs (the test reads it as StringNotEquals)", principals)
	}
	scp, err := awssim.ParsePolicy([]byte(strings.Replace(doc, `"ArnNotLike"`, `"StringNotEquals"`, 1)))
	if err != nil {
		t.Fatalf("SCP: %v\n%s", err, doc)
	}
	policy := append(scp, awssim.Statement{Sid: "Everything", Effect: "Allow", Actions: []string{"*"}, Resources: []string{"*"}})

	td := "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3"
	other := "arn:aws:iam::123456789012:role/ci-deploy"
	cases := []struct {
		name, principal, action string
		tagKeys                 []string
		want                    string
	}{
		{"a pipeline registers with its tags", other, "ecs:RegisterTaskDefinition", []string{"team", "ecs-sidecar/inject"}, awssim.DecisionAllowed},
		{"a pipeline registers without tags", other, "ecs:RegisterTaskDefinition", nil, awssim.DecisionAllowed},
		{"a pipeline registers a forged twin", other, "ecs:RegisterTaskDefinition", []string{"team", "ecs-sidecar/source", "ecs-sidecar/spec"}, awssim.DecisionExplicitDeny},
		{"the forged twin's tag-on-create", other, "ecs:TagResource", []string{"ecs-sidecar/spec"}, awssim.DecisionExplicitDeny},
		{"someone retags an old twin", other, "ecs:TagResource", []string{"ecs-sidecar/source"}, awssim.DecisionExplicitDeny},
		{"someone marks a good twin failed", other, "ecs:TagResource", []string{"ecs-sidecar/failed"}, awssim.DecisionExplicitDeny},
		{"someone clears a failure mark", other, "ecs:UntagResource", []string{"ecs-sidecar/failed"}, awssim.DecisionExplicitDeny},
		{"a team opts a family out", other, "ecs:TagResource", []string{"ecs-sidecar/inject"}, awssim.DecisionAllowed},
		{"the reconciler registers a twin", role, "ecs:RegisterTaskDefinition", []string{"team", "ecs-sidecar/source", "ecs-sidecar/spec"}, awssim.DecisionAllowed},
		{"the reconciler marks a failed twin", role, "ecs:TagResource", []string{"ecs-sidecar/failed"}, awssim.DecisionAllowed},
	}
	for _, c := range cases {
		ctx := map[string][]string{"aws:PrincipalArn": {c.principal}}
		if c.tagKeys != nil {
			ctx["aws:TagKeys"] = c.tagKeys
		}
		if got := awssim.Evaluate(policy, c.action, td, ctx); got != c.want {
			t.Errorf("%s (%s %v as %s): %s, want %s", c.name, c.action, c.tagKeys, c.principal, got, c.want)
		}
	}
}
