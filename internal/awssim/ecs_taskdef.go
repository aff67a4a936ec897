package awssim

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/deepcopy"
)

// family holds the revisions of one task definition family; revs[i] is
// revision i+1. Revisions are never removed (ECS keeps INACTIVE ones).
type family struct {
	name   string
	revs   []*revision
	active int // number of ACTIVE revisions
}

// revision is one task definition revision. td is immutable once stored:
// a change of status replaces it by a copy, so outputs handed out earlier
// stay consistent without copying on every read. tags change in place under
// the lock and are copied into outputs.
type revision struct {
	td   *types.TaskDefinition
	tags []types.Tag
}

func (s *Sim) taskDefARN(fam string, rev int) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s:%d", s.region, s.account, fam, rev)
}

// registeredBy is who registered: requests are not authenticated, so the
// account's root (what ECS shows for root credentials).
func (s *Sim) registeredBy() string { return "arn:aws:iam::" + s.account + ":root" }

func (s *Sim) registerTaskDefinition(in *ecs.RegisterTaskDefinitionInput) (*ecs.RegisterTaskDefinitionOutput, error) {
	if err := validateTaskDefinition(in); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags, 0); err != nil {
		return nil, err
	}
	name := aws.ToString(in.Family)
	f := s.families[name]
	if f == nil {
		f = &family{name: name}
		s.families[name] = f
		s.familyNames = insertSorted(s.familyNames, name)
	}
	rev := len(f.revs) + 1
	if rev > maxRevisionsPerFamily {
		// ECS quota "Revisions per task definition family" (not adjustable).
		return nil, errf(codeClient, "Too many revisions for task definition family %s.", name) // UNVERIFIED wording
	}
	td := buildTaskDefinition(in)
	td.TaskDefinitionArn = aws.String(s.taskDefARN(name, rev))
	td.Revision = int32(rev)
	td.Status = types.TaskDefinitionStatusActive
	td.RegisteredAt = aws.Time(s.clock.Now())
	td.RegisteredBy = aws.String(s.registeredBy())
	f.revs = append(f.revs, &revision{td: td, tags: cloneTags(in.Tags)})
	f.active++
	return &ecs.RegisterTaskDefinitionOutput{TaskDefinition: td, Tags: cloneTags(in.Tags)}, nil
}

const maxRevisionsPerFamily = 1_000_000

// buildTaskDefinition copies every member of the input that TaskDefinition
// also has (by reflection, so members the SDK adds later come along), then
// fills what ECS fills: container defaults, networkMode, compatibilities and
// requiresAttributes.
func buildTaskDefinition(in *ecs.RegisterTaskDefinitionInput) *types.TaskDefinition {
	in = deepcopy.Of(in)
	td := &types.TaskDefinition{}
	src := reflect.ValueOf(in).Elem()
	dst := reflect.ValueOf(td).Elem()
	for i := 0; i < src.NumField(); i++ {
		f := src.Type().Field(i)
		if !f.IsExported() || f.Name == "Tags" {
			continue
		}
		d := dst.FieldByName(f.Name)
		if d.IsValid() && d.Type() == f.Type {
			d.Set(src.Field(i))
		}
	}
	// Defaults ECS (and moto) show on every container.
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		if c.Essential == nil {
			c.Essential = aws.Bool(true)
		}
		if c.PortMappings == nil {
			c.PortMappings = []types.PortMapping{}
		}
		if c.Environment == nil {
			c.Environment = []types.KeyValuePair{}
		}
		if c.MountPoints == nil {
			c.MountPoints = []types.MountPoint{}
		}
		if c.VolumesFrom == nil {
			c.VolumesFrom = []types.VolumeFrom{}
		}
	}
	if td.Volumes == nil {
		td.Volumes = []types.Volume{}
	}
	if td.PlacementConstraints == nil {
		td.PlacementConstraints = []types.TaskDefinitionPlacementConstraint{}
	}
	if td.NetworkMode == "" && !isWindows(td.RuntimePlatform) {
		td.NetworkMode = types.NetworkModeBridge
	}
	td.Compatibilities = []types.Compatibility{types.CompatibilityEc2}
	for _, c := range in.RequiresCompatibilities {
		if c != types.CompatibilityEc2 && !containsCompat(td.Compatibilities, c) {
			td.Compatibilities = append(td.Compatibilities, c)
		}
	}
	td.RequiresAttributes = requiredAttributes(td)
	return td
}

