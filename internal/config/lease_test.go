package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Leases are off by default, with the lease library's own defaults ready.
func TestLeasesDefaults(t *testing.T) {
	got := mustParse(t, "").Leases
	want := Leases{Shards: 32, Duration: D(30 * time.Second), GiveBackReceives: 5}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("default leases (-got +want)\n%s", diff)
	}
	if got.Enabled() {
		t.Error("leases are on without a table")
	}
	on := mustParse(t, "leases: {table: ecs-sidecar-leases, shards: 8, duration: 3s, endpoint: 'http://127.0.0.1:5000', giveBackReceives: 1}").Leases
	if !on.Enabled() || on.Shards != 8 || on.Duration.Duration != 3*time.Second || on.Endpoint != "http://127.0.0.1:5000" || on.GiveBackReceives != 1 {
		t.Errorf("leases = %+v, want the file's values", on)
	}
}

// Each row has one mistake; the error names it with its path.
func TestLeasesValidation(t *testing.T) {
	for _, tt := range []struct{ doc, want string }{
		{"leases: {table: ab}", "leases.table: must be a DynamoDB table name"},
		{"leases: {table: 'my table'}", "leases.table: must be a DynamoDB table name"},
		{"leases: {table: '" + strings.Repeat("t", 256) + "'}", "leases.table: must be a DynamoDB table name"},
		{"leases: {table: leases, shards: 0}", "leases.shards: must be between 1 and 1000"},
		{"leases: {shards: 1001}", "leases.shards: must be between 1 and 1000"},
		{"leases: {table: leases, duration: 2s}", "leases.duration: must be whole milliseconds between 3s and 10m"},
		{"leases: {duration: 11m}", "leases.duration: must be whole milliseconds between 3s and 10m"},
		{"leases: {duration: 3000001us}", "leases.duration: must be whole milliseconds between 3s and 10m"},
		{"leases: {duration: 30}", "leases.duration: must be a duration string"},
		{"leases: {table: leases, endpoint: 'localhost:5000'}", "leases.endpoint: must be an http:// or https:// URL"},
		{"leases: {endpoint: 'http://127.0.0.1:5000'}", "leases.endpoint: set without leases.table: leases are off"},
		{"leases: {table: leases, giveBackReceives: 0}", "leases.giveBackReceives: must be between 1 and 100"},
		{"leases: {giveBackReceives: 101}", "leases.giveBackReceives: must be between 1 and 100"},
		{"leases: {tabel: t1}", `leases.tabel: unknown key (did you mean "table"?)`},
		{"leases: t1", "leases: must be a mapping"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			got := problems(err)
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("Parse(%q) problems:\n%s\nwant exactly one, starting with %q", tt.doc, strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

// Every lease mistake of a file is reported at once.
func TestLeasesEveryMistakeReported(t *testing.T) {
	_, err := Parse([]byte("leases: {table: x, shards: -1, duration: 1s, endpoint: 'ftp://h', giveBackReceives: 0}"))
	got := problems(err)
	want := []string{"leases.table", "leases.shards", "leases.duration", "leases.endpoint", "leases.giveBackReceives"}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s\nwant %d, one per key %v", strings.Join(got, "\n"), len(want), want)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w+": ") {
			t.Errorf("problem %d = %q, want one of %s", i, got[i], w)
		}
	}
}

// run --embedded with leases needs a DynamoDB endpoint: the embedded AWS
// has none. Without --embedded, aws.endpoint or AWS's own is used.
func TestLeasesRunEmbeddedNeedsAnEndpoint(t *testing.T) {
	c := mustParse(t, "leases: {table: leases}")
	got := problems(c.ValidateRun(true))
	if len(got) != 1 || !strings.HasPrefix(got[0], "leases.endpoint: required with --embedded") {
		t.Errorf("ValidateRun(embedded) problems:\n%s\nwant one of leases.endpoint", strings.Join(got, "\n"))
	}
	c = mustParse(t, "leases: {table: leases, endpoint: 'http://127.0.0.1:5000'}")
	if err := c.ValidateRun(true); err != nil {
		t.Errorf("ValidateRun(embedded) = %v, want nil", err)
	}
	c = mustParse(t, "leases: {table: leases}\nqueue: {url: 'https://sqs.us-east-1.amazonaws.com/123456789012/q'}")
	if err := c.ValidateRun(false); err != nil {
		t.Errorf("ValidateRun = %v, want nil", err)
	}
}
