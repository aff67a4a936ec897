package awsjson

import (
	"encoding/base64"
	"encoding/json"
	"math/big"
	"reflect"
	"strconv"
	"testing"
	"time"

	smithy "github.com/aws/smithy-go"
	smithydocument "github.com/aws/smithy-go/document"
	smithytime "github.com/aws/smithy-go/time"
	"github.com/google/go-cmp/cmp"
)

// treeSerializer is a smithy.ShapeSerializer that builds the JSON tree the SDK's
// generated Serialize methods describe, with the member names of the SDK's schemas (which
// are generated from the same Smithy models as botocore's).
type treeSerializer struct {
	root  any
	stack []any // *map[string]any (struct or map) or *[]any
}

func (s *treeSerializer) put(schema *smithy.Schema, v any) {
	if len(s.stack) == 0 {
		s.root = v
		return
	}
	switch top := s.stack[len(s.stack)-1].(type) {
	case *[]any:
		*top = append(*top, v)
	case *structOrMap:
		if top.isMap {
			top.m[top.key] = v
		} else {
			top.m[schema.MemberName()] = v
		}
	}
}

type structOrMap struct {
	m     map[string]any
	isMap bool
	key   string
}

func num(s string) any { return json.Number(s) }

func (s *treeSerializer) Bytes() []byte                         { return nil }
func (s *treeSerializer) WriteInt8(sc *smithy.Schema, v int8)   { s.put(sc, num(strconv.Itoa(int(v)))) }
func (s *treeSerializer) WriteInt16(sc *smithy.Schema, v int16) { s.put(sc, num(strconv.Itoa(int(v)))) }
func (s *treeSerializer) WriteInt32(sc *smithy.Schema, v int32) { s.put(sc, num(strconv.Itoa(int(v)))) }
func (s *treeSerializer) WriteInt64(sc *smithy.Schema, v int64) {
	s.put(sc, num(strconv.FormatInt(v, 10)))
}
func (s *treeSerializer) WriteFloat32(sc *smithy.Schema, v float32) {
	s.put(sc, num(strconv.FormatFloat(float64(v), 'g', -1, 32)))
}
func (s *treeSerializer) WriteFloat64(sc *smithy.Schema, v float64) {
	s.put(sc, num(strconv.FormatFloat(v, 'g', -1, 64)))
}
func (s *treeSerializer) WriteBool(sc *smithy.Schema, v bool)     { s.put(sc, v) }
func (s *treeSerializer) WriteString(sc *smithy.Schema, v string) { s.put(sc, v) }
func (s *treeSerializer) WriteBigInt(sc *smithy.Schema, v *big.Int) {
	s.put(sc, num(v.String()))
}
func (s *treeSerializer) WriteBigFloat(sc *smithy.Schema, v *big.Float) {
	s.put(sc, num(v.Text('g', -1)))
}
func (s *treeSerializer) WriteBlob(sc *smithy.Schema, v []byte) {
	s.put(sc, base64.StdEncoding.EncodeToString(v))
}
func (s *treeSerializer) WriteTime(sc *smithy.Schema, v time.Time) {
	s.put(sc, num(strconv.FormatFloat(smithytime.FormatEpochSeconds(v), 'f', -1, 64)))
}
func (s *treeSerializer) WriteUnion(sc, variant *smithy.Schema) { s.WriteStruct(sc) }
func (s *treeSerializer) CloseUnion()                           { s.CloseStruct() }
func (s *treeSerializer) WriteDocument(sc *smithy.Schema, v smithydocument.Value) {
	var raw []byte
	switch d := v.(type) {
	case *smithydocument.Opaque:
		raw, _ = d.Value.(smithydocument.Marshaler).MarshalSmithyDocument()
	case smithydocument.Opaque:
		raw, _ = d.Value.(smithydocument.Marshaler).MarshalSmithyDocument()
	}
	var j any
	_ = json.Unmarshal(raw, &j)
	s.put(sc, j)
}
func (s *treeSerializer) WriteNil(sc *smithy.Schema) { s.put(sc, nil) }
func (s *treeSerializer) WriteStruct(sc *smithy.Schema) {
	c := &structOrMap{m: map[string]any{}}
	s.put(sc, c.m)
	s.stack = append(s.stack, c)
}
func (s *treeSerializer) CloseStruct() { s.stack = s.stack[:len(s.stack)-1] }
func (s *treeSerializer) WriteList(sc *smithy.Schema) {
	l := &[]any{}
	s.put(sc, l) // replaced by the slice on close
	s.stack = append(s.stack, l)
}
func (s *treeSerializer) CloseList() {
	l := s.stack[len(s.stack)-1].(*[]any)
	s.stack = s.stack[:len(s.stack)-1]
	s.replace(l, *l)
}
func (s *treeSerializer) WriteMap(sc *smithy.Schema) {
	c := &structOrMap{m: map[string]any{}, isMap: true}
	s.put(sc, c.m)
	s.stack = append(s.stack, c)
}
func (s *treeSerializer) WriteKey(_ *smithy.Schema, key string) {
	s.stack[len(s.stack)-1].(*structOrMap).key = key
}
func (s *treeSerializer) CloseMap() { s.CloseStruct() }

// replace swaps the placeholder pointer of a list for its final slice.
func (s *treeSerializer) replace(old *[]any, final []any) {
	if len(s.stack) == 0 {
		s.root = final
		return
	}
	switch top := s.stack[len(s.stack)-1].(type) {
	case *[]any:
		for i, v := range *top {
			if p, ok := v.(*[]any); ok && p == old {
				(*top)[i] = final
			}
		}
	case *structOrMap:
		for k, v := range top.m {
			if p, ok := v.(*[]any); ok && p == old {
				top.m[k] = final
			}
		}
	}
}

// normalise makes numbers comparable by value.
func normalise(j any) any {
	switch x := j.(type) {
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalise(x[i])
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, v := range x {
			out[k] = normalise(v)
		}
		return out
	}
	return j
}

// TestMatchesSDKSerializer compares the codec's body for a fully populated input and
// output of every operation with what the SDK's own generated serializer describes for
// the same value: same member names (including members newer than botocore's model),
// same values. Unions, which the codec does not support, are left nil by the filler.
func TestMatchesSDKSerializer(t *testing.T) {
	for _, c := range clients {
		codec := Codec{Service: c.service}
		for _, o := range operations(c.client) {
			for _, typ := range []reflect.Type{o.input, o.output} {
				v := filled(typ)
				ser, ok := v.(smithy.Serializable)
				if !ok {
					t.Fatalf("%s: %s has no Serialize method: the SDK no longer uses schema serde", c.service, typ)
				}
				var ts treeSerializer
				ser.Serialize(&ts)
				data, err := codec.Marshal(v)
				if err != nil {
					t.Errorf("%s %s: Marshal: %v", c.service, typ.Name(), err)
					continue
				}
				got := normalise(decodeTree(t, data))
				want := normalise(ts.root)
				if diff := cmp.Diff(got, want); diff != "" {
					t.Errorf("%s %s: codec body differs from the SDK serializer's (-codec +sdk):\n%s", c.service, typ.Name(), diff)
				}
			}
		}
	}
}