func containsCompat(cs []types.Compatibility, c types.Compatibility) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func isFargate(cs []types.Compatibility) bool { return containsCompat(cs, types.CompatibilityFargate) }

func isWindows(p *types.RuntimePlatform) bool {
	return p != nil && strings.HasPrefix(string(p.OperatingSystemFamily), "WINDOWS")
}

// requiredAttributes derives the container-agent capabilities a task
// definition needs, as ECS lists them in requiresAttributes (names from
// ECS's documented attribute list), sorted by name.
func requiredAttributes(td *types.TaskDefinition) []types.Attribute {
	set := map[string]bool{}
	if td.TaskRoleArn != nil {
		set["com.amazonaws.ecs.capability.task-iam-role"] = true
	}
	if td.NetworkMode == types.NetworkModeAwsvpc {
		set["ecs.capability.task-eni"] = true
		set["com.amazonaws.ecs.capability.docker-remote-api.1.18"] = true
	}
	for _, c := range td.ContainerDefinitions {
		if c.LogConfiguration != nil && c.LogConfiguration.LogDriver == types.LogDriverAwslogs {
			set["com.amazonaws.ecs.capability.logging-driver.awslogs"] = true
			set["com.amazonaws.ecs.capability.docker-remote-api.1.19"] = true
			if td.ExecutionRoleArn != nil {
				set["ecs.capability.execution-role-awslogs"] = true
			}
		}
		for _, sec := range c.Secrets {
			if strings.Contains(aws.ToString(sec.ValueFrom), ":secretsmanager:") {
				set["ecs.capability.secrets.asm.environment-variables"] = true
			} else {
				set["ecs.capability.secrets.ssm.environment-variables"] = true
			}
		}
		if len(c.DependsOn) > 0 {
			set["ecs.capability.container-ordering"] = true
		}
		if c.RepositoryCredentials != nil {
			set["com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager"] = true
		}
		if c.Image != nil && strings.Contains(*c.Image, ".dkr.ecr.") && td.ExecutionRoleArn != nil {
			set["ecs.capability.execution-role-ecr-pull"] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]types.Attribute, len(names))
	for i, n := range names {
		out[i] = types.Attribute{Name: aws.String(n)}
	}
	return out
}

// lookupTaskDef resolves a task definition reference: "family" (latest
// ACTIVE revision), "family:revision" or a full ARN.
func (s *Sim) lookupTaskDef(ref string) (*family, *revision, *Error) {
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		i := strings.Index(ref, ":task-definition/")
		if i < 0 {
			return nil, nil, errTaskDefNotFound()
		}
		name = ref[i+len(":task-definition/"):]
	}
	fam, revStr, hasRev := strings.Cut(name, ":")
	f := s.families[fam]
	if f == nil {
		return nil, nil, errTaskDefNotFound()
	}
	if !hasRev {
		for i := len(f.revs) - 1; i >= 0; i-- {
			if f.revs[i].td.Status == types.TaskDefinitionStatusActive {
				return f, f.revs[i], nil
			}
		}
		return nil, nil, errTaskDefNotFound()
	}
	n, err := strconv.Atoi(revStr)
	if err != nil || n < 1 || n > len(f.revs) {
		return nil, nil, errTaskDefNotFound()
	}
	return f, f.revs[n-1], nil
}

