package main

func cmdSim(e env, args []string) int {
	fs := newFlagSet(e, "sim", "[flags]")
	fs.String("listen", "127.0.0.1:4566", "address to serve the embedded AWS on")
	fs.String("seed", "", "initial state: empty, or \"demo\"")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	if code, done := noArgs(e, fs); done {
		return code
	}
	return notBuilt(e, "sim", "the embedded AWS (issue 4)")
}
