// Package awsjson converts between aws-sdk-go-v2 Go values (operation inputs and outputs
// and the types they reach) and the JSON bodies of the AWS JSON 1.0/1.1 protocols, with
// member names exactly as the service models spell them.
//
// Member names come from a table generated from botocore's service models
// (models_gen.go, go generate). A Go field is matched to the model member of its shape
// whose name equals the field name but for case (the SDK capitalises member names). A
// field the table does not know (an SDK newer than the table) falls back to the service's
// casing rule; the tests list such fields and check them against the SDK's own serializer.
//
// Encoding follows the SDK's serializers. Nil pointers, slices, maps and interfaces are
// omitted; a pointer to a zero value, an empty slice or map is written (0, false, "", [],
// {}). A non-pointer number or boolean is written, zero or not, when the model requires
// the member (Ulimit.softLimit 0 goes out as 0: the aws CLI and the service refuse a
// ulimit without it) and omitted at its zero value otherwise; a non-pointer string (an
// enum) is omitted when empty, required or not, as the SDK does. Required members are
// botocore's (the generated table) plus requiredBeyondModel, where the SDK's model is
// newer or differs; the tests compare every shape with the SDK's serializer. Timestamps
// are epoch seconds with millisecond precision; blobs are base64; map keys are user data
// and are never re-cased. Decoding also accepts ISO 8601 timestamps (the aws CLI prints
// them), keeps millisecond precision like the SDK does, and turns null into the zero
// value. Smithy documents (ECS hookDetails) pass through as JSON; unions (for example ECS
// ResourceRequirement.sharingStrategy, newer than botocore's model) are refused with an
// error naming the member.
//
// Unset and zero are different things on the wire, but SDK types hold an optional
// non-pointer scalar at its zero value as they hold an unset one (IpcMode("") is both),
// and null as unset, so decoding and encoding again drops such members: RestorePresent
// puts back, from the source JSON, every such member the source had.
//
// To add a JSON-protocol service: a Service constant, its SDK package in sdkPackages, its
// model version in internal/botocore.APIVersions, go generate, and its client in the
// tests' clients list.
package awsjson

//go:generate go run ./internal/gen -o models_gen.go

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Service names an AWS service by its botocore model directory.
type Service string

// The services the reconciler talks to.
const (
	ECS            Service = "ecs"
	SQS            Service = "sqs"
	EventBridge    Service = "events"
	SecretsManager Service = "secretsmanager"
	ECR            Service = "ecr"
	// Tagging is the Resource Groups Tagging API (tag:GetResources).
	Tagging Service = "resourcegroupstaggingapi"
)

// ErrUnknownMember is wrapped by Unmarshal errors about input members the model does not
// have (Strict mode only).
var ErrUnknownMember = errors.New("unknown member")

// sdkPackages maps each service to the import path of its aws-sdk-go-v2 client; its
// shapes live there (operation inputs and outputs) and in its types subpackage.
var sdkPackages = map[Service]string{
	ECS:            "github.com/aws/aws-sdk-go-v2/service/ecs",
	SQS:            "github.com/aws/aws-sdk-go-v2/service/sqs",
	EventBridge:    "github.com/aws/aws-sdk-go-v2/service/eventbridge",
	SecretsManager: "github.com/aws/aws-sdk-go-v2/service/secretsmanager",
	ECR:            "github.com/aws/aws-sdk-go-v2/service/ecr",
	Tagging:        "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi",
}

// lowerCamelServices name their members in lowerCamel case; the others in PascalCase.
// Only used for fields the generated table does not know.
var lowerCamelServices = map[Service]bool{ECS: true, ECR: true}

// requiredBeyondModel lists, by service and shape (the SDK type's name where the table
// lacks the shape), members the SDK requires and so always sends that the generated table
// does not mark required: shapes or members newer than botocore's model, and members the
// two models disagree on. The tests compare every shape's encoding of zero scalars with
// the SDK's serializer and fail on anything this list misses.
var requiredBeyondModel = map[Service]map[string][]string{
	ECS: {
		"DeploymentEarlySuccessCriteria": {"enable"}, // newer than botocore 1.43.11
		"ThresholdConfiguration":         {"value"},  // newer than botocore 1.43.11
	},
	SQS: {
		// botocore requires only Id and ReceiptHandle; the SDK's model also this.
		"ChangeMessageVisibilityBatchRequestEntry": {"VisibilityTimeout"},
	},
}

// serviceModel is the generated part of a service model.
type serviceModel struct {
	apiVersion   string
	jsonVersion  string
	targetPrefix string
	operations   map[string]operation
	structures   map[string][]string // shape name -> member wire names
	required     map[string][]string // shape name -> wire names of its required members
}

type operation struct {
	input, output string
}

// Codec converts between SDK v2 Go values and the service's JSON wire shape.
type Codec struct {
	Service Service
	Strict  bool // unknown input members are an error when true, ignored otherwise
}