func (s *Sim) describeTaskDefinition(in *ecs.DescribeTaskDefinitionInput) (*ecs.DescribeTaskDefinitionOutput, error) {
	if aws.ToString(in.TaskDefinition) == "" {
		return nil, errf(codeClient, "TaskDefinition cannot be empty.") // UNVERIFIED wording
	}
	_, r, err := s.lookupTaskDef(*in.TaskDefinition)
	if err != nil {
		return nil, err
	}
	out := &ecs.DescribeTaskDefinitionOutput{TaskDefinition: r.td}
	for _, inc := range in.Include {
		if inc == types.TaskDefinitionFieldTags {
			out.Tags = cloneTags(r.tags)
			if out.Tags == nil {
				out.Tags = []types.Tag{}
			}
		}
	}
	return out, nil
}

func (s *Sim) deregisterTaskDefinition(in *ecs.DeregisterTaskDefinitionInput) (*ecs.DeregisterTaskDefinitionOutput, error) {
	ref := aws.ToString(in.TaskDefinition)
	name := ref
	if i := strings.Index(ref, ":task-definition/"); strings.HasPrefix(ref, "arn:") && i >= 0 {
		name = ref[i+len(":task-definition/"):]
	}
	if !strings.Contains(name, ":") {
		// moto: ClientException "Revision is missing."; ECS requires a revision here.
		return nil, errf(codeClient, "Revision is missing.")
	}
	f, r, err := s.lookupTaskDef(ref)
	if err != nil {
		return nil, err
	}
	if r.td.Status == types.TaskDefinitionStatusActive {
		td := *r.td // copy-on-write: outputs already handed out keep ACTIVE
		td.Status = types.TaskDefinitionStatusInactive
		td.DeregisteredAt = aws.Time(s.clock.Now())
		r.td = &td
		f.active--
	}
	return &ecs.DeregisterTaskDefinitionOutput{TaskDefinition: r.td}, nil
}

// decodeToken reads a pagination token made by encodeToken.
func decodeToken(tok *string, kind string) (string, *Error) {
	if tok == nil || *tok == "" {
		return "", nil
	}
	k, v, ok := strings.Cut(*tok, ":")
	if !ok || k != kind {
		return "", errf(codeInvalidParameter, "Invalid token %s", *tok) // UNVERIFIED wording
	}
	b, err := tokenEncoding.DecodeString(v)
	if err != nil {
		return "", errf(codeInvalidParameter, "Invalid token %s", *tok)
	}
	return string(b), nil
}

func encodeToken(kind, after string) *string {
	return aws.String(kind + ":" + tokenEncoding.EncodeToString([]byte(after)))
}

// pageSize validates maxResults (1..100, ECS's range) and applies the default.
func pageSize(max *int32, def int) (int, *Error) {
	if max == nil {
		return def, nil
	}
	if *max < 1 || *max > 100 {
		// ECS: InvalidParameterException for maxResults out of range.
		return 0, errf(codeInvalidParameter, "maxResults must be between 1 and 100.") // UNVERIFIED wording
	}
	return int(*max), nil
}

func (s *Sim) listTaskDefinitionFamilies(in *ecs.ListTaskDefinitionFamiliesInput) (*ecs.ListTaskDefinitionFamiliesOutput, error) {
	n, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken(in.NextToken, "fam")
	if err != nil {
		return nil, err
	}
	prefix := aws.ToString(in.FamilyPrefix)
	i := 0
	if prefix != "" {
		i, _ = searchStrings(s.familyNames, prefix)
	}
	if after != "" {
		j, found := searchStrings(s.familyNames, after)
		if found {
			j++
		}
		i = max(i, j)
	}
	out := &ecs.ListTaskDefinitionFamiliesOutput{Families: []string{}}
	for ; i < len(s.familyNames); i++ {
		name := s.familyNames[i]
		if !strings.HasPrefix(name, prefix) {
			break
		}
		f := s.families[name]
		switch in.Status {
		case types.TaskDefinitionFamilyStatusActive:
			if f.active == 0 {
				continue
			}
		case types.TaskDefinitionFamilyStatusInactive:
			if f.active > 0 {
				continue
			}
		}
		if len(out.Families) == n {
			out.NextToken = encodeToken("fam", out.Families[n-1])
			break
		}
		out.Families = append(out.Families, name)
	}
	return out, nil
}

