package main

func cmdRender(e env, args []string) int {
	fs := newFlagSet(e, "render", "[flags] [FILE|-]")
	if code, done := parseFlags(e, fs, args); done {
		return code
	}
	return notBuilt(e, "render", "the patch engine (issue 3)")
}
