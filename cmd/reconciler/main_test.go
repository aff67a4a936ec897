package main

import (
	"bytes"
	"os"
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

// usageExitCode is the exit code of a bad command line for the command:
// plan's exit 2 means "changes", so its bad usage is an error (1).
func usageExitCode(name string) int {
	if name == "plan" {
		return planError
	}
	return exitUsage
}

// TestHelpPrintsUsageOnceToStdout: help asked for is an answer: the usage
// once, on stdout, nothing on stderr, exit 0.
func TestHelpPrintsUsageOnceToStdout(t *testing.T) {
	for _, c := range commands() {
		for _, flag := range []string{"--help", "-h", "-help"} {
			t.Run(c.name+" "+flag, func(t *testing.T) {
				code, stdout, stderr := runMain(t, "", c.name, flag)
				if code != exitOK {
					t.Errorf("exit code = %d, want %d", code, exitOK)
				}
				if n := strings.Count(stdout, "Usage: reconciler "+c.name); n != 1 {
					t.Errorf("stdout has the usage %d times, want once:\n%s", n, stdout)
				}
				if stderr != "" {
					t.Errorf("stderr = %q, want nothing", stderr)
				}
			})
		}
	}
}

// TestBadFlagPrintsUsageOnceToStderr: a bad command line gets the flag
// package's message and the usage once, on stderr, and the usage exit code.
func TestBadFlagPrintsUsageOnceToStderr(t *testing.T) {
	type tc struct {
		name    string
		args    []string
		wantErr string
	}
	var tests []tc
	for _, c := range commands() {
		tests = append(tests, tc{c.name, []string{c.name, "--no-such-flag"}, "flag provided but not defined: -no-such-flag"})
	}
	tests = append(tests,
		tc{"healthcheck", []string{"healthcheck", "--timeout", "soon"}, `invalid value "soon" for flag -timeout`},
		tc{"sim", []string{"sim", "--fault-seed"}, "flag needs an argument: -fault-seed"},
	)
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runMain(t, "", tc.args...)
			if want := usageExitCode(tc.name); code != want {
				t.Errorf("exit code = %d, want %d", code, want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if !strings.HasPrefix(stderr, tc.wantErr) {
				t.Errorf("stderr = %q, want it to start with %q", stderr, tc.wantErr)
			}
			if n := strings.Count(stderr, "Usage: reconciler "+tc.name); n != 1 {
				t.Errorf("stderr has the usage %d times, want once:\n%s", n, stderr)
			}
		})
	}
}

// TestHelpListsEveryCommand: the top-level usage lists every command of
// commands(), once each, with the summaries aligned in one column.
func TestHelpListsEveryCommand(t *testing.T) {
	code, stdout, stderr := runMain(t, "", "help")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit code = %d, stderr %q; want %d and nothing", code, stderr, exitOK)
	}
	column := -1
	for _, c := range commands() {
		var line string
		n := 0
		for _, l := range strings.Split(stdout, "\n") {
			if strings.HasPrefix(l, "  "+c.name+" ") {
				line, n = l, n+1
			}
		}
		if n != 1 {
			t.Errorf("help lists %q %d times, want once:\n%s", c.name, n, stdout)
			continue
		}
		col := strings.Index(line, c.summary)
		if col < 0 {
			t.Errorf("help's line for %q does not hold its summary %q: %q", c.name, c.summary, line)
			continue
		}
		if column == -1 {
			column = col
		}
		if col != column {
			t.Errorf("help's summary of %q starts at column %d, want %d like the others:\n%s", c.name, col, column, stdout)
		}
		if gap := line[2+len(c.name) : col]; len(gap) < 2 || strings.TrimSpace(gap) != "" {
			t.Errorf("help's line for %q: want at least two spaces between name and summary: %q", c.name, line)
		}
	}
}

// TestReadmeListsEveryCommand: README's "The command" block names every
// command of commands().
func TestReadmeListsEveryCommand(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	_, block, ok := strings.Cut(readme, "## The command\n\n```\n")
	if !ok {
		t.Fatal("README has no \"## The command\" section with a code block")
	}
	block, _, _ = strings.Cut(block, "```")
	for _, c := range commands() {
		if !strings.Contains(block, "reconciler "+c.name+" ") {
			t.Errorf("README's command list does not name %q:\n%s", c.name, block)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runMain(t, "", "version")
	if code != exitOK || !strings.HasPrefix(stdout, "reconciler dev (revision ") {
		t.Errorf("version = %d %q, want 0 and a line starting with %q", code, stdout, "reconciler dev (revision ")
	}
}