func (s *Sim) listTaskDefinitions(in *ecs.ListTaskDefinitionsInput) (*ecs.ListTaskDefinitionsOutput, error) {
	n, err := pageSize(in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken(in.NextToken, "td")
	if err != nil {
		return nil, err
	}
	status := in.Status
	if status == "" {
		status = types.TaskDefinitionStatusActive
	}
	desc := in.Sort == types.SortOrderDesc
	// A position is (family index, revision); the token holds the last
	// "family:revision" returned.
	names := s.familyNames
	if p := aws.ToString(in.FamilyPrefix); p != "" {
		// familyPrefix is the full family name (ECS's documentation).
		if s.families[p] == nil {
			return &ecs.ListTaskDefinitionsOutput{TaskDefinitionArns: []string{}}, nil
		}
		names = []string{p}
	}
	afterFam, afterRev := "", 0
	if after != "" {
		fam, rev, _ := strings.Cut(after, ":")
		afterFam = fam
		afterRev, _ = strconv.Atoi(rev)
	}
	out := &ecs.ListTaskDefinitionsOutput{TaskDefinitionArns: []string{}}
	emit := func(r *revision) bool {
		if r.td.Status != status {
			return true
		}
		if len(out.TaskDefinitionArns) == n {
			last := out.TaskDefinitionArns[n-1]
			out.NextToken = encodeToken("td", last[strings.LastIndex(last, "/")+1:])
			return false
		}
		out.TaskDefinitionArns = append(out.TaskDefinitionArns, *r.td.TaskDefinitionArn)
		return true
	}
	if !desc {
		i := 0
		if afterFam != "" {
			i, _ = searchStrings(names, afterFam)
		}
		for ; i < len(names); i++ {
			f := s.families[names[i]]
			start := 0
			if names[i] == afterFam {
				start = afterRev
			}
			for r := start; r < len(f.revs); r++ {
				if !emit(f.revs[r]) {
					return out, nil
				}
			}
		}
		return out, nil
	}
	i := len(names) - 1
	if afterFam != "" {
		j, found := searchStrings(names, afterFam)
		if !found {
			j--
		}
		i = j
	}
	for ; i >= 0; i-- {
		f := s.families[names[i]]
		start := len(f.revs) - 1
		if names[i] == afterFam {
			start = afterRev - 2
		}
		for r := start; r >= 0; r-- {
			if !emit(f.revs[r]) {
				return out, nil
			}
		}
	}
	return out, nil
}

func cloneTags(tags []types.Tag) []types.Tag {
	if tags == nil {
		return nil
	}
	out := make([]types.Tag, len(tags))
	for i, t := range tags {
		out[i] = types.Tag{Key: aws.String(aws.ToString(t.Key)), Value: aws.String(aws.ToString(t.Value))}
	}
	return out
}

// mergeTags sets each new tag on existing (a key already there keeps its
// place and takes the new value; new keys go at the end).
func mergeTags(existing, add []types.Tag) []types.Tag {
	for _, t := range add {
		replaced := false
		for i := range existing {
			if aws.ToString(existing[i].Key) == aws.ToString(t.Key) {
				existing[i].Value = aws.String(aws.ToString(t.Value))
				replaced = true
				break
			}
		}
		if !replaced {
			existing = append(existing, types.Tag{Key: aws.String(aws.ToString(t.Key)), Value: aws.String(aws.ToString(t.Value))})
		}
	}
	return existing
}

// tokenEncoding encodes pagination tokens.
var tokenEncoding = base64.RawURLEncoding
