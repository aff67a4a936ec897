package main

func cmdCheck(e env, args []string) int {
	fs := newFlagSet(e, "check", "--config FILE")
	fs.String("config", "", "configuration file (YAML)")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if code, done := noArgs(e, fs); done {
		return code
	}
	return notBuilt(e, "check", "the preflight checks (issue 10)")
}
