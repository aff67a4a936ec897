package awsjson

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/ecs-sidecar/reconciler/internal/awsjson/internal/botocore"
)

// loadModels reads the botocore models of every service. A machine without python3 or
// botocore fails the test: CI has them, and the names cannot be checked otherwise.
func loadModels(t *testing.T) (map[Service]*botocore.Model, string) {
	t.Helper()
	dir, err := botocore.Dir()
	if err != nil {
		t.Fatalf("botocore models are needed to check member names: %v", err)
	}
	models := map[Service]*botocore.Model{}
	for _, c := range clients {
		m, err := botocore.Load(dir, string(c.service))
		if err != nil {
			t.Fatalf("load botocore model: %v", err)
		}
		models[c.service] = m
	}
	return models, dir
}

// modelChecker walks an encoded body along the model's shapes.
type modelChecker struct {
	model *botocore.Model
	// errs are member names the model has with other casing, or JSON of the wrong type.
	errs []string
	// checked counts the member names found in the model.
	checked int
	// absent lists members the botocore model lacks (the SDK is newer): shape.member.
	absent map[string]bool
}

func (mc *modelChecker) errorf(format string, args ...any) {
	mc.errs = append(mc.errs, fmt.Sprintf(format, args...))
}

func (mc *modelChecker) check(j any, shapeName, path string) {
	shape, ok := mc.model.Shapes[shapeName]
	if !ok {
		mc.errorf("%s: shape %s not in the model", path, shapeName)
		return
	}
	switch shape.Type {
	case "structure":
		if shape.Document {
			return // any JSON
		}
		o, ok := j.(map[string]any)
		if !ok {
			mc.errorf("%s: %s is a structure, got %T", path, shapeName, j)
			return
		}
		for key, v := range o {
			ref, ok := shape.Members[key]
			if !ok {
				for member := range shape.Members {
					if strings.EqualFold(member, key) {
						mc.errorf("%s.%s: the model spells it %s.%s", path, key, shapeName, member)
						ok = true
					}
				}
				if !ok {
					mc.absent[shapeName+"."+key] = true
				}
				continue
			}
			mc.checked++
			mc.check(v, ref.Shape, path+"."+key)
		}
	case "list":
		a, ok := j.([]any)
		if !ok {
			mc.errorf("%s: %s is a list, got %T", path, shapeName, j)
			return
		}
		for i, v := range a {
			mc.check(v, shape.Member.Shape, fmt.Sprintf("%s[%d]", path, i))
		}
	case "map":
		o, ok := j.(map[string]any)
		if !ok {
			mc.errorf("%s: %s is a map, got %T", path, shapeName, j)
			return
		}
		for k, v := range o { // keys are user data: not checked, not re-cased
			mc.check(v, shape.Value.Shape, fmt.Sprintf("%s[%q]", path, k))
		}
	case "string":
		if _, ok := j.(string); !ok {
			mc.errorf("%s: %s is a string, got %T", path, shapeName, j)
		}
	case "boolean":
		if _, ok := j.(bool); !ok {
			mc.errorf("%s: %s is a boolean, got %T", path, shapeName, j)
		}
	case "integer", "long":
		n, ok := j.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			mc.errorf("%s: %s is an integer, got %v", path, shapeName, j)
		}
	case "double", "float":
		if _, ok := j.(json.Number); !ok {
			mc.errorf("%s: %s is a number, got %T", path, shapeName, j)
		}
	case "timestamp":
		if shape.TimestampFormat != "" && shape.TimestampFormat != "unixTimestamp" {
			mc.errorf("%s: %s has timestamp format %s, the codec writes epoch seconds", path, shapeName, shape.TimestampFormat)
		}
		if _, ok := j.(json.Number); !ok {
			mc.errorf("%s: %s is a timestamp (epoch seconds), got %T", path, shapeName, j)
		}
	case "blob":
		s, ok := j.(string)
		if _, err := base64.StdEncoding.DecodeString(s); !ok || err != nil {
			mc.errorf("%s: %s is a base64 blob, got %v", path, shapeName, j)
		}
	default:
		mc.errorf("%s: shape type %s of %s not handled by the check", path, shape.Type, shapeName)
	}
}

func decodeTree(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var j any
	if err := dec.Decode(&j); err != nil {
		t.Fatalf("codec output is not JSON: %v\n%s", err, data)
	}
	return j
}

// TestMemberNamesMatchBotocore encodes a fully populated input and output of every
// operation of every service and checks every member name and value type in the body
// against botocore's model, recursively. Members the installed botocore does not have
// (the SDK is newer) are listed; TestMatchesSDKSerializer checks those names against the
// SDK's own serializer.
func TestMemberNamesMatchBotocore(t *testing.T) {
	models, _ := loadModels(t)
	for _, c := range clients {
		model := models[c.service]
		codec := Codec{Service: c.service}
		mc := &modelChecker{model: model, absent: map[string]bool{}}
		used := map[string]bool{}
		for _, name := range usedOperations[c.service] {
			used[name] = true
		}
		for _, o := range operations(c.client) {
			mop, ok := model.Operations[o.name]
			inUse := used[o.name]
			delete(used, o.name)
			if !ok {
				if inUse {
					t.Errorf("%s: operation %s used by the project is not in the botocore model", c.service, o.name)
				} else {
					t.Logf("%s: operation %s is newer than botocore's model: not checked here", c.service, o.name)
				}
				continue
			}
			for _, side := range []struct {
				typ any
				ref *botocore.Ref
			}{{filled(o.input), mop.Input}, {filled(o.output), mop.Output}} {
				data, err := codec.Marshal(side.typ)
				if err != nil {
					t.Errorf("%s %s: Marshal: %v", c.service, o.name, err)
					continue
				}
				j := decodeTree(t, data)
				if side.ref == nil {
					if obj := j.(map[string]any); len(obj) != 0 {
						t.Errorf("%s %s: the model has no shape, the codec wrote %s", c.service, o.name, data)
					}
					continue
				}
				mc.check(j, side.ref.Shape, o.name)
			}
		}
		for name := range used {
			t.Errorf("%s: operation %s not found on the SDK client", c.service, name)
		}
		for _, e := range mc.errs {
			t.Errorf("%s: %s", c.service, e)
		}
		if mc.checked == 0 {
			t.Errorf("%s: no member checked", c.service)
		}
		var absent []string
		for k := range mc.absent {
			absent = append(absent, k)
		}
		sort.Strings(absent)
		t.Logf("%s: %d member names checked against botocore; %d members not in botocore's model (SDK newer): %s",
			c.service, mc.checked, len(absent), strings.Join(absent, ", "))
	}
}

// TestGeneratedTableUpToDate regenerates models_gen.go from the installed botocore and
// compares it with the committed file when the botocore version is the one it was made
// from; with another botocore, the committed table is what TestMemberNamesMatchBotocore
// checks against the installed models.
func TestGeneratedTableUpToDate(t *testing.T) {
	_, dir := loadModels(t)
	version, err := botocore.Version()
	if err != nil {
		t.Fatal(err)
	}
	want, err := botocore.GenerateGo(dir, version)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("models_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if version != botocoreVersion {
		t.Logf("models_gen.go is from botocore %s, the machine has %s: regenerate with go generate", botocoreVersion, version)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("models_gen.go is out of date: run go generate ./internal/awsjson")
	}
}
