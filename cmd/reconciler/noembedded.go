//go:build noembedded

// The production build (go build -tags noembedded, as `make image` and the
// Dockerfile build it) leaves out the embedded AWS, internal/awssim: no task
// in an account needs it. The flags stay, so that a command line that works
// with the default build fails here with a reason instead of a usage error.

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ecs-sidecar/reconciler/internal/config"
)

// errNoEmbedded is what `run --embedded`, `plan --embedded` and `sim` report.
var errNoEmbedded = errors.New("this build has no embedded AWS (built with -tags noembedded); use the default build: go build ./cmd/reconciler, or make build")

// embeddedAWS has the default build's fields, so that run.go and plan.go
// build unchanged.
type embeddedAWS struct {
	url  string
	stop func()
}

func startEmbedded(context.Context, *slog.Logger, string, *config.Config, bool) (*embeddedAWS, error) {
	return nil, errNoEmbedded
}

// cmdSim fails whatever its arguments (--help included): there is no
// simulator to serve.
func cmdSim(e env, args []string) int {
	fmt.Fprintf(e.stderr, "reconciler sim: %v\n", errNoEmbedded)
	return exitFail
}
