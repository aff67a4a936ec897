package awsjson

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecsdocument "github.com/aws/aws-sdk-go-v2/service/ecs/document"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	smithydocument "github.com/aws/smithy-go/document"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// clients are the SDK clients of the services; their methods are the operations.
var clients = []struct {
	service Service
	client  reflect.Type
}{
	{ECS, reflect.TypeFor[*ecs.Client]()},
	{SQS, reflect.TypeFor[*sqs.Client]()},
	{EventBridge, reflect.TypeFor[*eventbridge.Client]()},
	{SecretsManager, reflect.TypeFor[*secretsmanager.Client]()},
	{ECR, reflect.TypeFor[*ecr.Client]()},
}

// usedOperations are the operations the project calls (the list).
var usedOperations = map[Service][]string{
	ECS: {"CreateCluster", "ListClusters", "DescribeClusters", "RegisterTaskDefinition", "DeregisterTaskDefinition",
		"DescribeTaskDefinition", "ListTaskDefinitionFamilies", "ListTaskDefinitions", "TagResource", "UntagResource",
		"ListTagsForResource", "CreateService", "UpdateService", "DescribeServices", "ListServices", "DeleteService"},
	SQS: {"CreateQueue", "GetQueueUrl", "GetQueueAttributes", "SetQueueAttributes", "SendMessage", "SendMessageBatch",
		"ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch",
		"PurgeQueue", "DeleteQueue", "ListQueues"},
	EventBridge: {"PutRule", "PutTargets", "RemoveTargets", "DeleteRule", "ListRules", "ListRuleNamesByTarget",
		"ListTargetsByRule", "DescribeRule", "CreateEventBus", "PutEvents"},
	SecretsManager: {"CreateSecret", "DescribeSecret", "GetSecretValue"},
	ECR:            {"GetAuthorizationToken", "BatchGetImage"},
}

type op struct {
	name          string
	input, output reflect.Type // struct types
}

// operations lists every operation of an SDK client: each method
// Name(context.Context, *NameInput, ...func(*Options)) (*NameOutput, error).
func operations(client reflect.Type) []op {
	ctxType := reflect.TypeFor[context.Context]()
	var ops []op
	for i := range client.NumMethod() {
		m := client.Method(i)
		t := m.Type
		if t.NumIn() != 4 || !t.IsVariadic() || t.In(1) != ctxType || t.NumOut() != 2 {
			continue
		}
		in, out := t.In(2), t.Out(0)
		if in.Kind() != reflect.Pointer || out.Kind() != reflect.Pointer ||
			in.Elem().Name() != m.Name+"Input" || out.Elem().Name() != m.Name+"Output" {
			continue
		}
		ops = append(ops, op{m.Name, in.Elem(), out.Elem()})
	}
	return ops
}

// filler sets every field it can reach to a distinct non-zero value; with zeroScalars,
// non-pointer scalar fields of structs stay zero.
type filler struct {
	n           int
	onPath      map[reflect.Type]bool // struct types being filled: recursive shapes stop here
	zeroScalars bool
}

// fillTime is a time with millisecond precision: the precision of AWS and of the SDK.
var fillTime = time.Date(2021, 8, 25, 11, 20, 8, 202_000_000, time.UTC)

func (f *filler) fill(v reflect.Value) {
	f.n++
	t := v.Type()
	switch {
	case t == timeType:
		v.Set(reflect.ValueOf(fillTime.Add(time.Duration(f.n) * time.Millisecond)))
		return
	case t == metadataType:
		return
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		v.SetBytes([]byte(fmt.Sprintf("blob\x00\xff%d", f.n)))
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		f.fill(p.Elem())
		v.Set(p)
	case reflect.Interface:
		if t == reflect.TypeFor[ecsdocument.Interface]() {
			v.Set(reflect.ValueOf(ecsdocument.NewLazyDocument(map[string]any{
				"Foo-Bar": "x", "n": smithydocument.Number(fmt.Sprint(f.n)), "list": []any{true, nil},
			})))
		}
		// Unions are not supported by the codec: left nil.
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d<&>", f.n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(f.n%100 + 1))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(f.n) + 0.5)
	case reflect.Slice:
		if isUnion(t.Elem()) {
			return
		}
		s := reflect.MakeSlice(t, 2, 2)
		f.fill(s.Index(0))
		f.fill(s.Index(1))
		v.Set(s)
	case reflect.Map:
		if isUnion(t.Elem()) {
			return
		}
		m := reflect.MakeMap(t)
		for _, k := range []string{"Foo-Bar", "baz_Qux/2"} {
			e := reflect.New(t.Elem()).Elem()
			f.fill(e)
			m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), e)
		}
		v.Set(m)
	case reflect.Struct:
		if f.onPath == nil {
			f.onPath = map[reflect.Type]bool{}
		}
		if f.onPath[t] {
			return
		}
		f.onPath[t] = true
		defer delete(f.onPath, t)
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() || (f.zeroScalars && isScalarKind(sf.Type.Kind())) {
				continue
			}
			f.fill(v.Field(i))
		}
	}
}

// isUnion reports whether t is the interface of an SDK union (not a document).
func isUnion(t reflect.Type) bool {
	return t.Kind() == reflect.Interface && t != reflect.TypeFor[ecsdocument.Interface]()
}

// filled returns a pointer to a fully populated value of struct type t.
func filled(t reflect.Type) any {
	p := reflect.New(t)
	(&filler{}).fill(p.Elem())
	return p.Interface()
}

// sameDocument compares smithy documents by the JSON they hold.
func sameDocument(a, b ecsdocument.Interface) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ja, errA := a.MarshalSmithyDocument()
	jb, errB := b.MarshalSmithyDocument()
	if errA != nil || errB != nil {
		return false
	}
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(ja)), json.NewDecoder(bytes.NewReader(jb))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// cmpOpts compare SDK values: unexported noSmithyDocumentSerde fields and the result
// metadata of outputs are ignored; documents compare by content.
func cmpOpts(values ...any) cmp.Options {
	opts := cmp.Options{
		cmpopts.IgnoreTypes(middleware.Metadata{}),
		cmp.Comparer(sameDocument),
		cmpopts.EquateNaNs(),
	}
	for _, v := range values {
		opts = append(opts, ignoreUnexportedIn(reflect.TypeOf(v)))
	}
	return opts
}

// ignoreUnexportedIn ignores unexported fields of every struct type reachable from t.
func ignoreUnexportedIn(t reflect.Type) cmp.Option {
	var structs []any
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		if seen[t] {
			return
		}
		seen[t] = true
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(t.Elem())
		case reflect.Map:
			walk(t.Elem())
		case reflect.Struct:
			if t == timeType || strings.HasPrefix(t.PkgPath(), "github.com/aws/smithy-go") {
				return
			}
			structs = append(structs, reflect.New(t).Elem().Interface())
			for i := range t.NumField() {
				walk(t.Field(i).Type)
			}
		}
	}
	walk(t)
	return cmpopts.IgnoreUnexported(structs...)
}

func TestOperationsFound(t *testing.T) {
	for _, c := range clients {
		got := map[string]bool{}
		for _, o := range operations(c.client) {
			got[o.name] = true
		}
		for _, name := range usedOperations[c.service] {
			if !got[name] {
				t.Errorf("%s: operation %s not found on %s", c.service, name, c.client)
			}
		}
	}
}
