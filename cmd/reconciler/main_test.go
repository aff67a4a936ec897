package main

import (
	"bytes"
	"strings"
	"testing"
)

// runMain runs the command line args and returns the exit code and outputs.
func runMain(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = realMain(e, args)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no command", nil, exitUsage, "Usage: reconciler <command>"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"bad flag", []string{"run", "--no-such-flag"}, exitUsage, "flag provided but not defined: -no-such-flag"},
		{"stray argument", []string{"version", "extra"}, exitUsage, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runMain(t, "", tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d", code, tc.wantCode)
			}
			if !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tc.wantErr)
			}
		})
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, _ := runMain(t, "", c.name, "--help")
			if code != exitOK {
				t.Errorf("exit code = %d, want %d", code, exitOK)
			}
			if want := "Usage: reconciler " + c.name; !strings.Contains(stdout, want) {
				t.Errorf("stdout = %q, want it to contain %q", stdout, want)
			}
		})
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	code, stdout, _ := runMain(t, "", "help")
	if code != exitOK {
		t.Fatalf("exit code = %d, want %d", code, exitOK)
	}
	for _, c := range commands() {
		if !strings.Contains(stdout, "  "+c.name+" ") {
			t.Errorf("help does not list %q:\n%s", c.name, stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runMain(t, "", "version")
	if code != exitOK || !strings.HasPrefix(stdout, "reconciler dev (revision ") {
		t.Errorf("version = %d %q, want 0 and a line starting with %q", code, stdout, "reconciler dev (revision ")
	}
}
