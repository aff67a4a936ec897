// Command reconciler keeps ECS Fargate task definitions instrumented with a
// security agent sidecar and moves services to the instrumented revisions.
//
// Usage:
//
//	reconciler <command> [flags]
//
// Run `reconciler help` for the list of commands, and `reconciler <command>
// --help` for a command's flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes shared by every subcommand.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed
	exitUsage = 2 // bad command line
)

// env is what a subcommand may touch of the outside world; tests give their own.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

type command struct {
	name    string
	summary string
	run     func(e env, args []string) int
}

func commands() []command {
	return []command{
		{"run", "run the reconciler against AWS, or the embedded AWS with --embedded", cmdRun},
		{"render", "print the instrumented version of a task definition (offline)", cmdRender},
		{"plan", "show what the reconciler would change, without changing anything", cmdPlan},
		{"check", "verify the account, queue, secret and IAM setup before installing", cmdCheck},
		{"sim", "serve the embedded AWS (ECS, SQS, EventBridge, Secrets Manager) on loopback", cmdSim},
		{"healthcheck", "probe /healthz of a running reconciler (container health checks; exit 0 when healthy)", cmdHealthcheck},
		{"version", "print the version and build information", cmdVersion},
	}
}

func main() {
	os.Exit(realMain(env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:]))
}

func realMain(e env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(e.stdout)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(e, args[1:])
		}
	}
	fmt.Fprintf(e.stderr, "reconciler: unknown command %q\n\n", name)
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: reconciler <command> [flags]\n\nCommands:\n")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	width := 0
	for _, c := range cs {
		width = max(width, len(c.name))
	}
	for _, c := range cs {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'reconciler <command> --help' for a command's flags.\n")
}

// newFlagSet makes a subcommand's flag set whose errors and usage go to
// stderr (parseFlags prints the usage to stdout when --help asks for it).
func newFlagSet(e env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("reconciler "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n", strings.TrimRight("reconciler "+name+" "+synopsis, " "))
		if hasFlags(fs) {
			fmt.Fprintf(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses args; done is true when the caller must return code
// (help was asked for, or the command line was bad). The usage is printed
// once: to stdout with exit 0 for -h/--help, which is an answer and not an
// error, and to stderr after the flag package's message for a bad command
// line. The flag package calls fs.Usage itself in both cases, so it is
// silenced while parsing.
func parseFlags(e env, fs *flag.FlagSet, args []string) (code int, done bool) {
	usage := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case err == nil:
		return exitOK, false
	case errors.Is(err, flag.ErrHelp):
		out := fs.Output()
		fs.SetOutput(e.stdout)
		fs.Usage()
		fs.SetOutput(out)
		return exitOK, true
	default:
		fs.Usage()
		return exitUsage, true
	}
}

// noArgs refuses positional arguments for commands that take none.
func noArgs(e env, fs *flag.FlagSet) (int, bool) {
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, true
	}
	return exitOK, false
}

// indent prefixes every line of s.
func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
