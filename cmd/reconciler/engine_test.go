package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/awsjson"
	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/controller"
	"github.com/ecs-sidecar/reconciler/internal/patch"
)

// knownDifferences lists the corpus cases where the reconciler's run and
// render, given the same input, do not agree today, with the reason. Every
// one known today is the same difference: the spec hash. For a listed case
// the test requires the spec hashes to differ (it fails when they agree,
// so that the list cannot go stale) and everything else to agree: render's
// spec is replaced by the run's in render's output before the comparison,
// so that a new difference in a listed case is not hidden by the old one.
var knownDifferences = map[string]string{
	// None today. The spec used to differ for every input not in describe
	// shape (specFromRegistered); patch now hashes a source as ECS
	// describes it once registered (internal/patch/spec.go asRegistered).
}

// specFromRegistered: patch's spec hash (internal/patch/spec.go specHash)
// is a SHA-256 of encoding/json of the source's register input as given,
// where a nil list is null and an empty one [], and an unset essential is
// absent. ECS fills these in on registration (every container's
// portMappings, environment, mountPoints and volumesFrom described as [],
// essential true; the task's volumes and placementConstraints []), and
// awssim does as ECS does. run hashes the described revision, render the
// file: same twin content, different spec tag and sidecar spec label.
// Inputs that are describe output already (guide-example,
// describe-include-tags, console-export-nginx) agree.
const specFromRegistered = "the spec hashes the source's JSON form: ECS's registration defaults ([] lists, essential true) change it"

// TestRunDecidesAsRender is issue 15, "one engine": for every corpus case,
// the controller (run) against the embedded AWS, reached over HTTP on
// 127.0.0.1 with the real SDK client, makes the decision render makes for
// the same input, with the same profile and image configs: it refuses what
// render refuses, with the same codes, and registers what render prints.
func TestRunDecidesAsRender(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range corpus {
		seen[c.name] = true
	}
	for name := range knownDifferences {
		if !seen[name] {
			t.Errorf("knownDifferences lists %s, which is not a corpus case", name)
		}
	}
	for _, c := range corpus {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			reason, known := knownDifferences[c.name]
			for _, p := range runAndRender(t, c, known) {
				t.Error(p)
			}
			if known && !t.Failed() {
				t.Logf("known difference: %s", reason)
			}
		})
	}
}

