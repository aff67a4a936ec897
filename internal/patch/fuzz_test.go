package patch

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ecs-sidecar/reconciler/internal/deepcopy"
)

// FuzzInstrument: for any task definition, tags, profile and image data,
// Instrument returns an output that passes Validate or a *Refusal with
// listed codes; it never panics and never modifies its input.
func FuzzInstrument(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.json")
	for _, p := range paths {
		if strings.HasSuffix(p, ".golden.json") {
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c goldenCase
		if err := json.Unmarshal(data, &c); err != nil || c.TaskDefinition == nil {
			return
		}
		before := wire(c.TaskDefinition)
		res, err := Instrument(c.TaskDefinition, c.Tags, c.Profile, c.Images, c.Options)
		if after := wire(c.TaskDefinition); string(after) != string(before) {
			t.Fatal("Instrument modified its input")
		}
		if err != nil {
			var ref *Refusal
			if !errors.As(err, &ref) || len(ref.Reasons) == 0 {
				t.Fatalf("error is not a *Refusal with reasons: %v", err)
			}
			for _, r := range ref.Reasons {
				if !slices.Contains(RefusalCodes(), r.Code) {
					t.Fatalf("unlisted refusal code %q", r.Code)
				}
			}
			return
		}
		if rs := Validate(res.Input, res.Instrumented); len(rs) > 0 {
			t.Fatalf("output does not validate: %v", rs)
		}
		if len(res.Instrumented) == 0 || len(res.Spec) != SpecLen {
			t.Fatalf("result without instrumented containers or spec: %+v", res)
		}
		twin := taskDefinitionOf(res.Input)
		if _, err := Source(twin, res.Input.Tags, c.Options); err != nil {
			t.Fatalf("Source(twin): %v", err)
		}
		checkUntagged(t, twin, c)
	})
}

// BenchmarkInstrument: a Fargate task definition with 9 app containers
// (the sidecar makes 10), every option that adds work on.
func BenchmarkInstrument(b *testing.B) {
	c := loadCase(b, "testdata/existing-kept.json")
	base := c.TaskDefinition.ContainerDefinitions[0]
	td := deepcopy.Of(*c.TaskDefinition)
	td.ContainerDefinitions = nil
	for i := 0; i < 9; i++ {
		cd := deepcopy.Of(base)
		name := "app" + string(rune('0'+i))
		cd.Name = &name
		cd.DependsOn, cd.VolumesFrom = nil, nil
		td.ContainerDefinitions = append(td.ContainerDefinitions, cd)
	}
	p := Profile{TokenSecretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:t", ServerURL: ServerEU,
		LaceworkConfig: `{"fim":{"mode":"enable"}}`, Verbose: true}
	tags := c.Tags
	b.ReportAllocs()
	for b.Loop() {
		res, err := Instrument(&td, tags, p, map[string]Image{}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Input.ContainerDefinitions) != 10 {
			b.Fatalf("got %d containers", len(res.Input.ContainerDefinitions))
		}
	}
}
