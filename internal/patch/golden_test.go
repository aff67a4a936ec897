package patch

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// goldenCase is one testdata/*.json file. The task definition uses the ECS
// wire names, which encoding/json matches to the SDK's field names
// case-insensitively.
type goldenCase struct {
	Description    string                `json:"description"`
	TaskDefinition *types.TaskDefinition `json:"taskDefinition"`
	Tags           []types.Tag           `json:"tags"`
	Profile        Profile               `json:"profile"`
	Images         map[string]Image      `json:"images"`
	Options        Options               `json:"options"`
}

func loadCase(t testing.TB, path string) goldenCase {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c goldenCase
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// goldenOutput is what a *.golden.json holds.
type goldenOutput struct {
	Description  string          `json:"description"`
	Refused      []Reason        `json:"refused,omitempty"`
	Spec         string          `json:"spec,omitempty"`
	Instrumented []string        `json:"instrumented,omitempty"`
	Skipped      []Reason        `json:"skipped,omitempty"`
	Warnings     []Reason        `json:"warnings,omitempty"`
	Input        json.RawMessage `json:"registerTaskDefinitionInput,omitempty"`
}

func wire(v any) json.RawMessage { return appendWire(nil, reflect.ValueOf(v)) }

func render(t *testing.T, c goldenCase, res *Result, err error) []byte {
	t.Helper()
	out := goldenOutput{Description: c.Description}
	var ref *Refusal
	switch {
	case errors.As(err, &ref):
		out.Refused = ref.Reasons
	case err != nil:
		t.Fatalf("Instrument: not a *Refusal: %v", err)
	default:
		out.Spec, out.Instrumented, out.Skipped, out.Warnings = res.Spec, res.Instrumented, res.Skipped, res.Warnings
		out.Input = wire(res.Input)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func goldenCases(t *testing.T) []string {
	t.Helper()
	all, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, p := range all {
		if !strings.HasSuffix(p, ".golden.json") {
			cases = append(cases, p)
		}
	}
	if len(cases) < 30 {
		t.Fatalf("found %d golden cases, want at least 30", len(cases))
	}
	return cases
}

// TestGolden renders every testdata/NAME.json and compares with
// testdata/NAME.golden.json. A missing golden file fails; -update rewrites.
func TestGolden(t *testing.T) {
	for _, path := range goldenCases(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			c := loadCase(t, path)
			before := wire(c.TaskDefinition)
			res, err := Instrument(c.TaskDefinition, c.Tags, c.Profile, c.Images, c.Options)
			got := render(t, c, res, err)

			if after := wire(c.TaskDefinition); !bytes.Equal(before, after) {
				t.Errorf("Instrument modified its input:\n%s", cmp.Diff(string(after), string(before)))
			}
			res2, err2 := Instrument(c.TaskDefinition, c.Tags, c.Profile, c.Images, c.Options)
			if again := render(t, c, res2, err2); !bytes.Equal(again, got) {
				t.Errorf("second Instrument differs (not deterministic):\n%s", cmp.Diff(string(again), string(got)))
			}
			if err == nil {
				checkTwin(t, c, res)
			}
			var ref *Refusal
			if errors.As(err, &ref) {
				for _, r := range ref.Reasons {
					if !slices.Contains(RefusalCodes(), r.Code) {
						t.Errorf("refusal code %q is not in RefusalCodes", r.Code)
					}
				}
			}

			golden := strings.TrimSuffix(path, ".json") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("missing golden file (run go test -run TestGolden -update): %v", rerr)
			}
			if diff := cmp.Diff(string(got), string(want)); diff != "" {
				t.Errorf("%s (-got +want):\n%s", golden, diff)
			}
		})
	}
}