// runAndRender runs case c both ways and returns every difference found
// (with specDiffers: every difference but that of the spec, which must be
// there). Setup failures (the test's own) are fatal.
func runAndRender(t *testing.T, c corpusCase, specDiffers bool) (problems []string) {
	t.Helper()
	ctx := context.Background()
	bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }

	// 1. The input, decoded as render decodes it.
	inputFile := filepath.Join(corpusDir, c.name+".json")
	data, err := os.ReadFile(inputFile)
	if err != nil {
		t.Fatal(err)
	}
	td, tags, err := parseRenderInput(data)
	if err != nil {
		t.Fatalf("render's parser refuses the case: %v", err)
	}
	prof, opts := corpusProfile(t, c.args)
	prefix := opts.TagPrefix
	if prefix == "" {
		prefix = patch.DefaultTagPrefix
	}
	images := corpusImages(t, c, td)

	// The embedded AWS over HTTP on loopback, through the SDK's own client.
	sim := awssim.New(awssim.Options{})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	client := ecs.New(ecs.Options{
		Region: awssim.DefaultRegion, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})

	// The source as revision 1 of its family, opted in by tag (added only
	// when the source does not carry the tag already).
	src := patch.RegisterInput(td, tags)
	injectKey := prefix + patch.KeyInject
	addedInject := false
	if v, ok := tagOf(src.Tags, injectKey); !ok {
		src.Tags = append(src.Tags, types.Tag{Key: aws.String(injectKey), Value: aws.String("true")})
		addedInject = true
	} else if v != "true" {
		t.Fatalf("the source carries %s=%s; this test opts families in", injectKey, v)
	}
	reg, err := client.RegisterTaskDefinition(ctx, src)
	if err != nil {
		// render accepts this input; ECS (as awssim models it) does not.
		bad("awssim refuses to register the source that render accepts: %v", err)
		t.Logf("not compared: %s cannot be registered in awssim", c.name)
		return problems
	}
	family := aws.ToString(reg.TaskDefinition.Family)
	srcArn := aws.ToString(reg.TaskDefinition.TaskDefinitionArn)
	if reg.TaskDefinition.Revision != 1 {
		t.Fatalf("source registered as revision %d, want 1", reg.TaskDefinition.Revision)
	}

	// A cluster and a service on the source: FARGATE with awsvpc when the
	// sim made the revision Fargate-compatible, else EC2.
	if _, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("corpus")}); err != nil {
		t.Fatal(err)
	}
	svc := &ecs.CreateServiceInput{
		Cluster: aws.String("corpus"), ServiceName: aws.String("svc"), TaskDefinition: aws.String(srcArn),
		DesiredCount: aws.Int32(1), LaunchType: types.LaunchTypeEc2,
	}
	if containsCompatibility(reg.TaskDefinition.Compatibilities, types.CompatibilityFargate) {
		svc.LaunchType = types.LaunchTypeFargate
	}
	if reg.TaskDefinition.NetworkMode == types.NetworkModeAwsvpc {
		svc.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}
	}
	if _, err := client.CreateService(ctx, svc); err != nil {
		t.Fatalf("create service (%s): %v", svc.LaunchType, err)
	}
	before := len(registrations(sim))

	// 2. The reconciler's controller with render's profile and images.
	obs := &decisionObserver{}
	var logs bytes.Buffer
	profName := prof.Name
	if profName == "" {
		profName = patch.ProfileTypeLacework
	}
	ctl, err := controller.New(controller.Options{
		ECS:            client,
		TagPrefix:      opts.TagPrefix,
		DefaultProfile: profName,
		Profile: func(name string) (patch.Profile, bool) {
			if name != profName {
				return patch.Profile{}, false
			}
			return prof.WithDefaults(), true
		},
		Images:   staticImages(images),
		Observer: obs,
		Logger:   slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if len(problems) > 0 {
			t.Logf("controller log:\n%s", logs.String())
		}
	}()
	if err := ctl.SweepServices(ctx); err != nil {
		t.Fatalf("service sweep: %v", err)
	}
	if err := lastError(ctl.Reconcile(ctx, family)); err != nil {
		bad("Reconcile(%s): %v", family, err)
	}

	// 3. render, the same case, with the source revision the run sees.
	args := append([]string{}, c.args...)
	for _, name := range slices.Sorted(maps.Keys(c.images)) {
		args = append(args, "--image-config", name+"="+filepath.Join(corpusDir, "images", c.images[name]))
	}
	args = append(args, "--source-revision", "1", inputFile)
	code, stdout, stderr := runRender(t, "", args...)

	// 4. and 5. Compare.
	twins := registrations(sim)[before:]
	service := serviceTaskDef(t, client)
	switch code {
	case exitFail:
		if specDiffers {
			bad("knownDifferences lists this case for its twin's spec, but render refuses it now: remove it from the list")
		}
		if len(twins) != 0 {
			bad("render refused (%s), but the controller registered %d revision(s): %v", strings.TrimSpace(stderr), len(twins), twins)
		}
		if listed := familyRevisions(t, client, family); len(listed) != 1 {
			bad("render refused, but the family has %d revisions: %v", len(listed), listed)
		}
		if service != srcArn {
			bad("render refused, but the service moved from %s to %s", srcArn, service)
		}
		want := refusedCodes(stderr)
		if len(want) == 0 {
			t.Fatalf("render exited 1 without a refused: line (a failure of the test's input?):\n%s", stderr)
		}
		if got := obs.codes(); !cmp.Equal(got, want) {
			bad("refusal codes differ: run reported %v, render %v (-run +render):\n%s", got, want, cmp.Diff(got, want))
		}
	case exitOK:
		if len(twins) != 1 {
			bad("render rendered, but the controller registered %d revision(s) (refusals reported: %v)", len(twins), obs.codes())
			return problems
		}
		if got := obs.codes(); len(got) != 0 {
			bad("render rendered, but the run reported refusals %v", got)
		}
		twinArn := twins[0]
		if service != twinArn {
			bad("the service runs %s, want the twin %s", service, twinArn)
		}
		problems = append(problems, compareTwin(t, client, twinArn, stdout, prefix, addedInject, injectKey, specDiffers)...)
	default:
		t.Fatalf("render exit %d:\n%s", code, stderr)
	}
	return problems
}

