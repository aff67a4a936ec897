package patch

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/deepcopy"
)

// readOnlyMembers are the TaskDefinition members DescribeTaskDefinition
// returns and RegisterTaskDefinition does not take (aws-facts.md §1).
var readOnlyMembers = map[string]bool{
	"TaskDefinitionArn": true, "Revision": true, "Status": true, "RequiresAttributes": true,
	"Compatibilities": true, "RegisteredAt": true, "DeregisteredAt": true,
	"DeleteRequestedAt": true, "RegisteredBy": true,
}

// fill sets every exported member of v, recursively, to a non-zero value
// derived from its path: pointers allocated, one element per list and map.
func fill(v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.Type().Elem().Kind() == reflect.Struct && v.Type().Elem().PkgPath() == "time" {
			v.Set(reflect.ValueOf(aws.Time(aws.ToTime(nil).AddDate(2021, 0, 1))))
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Type().Field(i); f.IsExported() {
				fill(v.Field(i), path+"."+f.Name)
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), path+"[0]")
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, path+".key")
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, path+".value")
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.String:
		v.SetString("v" + path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(len(path)))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Interface:
		// document members: none in task definitions
	default:
		panic(fmt.Sprintf("fill: unhandled kind %s at %s", v.Kind(), path))
	}
}

func filled[T any]() T {
	var v T
	fill(reflect.ValueOf(&v).Elem(), reflect.TypeOf(v).Name())
	return v
}

