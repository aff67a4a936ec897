// Package soak is the chaos soak of the reconciler (its tests are the
// package): an awssim account of many families and services served on
// 127.0.0.1 with faults on (throttling, server errors, latency, dropped
// connections), a pipeline that registers revisions, deploys them and
// flips opt-in tags all along, and the reconciler run as separate
// processes (`go build ./cmd/reconciler`), killed with SIGKILL at random
// intervals and restarted. When the pipeline stops and the faults are
// lifted, the last reconciler converges, and the invariants of DESIGN.md
// are checked from the simulator's journal and state.
//
// `go test ./internal/soak` runs the short soak (part of `make test`);
// `make soak` runs the full one (500 families, 1,000 services), see
// soak_test.go for the flags.
package soak
