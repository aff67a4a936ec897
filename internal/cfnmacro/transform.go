// Package cfnmacro instruments the AWS::ECS::TaskDefinition resources of a
// CloudFormation template with the reconciler's patch engine
// (internal/patch), at deploy time: the CloudFormation macro (cmd/cfnmacro)
// and `reconciler render --cloudformation` run it. A resource is
// instrumented when its Tags opt it in as the reconciler decides for a
// family (internal/policy: the inject tag, the profile tag, the config's
// policies). Intrinsic functions are kept and never evaluated: while the
// engine works, each stands in as a placeholder, put back afterwards.
// The result carries the deploy-time tag, so that the continuous
// reconciler classifies the registered revision as covered and leaves it
// alone.
package cfnmacro

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/patch"
	"github.com/ecs-sidecar/reconciler/internal/policy"
)

// ResourceType is the resource type the macro instruments.
const ResourceType = "AWS::ECS::TaskDefinition"

// DefaultMacroName is the name the snippet deploys the macro under
// (deploy/cloudformation/macro.yaml), as templates declare it: Transform: EcsSidecar.
const DefaultMacroName = "EcsSidecar"

// DeployTimeTool is the value of the deploy-time tag the macro writes.
const DeployTimeTool = "cloudformation"

// Options shape a Transform.
type Options struct {
	// Config gives the profiles, policies, tag prefix and mode; nil is the
	// configuration of an empty file (the built-in lacework profile).
	Config *config.Config
	// Adjust, when set, changes each profile before it is used (render's
	// profile flags).
	Adjust func(patch.Profile) patch.Profile
	// MacroName is removed from the output's Transform (default EcsSidecar).
	MacroName string
}

// Outcome is what happened to one resource.
type Outcome string

// Outcomes.
const (
	Instrumented Outcome = "instrumented"
	NotOptedIn   Outcome = "not_opted_in" // left unchanged: the policy says no
	Covered      Outcome = "covered"      // left unchanged: already instrumented
	Audit        Outcome = "audit"        // left unchanged: mode audit or remove
	Refused      Outcome = "refused"      // left unchanged: the engine refused
)

// CodeIntrinsic is the refusal of a resource whose intrinsic function
// stands where the engine needs a literal (a list, a structure, a boolean).
const CodeIntrinsic patch.Code = "intrinsic_value"

// CodeInvalidProperties is the refusal of properties the macro cannot read.
const CodeInvalidProperties patch.Code = "invalid_properties"

// ResourceReport says what Transform did with one resource.
type ResourceReport struct {
	LogicalID    string         `json:"logicalId"`
	Family       string         `json:"family"`
	Outcome      Outcome        `json:"outcome"`
	Decision     policy.Reason  `json:"decision"`
	Profile      string         `json:"profile,omitempty"`
	Instrumented []string       `json:"instrumented,omitempty"`
	Skipped      []patch.Reason `json:"skipped,omitempty"`
	Warnings     []patch.Reason `json:"warnings,omitempty"`
	Reasons      []patch.Reason `json:"reasons,omitempty"` // refusal, or why covered
}

// Report lists the task definition resources in logical ID order.
type Report struct {
	Resources []ResourceReport `json:"resources"`
}

// RefusedError is returned when a resource that opted in was refused: the
// template then holds it unchanged.
type RefusedError struct {
	Resources []ResourceReport
}

func (e *RefusedError) Error() string {
	var parts []string
	for _, r := range e.Resources {
		for _, x := range r.Reasons {
			parts = append(parts, r.LogicalID+": "+x.String())
		}
	}
	return "refused: " + strings.Join(parts, "; ")
}