// TargetPrefix returns the prefix of the X-Amz-Target header of the service
// ("AmazonEC2ContainerServiceV20141113" for ECS): the header is prefix + "." + operation.
func (s Service) TargetPrefix() string {
	if m := generatedModels[s]; m != nil {
		return m.targetPrefix
	}
	return ""
}

// ContentType returns the Content-Type of the service's requests and responses,
// application/x-amz-json-1.0 or -1.1.
func (s Service) ContentType() string {
	if m := generatedModels[s]; m != nil {
		return "application/x-amz-json-" + m.jsonVersion
	}
	return ""
}

// Marshal encodes v, a struct or pointer to struct of the service's SDK types.
func (c Codec) Marshal(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, fmt.Errorf("awsjson: marshal nil %T", v)
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil, fmt.Errorf("awsjson: marshal %T: not a struct", v)
	}
	e := encoder{codec: c}
	if err := e.value(rv, ""); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// MarshalIndent is Marshal with each member on its own line, indented by indent.
func (c Codec) MarshalIndent(v any, prefix, indent string) ([]byte, error) {
	b, err := c.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, prefix, indent); err != nil {
		return nil, fmt.Errorf("awsjson: indent: %w", err)
	}
	return out.Bytes(), nil
}

// Unmarshal decodes data into v, a non-nil pointer to a struct of the service's SDK
// types. An empty body decodes as {}.
func (c Codec) Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("awsjson: unmarshal into %T: not a non-nil pointer", v)
	}
	if rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("awsjson: unmarshal into %T: not a pointer to struct", v)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return fmt.Errorf("awsjson: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("awsjson: data after the top-level value")
	}
	d := decoder{codec: c}
	return d.value(rv.Elem(), tree, "")
}

// field is one member of a struct type.
type field struct {
	index    int
	name     string // wire name
	known    bool   // the name comes from the model table, not the casing rule
	required bool   // the model requires the member: a zero number or boolean is still written
}

type structInfo struct {
	shape  string // model shape name, "" when the table does not know the type
	fields []field
	byName map[string]int // wire name -> position in fields
}

type infoKey struct {
	service Service
	t       reflect.Type
}

// structInfos caches *structInfo by infoKey.
var structInfos syncMap[infoKey, *structInfo]

// structOf returns the members of struct type t as the service's model names them.
func (c Codec) structOf(t reflect.Type) (*structInfo, error) {
	key := infoKey{c.Service, t}
	if si, ok := structInfos.Load(key); ok {
		return si, nil
	}
	pkg, ok := sdkPackages[c.Service]
	model := generatedModels[c.Service]
	if !ok || model == nil {
		return nil, fmt.Errorf("awsjson: unknown service %q", c.Service)
	}
	var shape string
	switch t.PkgPath() {
	case pkg:
		if op, ok := strings.CutSuffix(t.Name(), "Input"); ok {
			shape = model.operations[op].input
		} else if op, ok := strings.CutSuffix(t.Name(), "Output"); ok {
			shape = model.operations[op].output
		}
	case pkg + "/types":
		shape = t.Name()
	default:
		return nil, fmt.Errorf("awsjson: %s is not a type of the %s SDK (%s)", t, c.Service, pkg)
	}
	members := map[string]string{} // lower-case member name -> wire name
	wires, shapeKnown := model.structures[shape]
	for _, w := range wires {
		members[strings.ToLower(w)] = w
	}
	required := map[string]bool{} // wire name -> required
	for _, w := range model.required[shape] {
		required[w] = true
	}
	if !shapeKnown {
		shape = ""
	}
	beyond := shape
	if beyond == "" {
		beyond = t.Name()
	}
	for _, w := range requiredBeyondModel[c.Service][beyond] {
		required[w] = true
	}
	si := &structInfo{shape: shape, byName: map[string]int{}}
	isError := reflect.PointerTo(t).Implements(errorType)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Type == metadataType || (isError && f.Name == "ErrorCodeOverride") {
			continue
		}
		fl := field{index: i}
		if w, ok := members[strings.ToLower(f.Name)]; ok {
			fl.name, fl.known = w, true
		} else {
			fl.name = c.Service.casing(f.Name)
		}
		fl.required = required[fl.name]
		if _, dup := si.byName[fl.name]; dup {
			return nil, fmt.Errorf("awsjson: %s: two fields named %q on the wire", t, fl.name)
		}
		si.byName[fl.name] = len(si.fields)
		si.fields = append(si.fields, fl)
	}
	si, _ = structInfos.LoadOrStore(key, si)
	return si, nil
}

// casing is the service's naming rule for members the generated table does not know.
func (s Service) casing(goName string) string {
	if !lowerCamelServices[s] {
		return goName
	}
	r, n := utf8.DecodeRuneInString(goName)
	return string(unicode.ToLower(r)) + goName[n:]
}