// compareTwin compares the twin the controller registered, described back
// with its tags, with what render printed.
func compareTwin(t *testing.T, client *ecs.Client, twinArn, rendered, prefix string, addedInject bool, injectKey string, specDiffers bool) (problems []string) {
	t.Helper()
	bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	codec := awsjson.Codec{Service: awsjson.ECS}
	var want ecs.RegisterTaskDefinitionInput
	if err := codec.Unmarshal([]byte(rendered), &want); err != nil {
		t.Fatalf("render's output does not decode as register input: %v", err)
	}
	desc, err := client.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(twinArn), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil {
		t.Fatal(err)
	}
	gs, _ := tagOf(desc.Tags, prefix+patch.KeySpec)
	ws, _ := tagOf(want.Tags, prefix+patch.KeySpec)
	switch {
	case gs == "" || ws == "":
		bad("spec tag missing: run %q, render %q", gs, ws)
	case specDiffers && gs == ws:
		bad("knownDifferences says the spec differs (%s), but run and render now agree on %s: remove the case from the list", specFromRegistered, gs)
	case specDiffers:
		// The known difference: compare everything else, with render's
		// spec (tag and sidecar label) replaced by the run's.
		want = ecs.RegisterTaskDefinitionInput{}
		if err := codec.Unmarshal([]byte(strings.ReplaceAll(rendered, `"`+ws+`"`, `"`+gs+`"`)), &want); err != nil {
			t.Fatal(err)
		}
	case gs != ws:
		bad("spec tag: run %q, render %q", gs, ws)
	}
	got := patch.RegisterInput(desc.TaskDefinition, nil) // tags are compared apart
	ecsDefaults(&want)

	gotJSON, wantJSON := comparable(t, codec, got), comparable(t, codec, &want)
	if d := cmp.Diff(gotJSON, wantJSON); d != "" {
		bad("the twin differs from render's output (-run +render):\n%s", d)
	}

	// Tags, as sets. The run's source carries the inject tag this test
	// added to opt it in; render's input does not, and its twin copies the
	// source's tags.
	wantTags := tagSet(want.Tags)
	if addedInject {
		wantTags[injectKey] = "true"
	}
	if d := cmp.Diff(tagSet(desc.Tags), wantTags); d != "" {
		bad("the twin's tags differ from render's (-run +render):\n%s", d)
	}
	return problems
}

// ecsDefaults fills in what ECS fills in on registration, so that render's
// output (what is sent) compares with what is described back: essential
// true on containers that do not say, networkMode bridge when none is given
// on Linux. Empty lists (ECS describes portMappings, environment,
// mountPoints, volumesFrom, volumes and placementConstraints as [] when
// none were sent) are equated with absent ones by comparable.
func ecsDefaults(in *ecs.RegisterTaskDefinitionInput) {
	for i := range in.ContainerDefinitions {
		if in.ContainerDefinitions[i].Essential == nil {
			in.ContainerDefinitions[i].Essential = aws.Bool(true)
		}
	}
	windows := in.RuntimePlatform != nil && strings.HasPrefix(string(in.RuntimePlatform.OperatingSystemFamily), "WINDOWS")
	if in.NetworkMode == "" && !windows {
		in.NetworkMode = types.NetworkModeBridge
	}
}

// comparable is v as AWS JSON, decoded generically, with nulls and empty
// arrays removed: every member compares, with the wire's member names in
// the diff.
func comparable(t *testing.T, codec awsjson.Codec, v *ecs.RegisterTaskDefinitionInput) any {
	t.Helper()
	cp := *v
	cp.Tags = nil
	b, err := codec.Marshal(&cp)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return pruneEmpty(doc)
}

func pruneEmpty(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			e = pruneEmpty(e)
			if a, ok := e.([]any); e == nil || (ok && len(a) == 0) {
				delete(x, k)
				continue
			}
			x[k] = e
		}
		return x
	case []any:
		for i := range x {
			x[i] = pruneEmpty(x[i])
		}
		return x
	}
	return v
}

