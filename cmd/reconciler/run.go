package main

func cmdRun(e env, args []string) int {
	fs := newFlagSet(e, "run", "[--config FILE] [--embedded]")
	fs.String("config", "", "configuration file (YAML); env RECONCILER_CONFIG")
	fs.Bool("embedded", false, "run against the embedded AWS on 127.0.0.1:4566 with the demo seed (no account needed)")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if code, done := noArgs(e, fs); done {
		return code
	}
	return notBuilt(e, "run", "the reconciler (issue 7)")
}
