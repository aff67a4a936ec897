package awsjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// RestorePresent puts back into out the members of source that decoding into SDK types
// and encoding again lost, and returns the result.
//
// shape is a value (or nil pointer) of the SDK type out encodes, for example
// (*ecs.RegisterTaskDefinitionInput)(nil); only its type is used. source is the JSON
// object that value was decoded from, as its author wrote it (empty or null reads as {},
// as in Unmarshal, which decodes null to the zero value); out is the codec's encoding of that value, or of a value made from it (the
// instrumented twin of a task definition), compact or indented.
//
// A member is restored when source has it, out's object at the same place lacks it, the
// shape has it (by the codec's member names: members of the source that the shape does
// not have, such as a task definition's read-only taskDefinitionArn and revision, or
// unknown members, are not), and its source value decodes to what SDK types hold for
// unset: the zero value of a non-pointer scalar (cpu 0, ipcMode "", softLimit 0); null
// is never restored (it is unset in JSON as well, and the aws CLI refuses it). A member out lacks for any other reason was removed from the value on purpose
// (the patch replaces a container's command) and stays out; a member out has is never
// changed. A restored member keeps the source's text, compacted, and goes where the
// shape's member order puts it among out's members.
//
// Objects are matched along the shape's structures, maps (by key) and lists. Two lists
// whose elements all have a string name member, distinct within each list (container
// definitions, environment, ulimits), are matched by name, so that a container added at
// index 0 does not shift the others; other lists are matched by index. Elements on one
// side only are left as they are.
//
// When nothing is restored out is returned unchanged. Otherwise the result is out with
// the members added, compact if out was compact and else indented like out (as
// MarshalIndent and json.Indent do, the prefix taken from out's last line and the indent
// from its second), with out's leading and trailing white space.
func (c Codec) RestorePresent(shape any, source, out []byte) ([]byte, error) {
	t := reflect.TypeOf(shape)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("awsjson: restore: shape %T is not a struct or pointer to struct", shape)
	}
	if s := bytes.TrimSpace(source); len(s) == 0 || string(s) == "null" {
		source = []byte("{}") // as Unmarshal reads it: nothing was set, so nothing was lost
	}
	src, err := parseOrdered(source)
	if err != nil {
		return nil, fmt.Errorf("awsjson: restore: source: %w", err)
	}
	dst, err := parseOrdered(out)
	if err != nil {
		return nil, fmt.Errorf("awsjson: restore: out: %w", err)
	}
	if src.kind != '{' || dst.kind != '{' {
		return nil, errors.New("awsjson: restore: source and out must be JSON objects")
	}
	r := restorer{codec: c}
	if err := r.object(t, src, dst, ""); err != nil {
		return nil, err
	}
	if !r.changed {
		return out, nil
	}
	return reformat(out, dst.appendTo(nil))
}

type restorer struct {
	codec   Codec
	changed bool
}