// Transform returns a copy of template (the JSON form CloudFormation sends
// a macro as its fragment) with every opted-in AWS::ECS::TaskDefinition
// instrumented, and the macro's name removed from its Transform. params
// are the template's parameter values (templateParameterValues), used only
// to read a Ref to a parameter in the inject and profile tags. The error
// is a *RefusedError when an opted-in resource was refused (the template is
// returned too), another error for a template that is not one.
func Transform(template map[string]any, params map[string]any, o Options) (map[string]any, Report, error) {
	var rep Report
	if template == nil {
		return nil, rep, errors.New("no template")
	}
	cfg := o.Config
	if cfg == nil {
		cfg = config.Default()
	}
	if o.MacroName == "" {
		o.MacroName = DefaultMacroName
	}
	out := deepCopy(template).(map[string]any)
	dropTransform(out, o.MacroName)
	res, ok := out["Resources"].(map[string]any)
	if !ok {
		return nil, rep, errors.New("the template has no Resources object")
	}
	ph := newPlaceholders(template)
	var refused []ResourceReport
	for _, id := range sortedKeys(res) {
		r, ok := res[id].(map[string]any)
		if !ok || r["Type"] != ResourceType {
			continue
		}
		props, ok := r["Properties"].(map[string]any)
		if !ok {
			continue
		}
		rr, newProps := transformOne(id, props, params, cfg, o, ph)
		for i, n := range rr.Instrumented {
			rr.Instrumented[i] = ph.text(n)
		}
		rr.Skipped, rr.Warnings, rr.Reasons = ph.reasons(rr.Skipped), ph.reasons(rr.Warnings), ph.reasons(rr.Reasons)
		if newProps != nil {
			r["Properties"] = newProps
		}
		rep.Resources = append(rep.Resources, rr)
		if rr.Outcome == Refused {
			refused = append(refused, rr)
		}
	}
	if len(refused) > 0 {
		return out, rep, &RefusedError{Resources: refused}
	}
	return out, rep, nil
}

// transformOne instruments one resource's properties; nil properties mean
// unchanged.
func transformOne(id string, props, params map[string]any, cfg *config.Config, o Options, ph *placeholders) (ResourceReport, map[string]any) {
	rr := ResourceReport{LogicalID: id, Family: id}
	if f, ok := props["Family"].(string); ok && f != "" {
		rr.Family = f
	}
	refuse := func(code patch.Code, detail string) (ResourceReport, map[string]any) {
		rr.Outcome = Refused
		rr.Reasons = []patch.Reason{{Code: code, Detail: detail}}
		return rr, nil
	}

	// The opt-in, as the reconciler decides it for a family whose newest
	// revision carries these tags.
	d := policy.Decide(policy.Input{
		Family:      rr.Family,
		Revisions:   []policy.Revision{{Number: 1, Tags: literalTags(props["Tags"], params)}},
		Rules:       cfg.Policies,
		TagPrefix:   cfg.TagPrefix,
		TagProfiles: cfg.TagProfilePolicy(),
	})
	rr.Decision = d.Reason
	if !d.Instrument {
		rr.Outcome = NotOptedIn
		return rr, nil
	}
	rr.Profile = d.Profile
	if rr.Profile == "" {
		rr.Profile = cfg.DefaultProfile
	}
	mode := cfg.Mode
	if d.Mode != "" {
		mode = d.Mode
	}
	if mode != policy.ModeEnforce {
		rr.Outcome = Audit
		return rr, nil
	}
	prof, ok := cfg.Profile(rr.Profile)
	if !ok {
		return refuse(patch.CodeInvalidProfile, "profile "+rr.Profile+" is not in the configuration")
	}
	if o.Adjust != nil {
		prof = o.Adjust(prof)
	}

	var in ecs.RegisterTaskDefinitionInput
	dec := decoder{ph: ph}
	if err := dec.value(reflect.ValueOf(&in).Elem(), props, "Properties"); err != nil {
		var u *unreadable
		if errors.As(err, &u) {
			return refuse(CodeIntrinsic, u.Error())
		}
		return refuse(CodeInvalidProperties, err.Error())
	}
	prefix := cfg.TagPrefix
	if prefix == "" {
		prefix = patch.DefaultTagPrefix
	}
	deployKey := prefix + patch.KeyDeployTime
	var tags []types.Tag
	for _, t := range in.Tags {
		if aws.ToString(t.Key) != deployKey {
			tags = append(tags, t)
		}
	}
	td := taskDefinition(&in)
	_, hasFamily := props["Family"]
	if !hasFamily {
		// CloudFormation names the family (stack name, logical ID, a
		// suffix); the engine needs one, the output gets none.
		td.Family = aws.String(id)
	}
	// Already instrumented (rendered before, or a macro given twice): the
	// engine refuses it as covered, and it is left alone.
	res, err := patch.Instrument(td, tags, prof, nil, patch.Options{TagPrefix: prefix})
	var ref *patch.Refusal
	if errors.As(err, &ref) {
		rr.Reasons = ref.Reasons
		if ref.Has(patch.CodeAlreadyCovered) || ref.Has(patch.CodeAlreadyTwin) {
			rr.Outcome = Covered
		} else {
			rr.Outcome = Refused
		}
		return rr, nil
	}
	if err != nil {
		return refuse(CodeInvalidProperties, err.Error())
	}
	res.Input.Tags = append(res.Input.Tags, types.Tag{Key: aws.String(deployKey), Value: aws.String(DeployTimeTool)})
	if n := len(res.Input.Tags); n > patch.MaxTags {
		return refuse(patch.CodeTooManyTags, fmt.Sprintf("%d tags with the markers and the deploy-time tag (limit %d)", n, patch.MaxTags))
	}
	rr.Outcome = Instrumented
	rr.Instrumented, rr.Skipped = res.Instrumented, res.Skipped
	for _, w := range res.Warnings {
		if w.Code != patch.WarnNoSourceRevision { // by design: CloudFormation registers it
			rr.Warnings = append(rr.Warnings, w)
		}
	}

	read, _ := encode(reflect.ValueOf(patch.RegisterInput(td, in.Tags)))
	twin, _ := encode(reflect.ValueOf(res.Input))
	merged := merge(props, read, twin).(map[string]any)
	if !hasFamily {
		delete(merged, "Family")
	}
	return rr, ph.restore(merged).(map[string]any)
}

