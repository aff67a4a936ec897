package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// buildInfo describes this binary: version, VCS revision and Go version.
func buildInfo() (ver, revision, goVersion string) {
	ver, revision, goVersion = version, "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	return ver, revision, goVersion
}

func cmdVersion(e env, args []string) int {
	fs := newFlagSet(e, "version", "")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if code, done := noArgs(e, fs); done {
		return code
	}
	ver, rev, gov := buildInfo()
	fmt.Fprintf(e.stdout, "reconciler %s (revision %s, %s, %s/%s)\n", ver, rev, gov, runtime.GOOS, runtime.GOARCH)
	return exitOK
}
