package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks the image's invariants textually (no Docker engine
// in CI): a static, trimmed build like `make build`, a non-root user in the
// final stage, and the entrypoint the task definition's health check uses.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(Path()), "..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := regexp.MustCompile(`(?m)^FROM `).Split(string(b), -1)
	if len(stages) != 3 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages)-1)
	}
	build, runtime := stages[1], stages[2]
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/reconciler"} {
		if !strings.Contains(build, want) {
			t.Errorf("build stage lacks %q", want)
		}
	}
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(runtime)
	if user == nil || strings.HasPrefix(user[1], "0") || strings.HasPrefix(user[1], "root") {
		t.Errorf("runtime stage USER = %v, want a non-root uid", user)
	}
	for _, want := range []string{`ENTRYPOINT ["/reconciler"]`, "static"} {
		if !strings.Contains(runtime, want) {
			t.Errorf("runtime stage lacks %q", want)
		}
	}
}