// value matches src and dst, JSON values of Go type t.
func (r *restorer) value(t reflect.Type, src, dst *jsonNode, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType, t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if src.kind == '{' && dst.kind == '{' {
			return r.object(t, src, dst, path)
		}
	case reflect.Slice, reflect.Array:
		if src.kind == '[' && dst.kind == '[' {
			return r.list(t.Elem(), src, dst, path)
		}
	case reflect.Map:
		if src.kind == '{' && dst.kind == '{' {
			for _, m := range src.members {
				if d := dst.member(m.key); d != nil && src.member(m.key) == m.value {
					if err := r.value(t.Elem(), m.value, d, path+"["+strconv.Quote(m.key)+"]"); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// object restores into dst the members of src, both objects of struct type t.
func (r *restorer) object(t reflect.Type, src, dst *jsonNode, path string) error {
	si, err := r.codec.structOf(t)
	if err != nil {
		return err
	}
	for _, m := range src.members {
		if src.member(m.key) != m.value {
			continue // a duplicate name: the last one is the member, as decoding has it
		}
		i, ok := si.byName[m.key]
		if !ok {
			continue // not a member of the shape: read-only, unknown or misspelt
		}
		f := si.fields[i]
		ft := t.Field(f.index).Type
		mpath := joinPath(path, m.key)
		if d := dst.member(m.key); d != nil {
			if err := r.value(ft, m.value, d, mpath); err != nil {
				return err
			}
			continue
		}
		if m.value.kind == 0 && string(m.value.raw) == "null" {
			// null is unset in JSON too (Terraform's jsonencode writes it for
			// every unset member), and the aws CLI refuses it as a value.
			continue
		}
		fv := reflect.New(ft).Elem()
		d := decoder{codec: Codec{Service: r.codec.Service}}
		if err := d.value(fv, m.value.tree(), mpath); err != nil {
			return fmt.Errorf("awsjson: restore: source %s", strings.TrimPrefix(err.Error(), "awsjson: "))
		}
		if !omit(fv, false) {
			continue // not a value that SDK types hold as unset: whoever made out removed it
		}
		dst.insert(jsonMember{key: m.key, rawKey: m.rawKey, value: m.value}, i, si)
		r.changed = true
	}
	return nil
}

// list matches the elements of src and dst, lists of elem.
func (r *restorer) list(elem reflect.Type, src, dst *jsonNode, path string) error {
	if !hasStructs(elem, map[reflect.Type]bool{}) {
		return nil
	}
	if srcNames, dstNames := r.names(elem, src), r.names(elem, dst); srcNames != nil && dstNames != nil {
		at := make(map[string]int, len(dstNames))
		for j, name := range dstNames {
			at[name] = j
		}
		for i, name := range srcNames {
			if j, ok := at[name]; ok {
				if err := r.value(elem, src.items[i], dst.items[j], path+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for i := range min(len(src.items), len(dst.items)) {
		if err := r.value(elem, src.items[i], dst.items[i], path+"["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	return nil
}

// names returns, for a list of structures with a name member, the name of each element
// in order, when every element has a string name and no two the same; nil otherwise.
func (r *restorer) names(elem reflect.Type, a *jsonNode) []string {
	for elem.Kind() == reflect.Pointer {
		elem = elem.Elem()
	}
	if elem.Kind() != reflect.Struct || elem == timeType || len(a.items) == 0 {
		return nil
	}
	si, err := r.codec.structOf(elem)
	if err != nil {
		return nil
	}
	if _, ok := si.byName["name"]; !ok {
		return nil
	}
	names := make([]string, len(a.items))
	seen := make(map[string]bool, len(a.items))
	for i, item := range a.items {
		if item.kind != '{' {
			return nil
		}
		n := item.member("name")
		if n == nil || n.kind != '"' {
			return nil
		}
		var name string
		if err := json.Unmarshal(n.raw, &name); err != nil {
			return nil
		}
		if seen[name] {
			return nil
		}
		seen[name] = true
		names[i] = name
	}
	return names
}

// hasStructs reports whether values of t can hold SDK structures, where members can be
// restored.
func hasStructs(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return hasStructs(t.Elem(), seen)
	case reflect.Struct:
		return t != timeType
	}
	return false
}

// jsonNode is a parsed JSON value that keeps the order of object members and the text of
// scalars.
type jsonNode struct {
	kind    byte // '{', '[', '"' (string), or 0 (number, true, false, null)
	raw     []byte
	members []jsonMember
	items   []*jsonNode
}

type jsonMember struct {
	key    string
	rawKey []byte // the key as written, quotes included
	value  *jsonNode
}

// member returns the value of the last member named key, nil if there is none.
func (n *jsonNode) member(key string) *jsonNode {
	for i := len(n.members) - 1; i >= 0; i-- {
		if n.members[i].key == key {
			return n.members[i].value
		}
	}
	return nil
}

// insert adds m, the member at position pos of si's fields, before the first member of
// n that comes after it in the shape's order; at the end when none does.
func (n *jsonNode) insert(m jsonMember, pos int, si *structInfo) {
	at := len(n.members)
	for i, have := range n.members {
		if p, ok := si.byName[have.key]; ok && p > pos {
			at = i
			break
		}
	}
	n.members = append(n.members, jsonMember{})
	copy(n.members[at+1:], n.members[at:])
	n.members[at] = m
}

// tree converts n to what encoding/json with UseNumber decodes, the decoder's input.
func (n *jsonNode) tree() any {
	switch n.kind {
	case '{':
		o := make(map[string]any, len(n.members))
		for _, m := range n.members {
			o[m.key] = m.value.tree()
		}
		return o
	case '[':
		a := make([]any, len(n.items))
		for i, item := range n.items {
			a[i] = item.tree()
		}
		return a
	case '"':
		var s string
		_ = json.Unmarshal(n.raw, &s) // checked by json.Valid
		return s
	}
	switch string(n.raw) {
	case "null":
		return nil
	case "true":
		return true
	case "false":
		return false
	}
	return json.Number(n.raw)
}

// appendTo writes n compactly.
func (n *jsonNode) appendTo(b []byte) []byte {
	switch n.kind {
	case '{':
		b = append(b, '{')
		for i, m := range n.members {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, m.rawKey...)
			b = append(b, ':')
			b = m.value.appendTo(b)
		}
		return append(b, '}')
	case '[':
		b = append(b, '[')
		for i, item := range n.items {
			if i > 0 {
				b = append(b, ',')
			}
			b = item.appendTo(b)
		}
		return append(b, ']')
	}
	return append(b, n.raw...)
}

// parseOrdered parses one JSON value into a jsonNode.
func parseOrdered(data []byte) (*jsonNode, error) {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v) // for its message
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, err
	}
	p := orderedParser{data: data}
	return p.value(), nil
}

// orderedParser reads JSON that json.Valid accepted.
type orderedParser struct {
	data []byte
	pos  int
}

func (p *orderedParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *orderedParser) value() *jsonNode {
	p.skipSpace()
	switch p.data[p.pos] {
	case '{':
		n := &jsonNode{kind: '{'}
		p.pos++
		for {
			p.skipSpace()
			switch p.data[p.pos] {
			case '}':
				p.pos++
				return n
			case ',':
				p.pos++
				continue
			}
			rawKey := p.str()
			var key string
			if bytes.IndexByte(rawKey, '\\') < 0 {
				key = string(rawKey[1 : len(rawKey)-1])
			} else {
				_ = json.Unmarshal(rawKey, &key)
			}
			p.skipSpace()
			p.pos++ // ':'
			n.members = append(n.members, jsonMember{key: key, rawKey: rawKey, value: p.value()})
		}
	case '[':
		n := &jsonNode{kind: '['}
		p.pos++
		for {
			p.skipSpace()
			switch p.data[p.pos] {
			case ']':
				p.pos++
				return n
			case ',':
				p.pos++
				continue
			}
			n.items = append(n.items, p.value())
		}
	case '"':
		return &jsonNode{kind: '"', raw: p.str()}
	}
	start := p.pos
	for p.pos < len(p.data) && !strings.ContainsRune(" \t\n\r,]}", rune(p.data[p.pos])) {
		p.pos++
	}
	return &jsonNode{raw: p.data[start:p.pos]}
}

// str reads a string and returns it as written, quotes included.
func (p *orderedParser) str() []byte {
	start := p.pos
	p.pos++ // opening quote
	for p.data[p.pos] != '"' {
		if p.data[p.pos] == '\\' {
			p.pos++
		}
		p.pos++
	}
	p.pos++
	return p.data[start:p.pos]
}

// reformat lays out compact, the restored body, as out was: compact, or indented with
// out's prefix and indent, with out's surrounding white space.
func reformat(out, compact []byte) ([]byte, error) {
	const space = " \t\n\r"
	body := bytes.TrimLeft(out, space)
	lead := out[:len(out)-len(body)]
	body = bytes.TrimRight(body, space)
	trail := out[len(lead)+len(body):]
	var b bytes.Buffer
	b.Write(lead)
	lines := bytes.Split(body, []byte("\n"))
	if len(lines) < 3 { // compact: an indented object with members has three lines or more
		b.Write(compact)
		b.Write(trail)
		return b.Bytes(), nil
	}
	leading := func(line []byte) []byte { return line[:len(line)-len(bytes.TrimLeft(line, " \t"))] }
	prefix := leading(lines[len(lines)-1])
	indent, ok := bytes.CutPrefix(leading(lines[1]), prefix)
	if !ok || len(indent) == 0 {
		prefix, indent = nil, leading(lines[1])
	}
	if err := json.Indent(&b, compact, string(prefix), string(indent)); err != nil {
		return nil, fmt.Errorf("awsjson: restore: indent: %w", err)
	}
	b.Write(trail)
	return b.Bytes(), nil
}
