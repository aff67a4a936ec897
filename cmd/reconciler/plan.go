package main

func cmdPlan(e env, args []string) int {
	fs := newFlagSet(e, "plan", "--config FILE [flags]")
	fs.String("config", "", "configuration file (YAML)")
	fs.String("output", "table", "output format: table or json")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if code, done := noArgs(e, fs); done {
		return code
	}
	return notBuilt(e, "plan", "the read-only plan (issue 8)")
}