// taskDefinition is the task definition that in registers.
func taskDefinition(in *ecs.RegisterTaskDefinitionInput) *types.TaskDefinition {
	td := &types.TaskDefinition{}
	src, dst := reflect.ValueOf(in).Elem(), reflect.ValueOf(td).Elem()
	for i := 0; i < src.NumField(); i++ {
		f := src.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if d := dst.FieldByName(f.Name); d.IsValid() && d.Type() == f.Type {
			d.Set(src.Field(i))
		}
	}
	return td
}

// literalTags reads the resource's Tags for the opt-in: literal values, and
// a Ref to a template parameter by the parameter's value; other intrinsic
// functions are not evaluated, and their tags are left out.
func literalTags(v any, params map[string]any) map[string]string {
	out := map[string]string{}
	list, _ := v.([]any)
	for _, x := range list {
		t, _ := x.(map[string]any)
		k, ok := t["Key"].(string)
		if !ok {
			continue
		}
		val := t["Value"]
		if m, ok := val.(map[string]any); ok && len(m) == 1 {
			if name, ok := m["Ref"].(string); ok {
				val = params[name]
			}
		}
		if s, err := scalarString(val, ""); err == nil {
			out[k] = s
		}
	}
	return out
}

// dropTransform removes name from the template's Transform, and the
// Transform when nothing else is left.
func dropTransform(t map[string]any, name string) {
	switch x := t["Transform"].(type) {
	case string:
		if x == name {
			delete(t, "Transform")
		}
	case []any:
		var keep []any
		for _, e := range x {
			if e != name {
				keep = append(keep, e)
			}
		}
		switch len(keep) {
		case 0:
			delete(t, "Transform")
		case len(x):
		default:
			t["Transform"] = keep
		}
	}
}