// TestFieldFidelity: every member of RegisterTaskDefinitionInput but Tags
// has a TaskDefinition member of the same name and type, every other
// TaskDefinition member is a known read-only one, and registerInput carries
// each of them. A new SDK member fails here instead of being dropped.
func TestFieldFidelity(t *testing.T) {
	inT := reflect.TypeOf(ecs.RegisterTaskDefinitionInput{})
	tdT := reflect.TypeOf(types.TaskDefinition{})
	var missing []string
	for i := 0; i < inT.NumField(); i++ {
		f := inT.Field(i)
		if !f.IsExported() || f.Name == "Tags" {
			continue
		}
		if tf, ok := tdT.FieldByName(f.Name); !ok || tf.Type != f.Type {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("RegisterTaskDefinitionInput members with no TaskDefinition counterpart: %v", missing)
	}
	var unknown []string
	for i := 0; i < tdT.NumField(); i++ {
		f := tdT.Field(i)
		if _, ok := inT.FieldByName(f.Name); f.IsExported() && !ok && !readOnlyMembers[f.Name] {
			unknown = append(unknown, f.Name)
		}
	}
	if len(unknown) > 0 {
		t.Errorf("TaskDefinition members neither registrable nor known read-only (add them to one): %v", unknown)
	}

	td := filled[types.TaskDefinition]()
	in := registerInput(&td)
	src := reflect.ValueOf(td)
	dst := reflect.ValueOf(*in)
	for i := 0; i < inT.NumField(); i++ {
		f := inT.Field(i)
		if !f.IsExported() || f.Name == "Tags" {
			continue
		}
		if dst.Field(i).IsZero() {
			t.Errorf("registerInput lost %s", f.Name)
			continue
		}
		if !reflect.DeepEqual(dst.Field(i).Interface(), src.FieldByName(f.Name).Interface()) {
			t.Errorf("registerInput changed %s", f.Name)
		}
	}
	if in.Tags != nil {
		t.Errorf("registerInput set Tags: %v", in.Tags)
	}
}

// TestDeepCopy: the copy equals the original and shares nothing with it.
func TestDeepCopy(t *testing.T) {
	orig := filled[types.TaskDefinition]()
	cp := deepcopy.Of(orig)
	if !reflect.DeepEqual(cp, orig) {
		t.Fatal("copy differs from the original")
	}
	// Overwrite every leaf of the copy; the original must not change.
	fill(reflect.ValueOf(&cp).Elem().FieldByName("ContainerDefinitions").Index(0), "changed")
	cp.ContainerDefinitions[0].DockerLabels["vTaskDefinition.ContainerDefinitions[0].DockerLabels.key"] = "changed"
	cp.ContainerDefinitions[0].Environment[0].Name = aws.String("changed")
	*cp.Cpu = "changed"
	want := filled[types.TaskDefinition]()
	if !reflect.DeepEqual(orig, want) {
		t.Error("changing the copy changed the original")
	}
}

// TestInstrumentKeepsEveryMember instruments a task definition whose every
// member is set and checks that each container and task member comes out
// unchanged except those the patch owns, and that Source gives it back.
func TestInstrumentKeepsEveryMember(t *testing.T) {
	td := filled[types.TaskDefinition]()
	td.RuntimePlatform.OperatingSystemFamily = types.OSFamilyLinux
	td.RequiresCompatibilities = []types.Compatibility{types.CompatibilityFargate}
	td.Revision = 4
	c := &td.ContainerDefinitions[0]
	c.Name = aws.String("app")
	c.Essential = aws.Bool(true)
	c.ReadonlyRootFilesystem = aws.Bool(false)
	c.User = aws.String("root")
	c.DependsOn, c.VolumesFrom = nil, nil
	c.LinuxParameters.Capabilities.Add = nil
	c.LogConfiguration.LogDriver = types.LogDriverAwslogs
	// Roles that would make it something other than an application.
	c.FirelensConfiguration = nil
	td.ProxyConfiguration.ContainerName = aws.String("envoy")
	tags := []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}}
	orig := deepcopy.Of(td)

	res, err := Instrument(&td, tags, Profile{TokenSecretArn: "arn:aws:secretsmanager:us-east-1:1:secret:t"}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(td, orig) {
		t.Fatal("Instrument modified its input")
	}
	if len(res.Input.ContainerDefinitions) != 2 {
		t.Fatalf("got %d containers, want 2", len(res.Input.ContainerDefinitions))
	}
	got := reflect.ValueOf(res.Input.ContainerDefinitions[1])
	want := reflect.ValueOf(orig.ContainerDefinitions[0])
	owned := map[string]bool{"EntryPoint": true, "Command": true, "Secrets": true, "VolumesFrom": true, "DependsOn": true, "DockerLabels": true}
	for i := 0; i < got.NumField(); i++ {
		f := got.Type().Field(i)
		if !f.IsExported() || owned[f.Name] {
			continue
		}
		if !reflect.DeepEqual(got.Field(i).Interface(), want.Field(i).Interface()) {
			t.Errorf("container member %s changed", f.Name)
		}
	}
	back, err := Source(taskDefinitionOf(res.Input), res.Input.Tags, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantIn := registerInput(&orig)
	wantIn.Tags = tags
	if diff := cmp.Diff(normalize(t, wire(back)), normalize(t, wire(wantIn))); diff != "" {
		t.Errorf("Source(Instrument(td)) differs (-got +want):\n%s", diff)
	}
}

// TestRefusalCodes: every refusal in the golden files uses a listed code,
// and errors.As finds a *Refusal through wrapping.
func TestRefusalCodes(t *testing.T) {
	known := map[Code]bool{}
	for _, c := range RefusalCodes() {
		if known[c] {
			t.Errorf("duplicate code %s", c)
		}
		known[c] = true
	}
	_, err := Instrument(&types.TaskDefinition{RuntimePlatform: &types.RuntimePlatform{OperatingSystemFamily: types.OSFamilyWindowsServer2019Core}}, nil, Profile{}, nil, Options{})
	wrapped := fmt.Errorf("family web: %w", err)
	var ref *Refusal
	if !errors.As(wrapped, &ref) || !ref.Has(CodeWindows) {
		t.Fatalf("errors.As(%v) did not find a windows refusal", wrapped)
	}
	var seen []string
	for _, r := range ref.Reasons {
		if !known[r.Code] {
			seen = append(seen, string(r.Code))
		}
	}
	sort.Strings(seen)
	if len(seen) > 0 {
		t.Errorf("unlisted codes: %v", seen)
	}
}