// checkTwin verifies what holds for every twin: it validates, it is
// recognised as a twin and refused if passed back, and Source rebuilds the
// source's content.
func checkTwin(t *testing.T, c goldenCase, res *Result) {
	t.Helper()
	if rs := Validate(res.Input, res.Instrumented); len(rs) > 0 {
		t.Errorf("output does not validate: %v", rs)
	}
	checkRoles(t, c.TaskDefinition, c.Profile, res)
	twin := taskDefinitionOf(res.Input)
	twin.Revision = c.TaskDefinition.Revision + 1
	cl := Classify(twin, res.Input.Tags, c.Images, c.Options)
	wantRev := c.Options.SourceRevision
	if wantRev == 0 {
		wantRev = c.TaskDefinition.Revision
	}
	if wantRev != 0 {
		if cl.Kind != KindTwin || cl.SourceRevision != wantRev || cl.Spec != res.Spec {
			t.Errorf("Classify(twin) = %+v, want twin of %d with spec %s", cl, wantRev, res.Spec)
		}
		_, err := Instrument(twin, res.Input.Tags, c.Profile, c.Images, c.Options)
		var ref *Refusal
		if !errors.As(err, &ref) || !ref.Has(CodeAlreadyTwin) {
			t.Errorf("Instrument(twin) = %v, want refusal already_twin", err)
		}
	}
	checkUntagged(t, twin, c)

	src, err := Source(twin, res.Input.Tags, c.Options)
	if err != nil {
		t.Fatalf("Source: %v", err)
	}
	want := registerInput(c.TaskDefinition)
	for _, tag := range c.Tags {
		if k := aws.ToString(tag.Key); !isReservedTag(k) && !isMarker(k, c.Options.prefix()) {
			want.Tags = append(want.Tags, tag)
		}
	}
	if diff := cmp.Diff(normalize(t, wire(src)), normalize(t, wire(want))); diff != "" {
		t.Errorf("Source(twin) is not the source (-got +want):\n%s", diff)
	}
}

// checkRoles: the twin's roles are the source's. The task role is never
// added or changed; the execution role is the profile's default only when
// the source has none and references no secret of its own, which the
// default role would make readable.
func checkRoles(t testing.TB, src *types.TaskDefinition, p Profile, res *Result) {
	t.Helper()
	if got, want := aws.ToString(res.Input.TaskRoleArn), aws.ToString(src.TaskRoleArn); got != want {
		t.Errorf("twin taskRoleArn %q, source's %q: the task role is never added or changed", got, want)
	}
	want := aws.ToString(src.ExecutionRoleArn)
	for _, w := range res.Warnings {
		if w.Code != WarnDefaultExecutionRole {
			continue
		}
		if want != "" || len(ownSecretRefs(src)) > 0 {
			t.Errorf("default execution role given to a source with role %q and own secrets %v", want, ownSecretRefs(src))
		}
		want = p.DefaultExecutionRoleArn
	}
	if got := aws.ToString(res.Input.ExecutionRoleArn); got != want {
		t.Errorf("twin executionRoleArn %q, want %q", got, want)
	}
}

// checkUntagged: a twin that lost its marker tags is covered, never
// instrumented again. Classify knows the Lacework script; a custom
// profile's wrapper only Instrument knows, which refuses already_covered.
func checkUntagged(t testing.TB, twin *types.TaskDefinition, c goldenCase) {
	t.Helper()
	want := KindManualSidecar
	if c.Profile.WithDefaults().Type == ProfileTypeCustom {
		want = KindPlain
	}
	if cl := Classify(twin, nil, c.Images, c.Options); cl.Kind != want {
		t.Errorf("Classify(twin without tags) = %s, want %s", cl.Kind, want)
	}
	_, err := Instrument(twin, nil, c.Profile, c.Images, c.Options)
	if ref := (*Refusal)(nil); !errors.As(err, &ref) || !ref.Has(CodeAlreadyCovered) {
		t.Errorf("Instrument(twin without tags) = %v, want refusal already_covered", err)
	}
}

// normalize decodes wire JSON dropping empty lists and objects, which the
// round trip may turn into absent members (the same request for ECS).
func normalize(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("wire JSON: %v\n%s", err, b)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				e = walk(e)
				if isEmpty(e) {
					delete(x, k)
				} else {
					x[k] = e
				}
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return v
	}
	return walk(v)
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}
