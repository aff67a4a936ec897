package cfnmacro

// merge builds the output properties from the source as written (orig,
// intrinsic functions and all), the source as the engine read it (read:
// orig decoded and encoded again, placeholders in place of the functions)
// and the engine's output (twin, in the same form). Where twin says what
// read says, orig is kept exactly as its author wrote it (a "true" string,
// a number given as a string, an intrinsic function); only what the engine
// changed comes from twin. Lists of named items (containers, variables)
// are matched by name, other lists by position.
func merge(orig, read, twin any) any {
	if equal(read, twin) {
		return orig
	}
	if _, fn := intrinsic(orig); fn {
		return twin
	}
	switch t := twin.(type) {
	case map[string]any:
		o, ok1 := orig.(map[string]any)
		r, ok2 := read.(map[string]any)
		if !ok1 || !ok2 {
			return twin
		}
		out := map[string]any{}
		for k, tv := range t {
			ov, inO := o[k]
			rv, inR := r[k]
			if !inO || !inR {
				out[k] = tv
				continue
			}
			out[k] = merge(ov, rv, tv)
		}
		for k, ov := range o {
			if _, inT := t[k]; inT {
				continue
			}
			if _, inR := r[k]; !inR {
				// Not read back (a zero value the SDK types cannot hold),
				// and not set by the engine: as written.
				out[k] = ov
			}
			// Read, and dropped by the engine: dropped.
		}
		return out
	case []any:
		o, ok1 := orig.([]any)
		r, ok2 := read.([]any)
		if !ok1 || !ok2 || len(o) != len(r) {
			return twin
		}
		if names, ok := namesOf(r); ok {
			if tnames, ok := nameList(t); ok {
				out := make([]any, len(t))
				for i, tv := range t {
					if j, ok := names[tnames[i]]; ok {
						out[i] = merge(o[j], r[j], tv)
					} else {
						out[i] = tv
					}
				}
				return out
			}
		}
		out := make([]any, len(t))
		for i, tv := range t {
			if i < len(r) {
				out[i] = merge(o[i], r[i], tv)
			} else {
				out[i] = tv
			}
		}
		return out
	}
	return twin
}

// namesOf maps the Name of each item of a list of objects to its index;
// ok is false unless every item has a distinct string Name.
func namesOf(list []any) (map[string]int, bool) {
	names, ok := nameList(list)
	if !ok {
		return nil, false
	}
	m := map[string]int{}
	for i, n := range names {
		if _, dup := m[n]; dup {
			return nil, false
		}
		m[n] = i
	}
	return m, true
}

// nameList is the Name of each item of a list of objects, in order.
func nameList(list []any) ([]string, bool) {
	out := make([]string, len(list))
	for i, x := range list {
		o, ok := x.(map[string]any)
		if !ok {
			return nil, false
		}
		if out[i], ok = o["Name"].(string); !ok {
			return nil, false
		}
	}
	return out, true
}
