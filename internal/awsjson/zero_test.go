package awsjson

import (
	"bytes"
	"os/exec"
	"reflect"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	smithy "github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

// zeroFilled is filled(t) with every non-pointer scalar member (numbers, booleans, enums)
// left at its zero value, at every depth: the values where "unset" and "zero" meet.
func zeroFilled(t reflect.Type) any {
	p := reflect.New(t)
	(&filler{zeroScalars: true}).fill(p.Elem())
	return p.Interface()
}

// isScalarKind reports whether k is the kind of a non-pointer scalar SDK member.
func isScalarKind(k reflect.Kind) bool {
	switch k {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// sdkTree is the JSON tree the SDK's own serializer describes for v.
func sdkTree(t *testing.T, v any) any {
	t.Helper()
	ser, ok := v.(smithy.Serializable)
	if !ok {
		t.Fatalf("%T has no Serialize method: the SDK no longer uses schema serde", v)
	}
	var ts treeSerializer
	ser.Serialize(&ts)
	return ts.root
}

// compareWithSDK fails the test when the codec's body for v differs from the SDK's.
func compareWithSDK(t *testing.T, codec Codec, v any) {
	t.Helper()
	data, err := codec.Marshal(v)
	if err != nil {
		t.Errorf("%T: Marshal: %v", v, err)
		return
	}
	got := normalise(decodeTree(t, data))
	want := normalise(sdkTree(t, v))
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("%T: codec body differs from the SDK serializer's (-codec +sdk):\n%s", v, diff)
	}
}

// reachableStructs lists the SDK struct types reachable from t, t included, in a
// deterministic order.
func reachableStructs(t reflect.Type) []reflect.Type {
	var out []reflect.Type
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		if seen[t] {
			return
		}
		seen[t] = true
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			walk(t.Elem())
		case reflect.Struct:
			if t == timeType || t == metadataType {
				return
			}
			out = append(out, t)
			for i := range t.NumField() {
				if t.Field(i).IsExported() {
					walk(t.Field(i).Type)
				}
			}
		}
	}
	walk(t)
	return out
}

// TestUlimitZeroLimits is issue 15's case: soft and hard limits of 0 are required
// members and go on the wire; the aws CLI refuses a ulimit without them.
func TestUlimitZeroLimits(t *testing.T) {
	codec := Codec{Service: ECS}
	u := &ecstypes.Ulimit{Name: ecstypes.UlimitNameCore}
	got, err := codec.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"hardLimit":0,"name":"core","softLimit":0}`; string(got) != want {
		t.Errorf("Marshal(Ulimit):\ngot  %s\nwant %s", got, want)
	}
	compareWithSDK(t, codec, u)

	in := &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name:    aws.String("app"),
			Ulimits: []ecstypes.Ulimit{{Name: ecstypes.UlimitNameCore}, {Name: ecstypes.UlimitNameNofile, SoftLimit: 1024, HardLimit: 4096}},
		}},
	}
	got, err = codec.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"containerDefinitions":[{"name":"app","ulimits":[{"hardLimit":0,"name":"core","softLimit":0},{"hardLimit":4096,"name":"nofile","softLimit":1024}]}],"family":"web"}`
	if string(got) != want {
		t.Errorf("Marshal(RegisterTaskDefinitionInput):\ngot  %s\nwant %s", got, want)
	}
	var back ecs.RegisterTaskDefinitionInput
	if err := (Codec{Service: ECS, Strict: true}).Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&back, in, cmpOpts(in)); diff != "" {
		t.Errorf("decode(encode(x)) differs (-got +want):\n%s", diff)
	}
	validateWithBotocore(t, "RegisterTaskDefinition", got)
}