// corpusProfile builds the profile and options render builds for args, by
// render's own profileAndOptions: the corpus uses these flags of render's.
func corpusProfile(t *testing.T, args []string) (patch.Profile, patch.Options) {
	t.Helper()
	var f renderFlags
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.define(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		t.Fatalf("a corpus case uses render arguments this test does not map to a profile (%v): %q", err, args)
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	e := env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	prof, opts, _, err := f.profileAndOptions(e, set)
	if err != nil {
		t.Fatalf("profile of %q: %v", args, err)
	}
	return prof, opts
}

// corpusImages reads the case's image config files as render does.
func corpusImages(t *testing.T, c corpusCase, td *types.TaskDefinition) map[string]patch.Image {
	t.Helper()
	var fl imageConfigFlag
	for _, name := range slices.Sorted(maps.Keys(c.images)) {
		_ = fl.Set(name + "=" + filepath.Join(corpusDir, "images", c.images[name]))
	}
	parsed, err := fl.parse()
	if err != nil {
		t.Fatal(err)
	}
	files, err := loadImageConfigs(parsed, td)
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]patch.Image{}
	for name, f := range files {
		images[name] = f.img
	}
	return images
}

// staticImages is the controller's ImageResolver answering from the case's
// image config files. A stub, and the one this test allows itself: the
// registry (internal/imageconfig) is not what is under test, the decision
// made from what an image declares is, and render reads the same files.
type staticImages map[string]patch.Image

func (s staticImages) Images(_ context.Context, td *types.TaskDefinition) (map[string]patch.Image, []error) {
	out := map[string]patch.Image{}
	var errs []error
	for _, c := range td.ContainerDefinitions {
		name := aws.ToString(c.Name)
		if img, ok := s[name]; ok {
			out[name] = img
		} else {
			errs = append(errs, fmt.Errorf("%s: no image config in the case", name))
		}
	}
	return out, errs
}

// decisionObserver records the refusals the controller reports.
type decisionObserver struct {
	controller.NopObserver
	mu      sync.Mutex
	refused []string
}

func (o *decisionObserver) Refused(r *patch.Refusal) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, reason := range r.Reasons {
		o.refused = append(o.refused, string(reason.Code))
	}
}

func (o *decisionObserver) codes() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.refused...)
}

// refusedCodes are the codes of render's "refused: CODE: CONTAINER: detail" lines.
func refusedCodes(stderr string) []string {
	var codes []string
	for _, line := range strings.Split(stderr, "\n") {
		if rest, ok := strings.CutPrefix(line, "refused: "); ok {
			code, _, _ := strings.Cut(rest, ":")
			codes = append(codes, code)
		}
	}
	return codes
}

// registrations lists the ARNs of the successful RegisterTaskDefinition
// calls in the sim's journal, in order.
func registrations(sim *awssim.Sim) []string {
	var arns []string
	for _, e := range sim.Journal() {
		if e.Call == nil || e.Call.Operation != "RegisterTaskDefinition" || e.Call.Err != nil {
			continue
		}
		if out, ok := e.Call.Output.(*ecs.RegisterTaskDefinitionOutput); ok && out.TaskDefinition != nil {
			arns = append(arns, aws.ToString(out.TaskDefinition.TaskDefinitionArn))
		} else {
			arns = append(arns, "?")
		}
	}
	return arns
}

func familyRevisions(t *testing.T, client *ecs.Client, family string) []string {
	t.Helper()
	out, err := client.ListTaskDefinitions(context.Background(), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family)})
	if err != nil {
		t.Fatal(err)
	}
	return out.TaskDefinitionArns
}

func serviceTaskDef(t *testing.T, client *ecs.Client) string {
	t.Helper()
	out, err := client.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String("corpus"), Services: []string{"svc"}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("describe service: %v", err)
	}
	return aws.ToString(out.Services[0].TaskDefinition)
}

func tagOf(tags []types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}

func tagSet(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func containsCompatibility(cs []types.Compatibility, c types.Compatibility) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// lastError is the error among a call's results (its last one), whatever
// else the call returns: Reconcile's results are changing under way
// (error, then Result and error), and this test only needs the error.
func lastError(results ...any) error {
	if len(results) == 0 {
		return nil
	}
	err, _ := results[len(results)-1].(error)
	return err
}

// syncWriter serializes the controller's log lines into one buffer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