// TestRequiredBeyondModel checks the hand-kept list of required members: each names a
// non-pointer number or boolean of an SDK type (anything else is never omitted, or is
// an enum the SDK omits even when required), and none is already required by the
// generated table (regenerated from a botocore that caught up: remove it from the list).
func TestRequiredBeyondModel(t *testing.T) {
	for _, c := range clients {
		codec := Codec{Service: c.service}
		byShape := map[string]reflect.Type{}
		for _, o := range operations(c.client) {
			for _, root := range []reflect.Type{o.input, o.output} {
				for _, typ := range reachableStructs(root) {
					si, err := codec.structOf(typ)
					if err != nil {
						continue // another package's struct
					}
					shape := si.shape
					if shape == "" {
						shape = typ.Name()
					}
					byShape[shape] = typ
				}
			}
		}
		for shape, members := range requiredBeyondModel[c.service] {
			typ, ok := byShape[shape]
			if !ok {
				t.Errorf("%s: requiredBeyondModel names shape %s, which no operation reaches", c.service, shape)
				continue
			}
			si, _ := codec.structOf(typ)
			for _, w := range members {
				i, ok := si.byName[w]
				if !ok {
					t.Errorf("%s: requiredBeyondModel names %s.%s, not a member of %s", c.service, shape, w, typ)
					continue
				}
				switch k := typ.Field(si.fields[i].index).Type.Kind(); {
				case k == reflect.Pointer || k == reflect.String || !isScalarKind(k):
					t.Errorf("%s: requiredBeyondModel names %s.%s, a %s: the entry changes nothing", c.service, shape, w, k)
				}
				if slices.Contains(generatedModels[c.service].required[shape], w) {
					t.Errorf("%s: %s.%s is required in models_gen.go now: remove it from requiredBeyondModel", c.service, shape, w)
				}
			}
		}
	}
}

// TestZeroScalarsMatchSDK encodes, for every struct type reachable from
// RegisterTaskDefinitionInput, a value whose non-pointer scalars are all zero, and
// compares it with what the SDK's serializer sends: required numbers and booleans are
// written as 0 and false, optional ones and empty enums are left out.
func TestZeroScalarsMatchSDK(t *testing.T) {
	codec := Codec{Service: ECS}
	types := reachableStructs(reflect.TypeFor[ecs.RegisterTaskDefinitionInput]())
	scalars := 0
	for _, typ := range types {
		for i := range typ.NumField() {
			if f := typ.Field(i); f.IsExported() && isScalarKind(f.Type.Kind()) {
				scalars++
			}
		}
		compareWithSDK(t, codec, zeroFilled(typ))
	}
	if len(types) < 30 || scalars < 20 {
		t.Errorf("only %d struct types with %d non-pointer scalar members reached: the sweep is broken", len(types), scalars)
	}
	t.Logf("%d struct types, %d non-pointer scalar members compared with the SDK", len(types), scalars)
}

// TestZeroScalarsMatchSDKEverywhere does the same for the input and output of every
// operation of every service.
func TestZeroScalarsMatchSDKEverywhere(t *testing.T) {
	for _, c := range clients {
		codec := Codec{Service: c.service}
		for _, o := range operations(c.client) {
			compareWithSDK(t, codec, zeroFilled(o.input))
			compareWithSDK(t, codec, zeroFilled(o.output))
		}
	}
}

// validateWithBotocore runs botocore's parameter validation, the check the aws CLI makes
// before sending, on an operation's input.
func validateWithBotocore(t *testing.T, operation string, input []byte) {
	t.Helper()
	const script = `
import json, sys
import botocore.session
from botocore.validate import ParamValidator
model = botocore.session.get_session().get_service_model("ecs").operation_model(sys.argv[1])
report = ParamValidator().validate(json.load(sys.stdin), model.input_shape)
if report.has_errors():
    print(report.generate_report())
    sys.exit(1)
`
	cmd := exec.Command("python3", "-c", script, operation)
	cmd.Stdin = bytes.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("botocore refuses the %s input (%v):\n%s", operation, err, out)
	}
}
