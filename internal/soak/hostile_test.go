package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecs-sidecar/reconciler/internal/awsjson"
	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// Hostile input: what a real account holds beside the demo's task
// definitions, and what someone with ECS write access can do to fool the
// reconciler.
const (
	// keyForged marks what the pipeline forged (a revision registered or
	// retagged with a twin's markers): the checks leave it out of their
	// view of the state. The reconciler does not know this tag.
	keyForged = "soak/forged"
	// poisonService is a service in a cluster outside the reconciler's
	// scope: resolving its events is denied (replica.serve), so they come
	// back until SQS moves them to the DLQ.
	poisonService = "soak-poison-svc"
	sidecarName   = "datacollector-sidecar"
)

// fragile families are the ones whose twins fail their rollouts (1 in 5
// of the demo-shaped families).
func fragile(family string) bool {
	return strings.HasPrefix(family, "soak-f") && (strings.HasSuffix(family, "7") || strings.HasSuffix(family, "3"))
}

// fragileRule is the simulator's RolloutRule: a twin of a fragile family
// fails to start.
func fragileRule(td *types.TaskDefinition) string {
	if !fragile(aws.ToString(td.Family)) {
		return ""
	}
	for _, c := range td.ContainerDefinitions {
		if aws.ToString(c.Name) == sidecarName {
			return "soak: the wrapped entrypoint of a fragile application exits at once"
		}
	}
	return ""
}

// unfit families are the ones the reconciler must never instrument.
func unfit(family string) bool { return strings.HasPrefix(family, "soak-unfit-") }

// hostileShapes are task definitions of the render corpus
// (cmd/reconciler/testdata/corpus, modelled on AWS's and vendors' public
// examples), registered opted in.
var hostileShapes = []struct {
	family, corpus, kind string
	service              bool
}{
	{"soak-unfit-cycle", "dependency-cycle", "unfit", true},
	{"soak-unfit-ec2", "ec2-bridge-wordpress-links", "unfit", false},
	{"soak-unfit-windows", "windows-fargate-iis", "unfit", false},
	{"soak-fl", "firelens-cloudwatch-awsvpc", "firelens", true},
	{"soak-mesh", "appmesh-colorteller-xray", "mesh", true},
}

// corpusInput is the RegisterTaskDefinition input of a corpus case, as
// family, its app container at build (the soak's images are not resolved:
// an app with neither entryPoint nor command states one).
func corpusInput(corpus, family string, build int, tags []types.Tag) (*ecs.RegisterTaskDefinitionInput, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, "cmd", "reconciler", "testdata", "corpus", corpus+".json"))
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", corpus, err)
	}
	for _, k := range []string{"taskDefinitionArn", "revision", "status", "compatibilities", "requiresAttributes", "registeredAt", "registeredBy", "deregisteredAt"} {
		delete(m, k)
	}
	m["family"] = json.RawMessage(strconv.Quote(family))
	if b, err = json.Marshal(m); err != nil {
		return nil, err
	}
	in := &ecs.RegisterTaskDefinitionInput{}
	if err := (awsjson.Codec{Service: awsjson.ECS}).Unmarshal(b, in); err != nil {
		return nil, fmt.Errorf("%s: %w", corpus, err)
	}
	for i := range in.ContainerDefinitions {
		c := &in.ContainerDefinitions[i]
		if aws.ToString(c.Name) != "app" {
			continue
		}
		c.Image = aws.String(fmt.Sprintf("registry.invalid/soak/%s:build-%d", family, build))
		if len(c.EntryPoint) == 0 && len(c.Command) == 0 {
			c.EntryPoint = []string{"/bin/app"}
		}
	}
	in.Tags = tags
	return in, nil
}

// addHostile registers the hostile shapes, opted in, with a service each
// where the shape can run on Fargate.
func (w *world) addHostile(ctx context.Context, cluster string) {
	e := w.sim.ECS()
	for i, h := range hostileShapes {
		in, err := corpusInput(h.corpus, h.family, 1, append(tag(keyInject, "true"), tag(keyProfile, profileSecret)...))
		if err != nil {
			w.t.Fatal(err)
		}
		out, err := e.RegisterTaskDefinition(ctx, in)
		if err != nil {
			w.t.Fatalf("registering %s (%s): %v", h.family, h.corpus, err)
		}
		f := &family{name: h.family, kind: h.kind, corpus: h.corpus, profile: profileSecret, optIn: true,
			revs: []string{aws.ToString(out.TaskDefinition.TaskDefinitionArn)}}
		w.fams = append(w.fams, f)
		if !h.service {
			continue
		}
		s := &service{cluster: cluster, name: fmt.Sprintf("soak-h%d", i), fam: f}
		if _, err := e.CreateService(ctx, fargateService(s.cluster, s.name, f.revs[0], types.DeploymentControllerTypeEcs)); err != nil {
			w.t.Fatal(err)
		}
		f.svcs = append(f.svcs, s)
		w.svcs = append(w.svcs, s)
	}
}

// genuineTwin picks, from the simulator's state, an ACTIVE twin that the
// reconciler registered (not a forgery), for its markers.
func (w *world) genuineTwin(rng *rand.Rand) (family string, source, spec string, ok bool) {
	st := w.sim.State()
	type twin struct{ family, source, spec string }
	var twins []twin
	for _, f := range st.Families {
		if unfit(f.Name) {
			continue
		}
		for _, r := range f.Revisions {
			if src, isTwin := r.Tags[keySource]; isTwin && r.Tags[keyForged] == "" && r.Status == "ACTIVE" {
				twins = append(twins, twin{f.Name, src, r.Tags[keySpec]})
			}
		}
	}
	if len(twins) == 0 {
		return "", "", "", false
	}
	t := twins[rng.IntN(len(twins))]
	return t.family, t.source, t.spec, true
}

func (w *world) markForged(arn string) {
	w.mu.Lock()
	w.forged[arn] = true
	w.mu.Unlock()
}

func (w *world) isForged(arn string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.forged[arn]
}

// poisonBody is a CloudTrail UpdateService event (the shape of
// shared/reference/events/cloudtrail-*.json) of the poison service.
func (w *world) poisonBody(id string) string {
	acct, region := awssim.DefaultAccount, awssim.DefaultRegion
	svcArn := fmt.Sprintf("arn:aws:ecs:%s:%s:service/soak-poison/%s", region, acct, poisonService)
	ev := map[string]any{
		"version": "0", "id": id, "detail-type": "AWS API Call via CloudTrail", "source": "aws.ecs",
		"account": acct, "time": time.Now().UTC().Format(time.RFC3339), "region": region, "resources": []string{},
		"detail": map[string]any{
			"eventVersion": "1.09", "eventTime": time.Now().UTC().Format(time.RFC3339), "eventSource": "ecs.amazonaws.com",
			"eventName": "UpdateService", "awsRegion": region, "eventID": id, "readOnly": false, "eventType": "AwsApiCall",
			"recipientAccountId": acct,
			"requestParameters":  map[string]any{"cluster": "soak-poison", "service": poisonService, "forceNewDeployment": true},
			"responseElements":   map[string]any{"service": map[string]any{"serviceArn": svcArn, "clusterArn": fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/soak-poison", region, acct)}},
		},
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

// The pipeline's hostile operations: one of every hostileEvery
// operations, of the hostileKinds kinds in turn.
const (
	hostileKinds = 6
	hostileEvery = 8
)

// hostileOp is the hostile operation k of the pipeline; it returns its
// kind, and did: false when there was nothing yet to do it to.
func (w *world) hostileOp(ctx context.Context, ecsc *ecs.Client, sqsc *sqs.Client, rng *rand.Rand, normal []*family, build *int, k int) (kind string, did bool, err error) {
	kind, err = w.hostileKind(ctx, ecsc, sqsc, rng, normal, build, k)
	return kind, !strings.Contains(kind, "("), err
}

func (w *world) hostileKind(ctx context.Context, ecsc *ecs.Client, sqsc *sqs.Client, rng *rand.Rand, normal []*family, build *int, k int) (string, error) {
	switch k {
	case 0: // a forged twin: the markers of a genuine twin on content without the sidecar
		fam, src, spec, ok := w.genuineTwin(rng)
		if !ok {
			return "forged twin (none to copy yet)", nil
		}
		*build++
		// Its command stated, like the pipeline's own revisions: without the
		// sidecar the markers make it no twin, and the reconciler treats it
		// as the source it is (and instruments it).
		td := registerInputOf(fam, *build)
		td.ContainerDefinitions[0].Image = aws.String(fmt.Sprintf("registry.invalid/soak/forged:%d", *build))
		td.Tags = append(append(tag(keySource, src), tag(keySpec, spec)...), tag(keyForged, "true")...)
		out, err := ecsc.RegisterTaskDefinition(ctx, td)
		if err != nil {
			return "forged twin", err
		}
		w.markForged(aws.ToString(out.TaskDefinition.TaskDefinitionArn))
		return "forged twin", nil
	case 1: // a revision retagged with a genuine twin's markers
		fam, src, spec, ok := w.genuineTwin(rng)
		if !ok {
			return "retagged twin (none to copy yet)", nil
		}
		*build++
		arn, err := registerRevision(ctx, ecsc, fam, *build, nil)
		if err != nil {
			return "retagged twin", err
		}
		w.markForged(arn) // before the tags: the reconciler may see it either way
		_, err = ecsc.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn),
			Tags: append(append(tag(keySource, src), tag(keySpec, spec)...), tag(keyForged, "true")...)})
		return "retagged twin", err
	case 2: // a new revision of a task definition the reconciler must leave alone
		var fs []*family
		for _, f := range w.fams {
			if f.kind == "unfit" {
				fs = append(fs, f)
			}
		}
		f := fs[rng.IntN(len(fs))]
		*build++
		return "unfit revision", w.registerShape(ctx, ecsc, f, *build)
	case 3: // a FireLens or App Mesh revision, deployed
		var fs []*family
		for _, f := range w.fams {
			if f.kind == "firelens" || f.kind == "mesh" {
				fs = append(fs, f)
			}
		}
		f := fs[rng.IntN(len(fs))]
		*build++
		if err := w.registerShape(ctx, ecsc, f, *build); err != nil {
			return f.kind + " revision", err
		}
		for _, s := range f.svcs {
			if _, err := ecsc.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(s.cluster), Service: aws.String(s.name), TaskDefinition: aws.String(f.revs[len(f.revs)-1])}); err != nil {
				return f.kind + " revision", err
			}
		}
		return f.kind + " revision", nil
	case 4: // a poison message: an event whose service the reconciler may not describe
		w.mu.Lock()
		id := fmt.Sprintf("soak-poison-%04d", len(w.poison)+1)
		w.mu.Unlock()
		if _, err := sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(w.queueURL), MessageBody: aws.String(w.poisonBody(id))}); err != nil {
			return "poison message", err
		}
		w.mu.Lock()
		w.poison = append(w.poison, id)
		w.mu.Unlock()
		return "poison message", nil
	default: // a source deployed, then deregistered while its twin rolls out
		var fs []*family
		for _, f := range normal {
			if f.optIn && len(f.svcs) > 0 {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			return "deregistered mid-rollout (no family)", nil
		}
		f := fs[rng.IntN(len(fs))]
		*build++
		arn, err := registerRevision(ctx, ecsc, f.name, *build, nil)
		if err != nil {
			return "deregistered mid-rollout", err
		}
		for _, s := range f.svcs {
			if !s.codeDeploy {
				_, _ = ecsc.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(s.cluster), Service: aws.String(s.name), TaskDefinition: aws.String(arn)})
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(200+rng.IntN(800)) * time.Millisecond):
		}
		_, err = ecsc.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(arn)})
		return "deregistered mid-rollout", err
	}
}

// registerShape registers a new revision of a hostile family, opted in
// like its first.
func (w *world) registerShape(ctx context.Context, e registrar, f *family, build int) error {
	in, err := corpusInput(f.corpus, f.name, build, append(tag(keyInject, "true"), tag(keyProfile, f.profile)...))
	if err != nil {
		return err
	}
	out, err := e.RegisterTaskDefinition(ctx, in)
	if err != nil {
		return err
	}
	f.revs = append(f.revs, aws.ToString(out.TaskDefinition.TaskDefinitionArn))
	return nil
}

// hostileInvariants replay the journal for what hostile input must never
// cause; v is the final state. A rolled-back twin must be marked failed
// when its source still runs on a service of an opted-in family at the
// end: otherwise the mark can be lost harmlessly (a kill during its
// TagResource, the family opted out, the source superseded), since
// nothing re-applies a twin of a source no service runs, and ECS's
// history guards a service that returns to it, which the re-applied check
// watches.
func hostileInvariants(entries []awssim.Entry, w *world, v *stateView) []*invariant {
	unfitIv := &invariant{name: "no twin of a dependency-cycle, EC2-only or Windows task definition"}
	roles := &invariant{name: "FireLens and App Mesh twins leave router, proxy and agents as they were"}
	forged := &invariant{name: "no reconciler write to a forged or retagged twin, no service moved to one"}
	rolled := &invariant{name: "a twin ECS rolled back is never re-applied to that service, nor to any after its failure mark"}
	// With replicas at once (no single writer before the organization
	// issue), one replica can apply what it read before another saw the
	// rollback and marked the twin: counted, at most replicas-1 a twin and
	// service; a replica re-applying after its own mark is a violation.
	races := &invariant{name: "re-applications of a rolled-back twin by a racing replica stay within replicas-1 a twin and service"}
	raced := map[string]int{}
	multi := w.p.replicas > 1
	marked := &invariant{name: "a twin ECS rolled back whose source still runs (opted in) is marked failed"}
	inputs := map[string]*ecs.RegisterTaskDefinitionInput{} // ARN -> what the pipeline or seed registered
	rolledBack := map[string]map[string]bool{}              // twin ARN -> services it was rolled back on
	failMark := map[string]map[string]bool{}                // twin ARN -> the replicas that wrote its failure mark
	twins := map[string]bool{}                              // ARNs the reconciler registered
	sourceOf := map[string]string{}                         // twin ARN -> its source's ARN
	for _, e := range entries {
		if d := e.Deployment; d != nil {
			if d.State == types.DeploymentRolloutStateFailed && twins[d.TaskDefinition] {
				if rolledBack[d.TaskDefinition] == nil {
					rolledBack[d.TaskDefinition] = map[string]bool{}
				}
				rolledBack[d.TaskDefinition][serviceKey("", d.ServiceArn)] = true
			}
			continue
		}
		c := e.Call
		if c == nil {
			continue
		}
		who := caller(c)
		switch in := c.Input.(type) {
		case *ecs.RegisterTaskDefinitionInput:
			fam := aws.ToString(in.Family)
			if who == "reconciler" {
				unfitIv.check(!unfit(fam), "#%d the reconciler registered a twin of %s", c.Seq, fam)
			}
			if c.Err != nil {
				continue
			}
			arn := aws.ToString(c.Output.(*ecs.RegisterTaskDefinitionOutput).TaskDefinition.TaskDefinitionArn)
			if who != "reconciler" {
				inputs[arn] = in
				continue
			}
			twins[arn] = true
			for _, t := range in.Tags {
				if aws.ToString(t.Key) == keySource {
					sourceOf[arn] = arn[:strings.LastIndexByte(arn, ':')+1] + aws.ToString(t.Value)
				}
			}
			if strings.HasPrefix(fam, "soak-fl") || strings.HasPrefix(fam, "soak-mesh") {
				checkRoles(roles, c.Seq, arn, in, inputs)
			}
		case *ecs.UpdateServiceInput:
			if who != "reconciler" || c.Err != nil || in.TaskDefinition == nil {
				continue
			}
			td := aws.ToString(c.Output.(*ecs.UpdateServiceOutput).Service.TaskDefinition)
			key := serviceKey(aws.ToString(in.Cluster), aws.ToString(in.Service))
			forged.check(!w.isForged(td), "#%d %s moved to the forged %s", c.Seq, key, short(td))
			rep := replicaOf(c)
			switch {
			case !multi:
				rolled.check(!rolledBack[td][key], "#%d %s moved again to %s, which ECS rolled back on it", c.Seq, key, short(td))
				rolled.check(len(failMark[td]) == 0, "#%d %s moved to %s after its failure mark", c.Seq, key, short(td))
			default:
				rolled.check(!failMark[td][rep], "#%d %s moved to %s by %s after its own failure mark", c.Seq, key, short(td), rep)
				if rolledBack[td][key] || len(failMark[td]) > 0 {
					raced[td+" "+key]++
					races.check(raced[td+" "+key] <= w.p.replicas-1, "#%d %s moved to %s again by %s: %d re-applications", c.Seq, key, short(td), rep, raced[td+" "+key])
				}
			}
		case *ecs.TagResourceInput:
			arn := aws.ToString(in.ResourceArn)
			if who == "reconciler" {
				forged.check(!w.isForged(arn), "#%d the reconciler tagged the forged %s", c.Seq, short(arn))
				if c.Err == nil && slices.ContainsFunc(in.Tags, func(t types.Tag) bool { return aws.ToString(t.Key) == keyFailed }) {
					if failMark[arn] == nil {
						failMark[arn] = map[string]bool{}
					}
					failMark[arn][replicaOf(c)] = true
				}
			}
		case *ecs.DeregisterTaskDefinitionInput:
			if who == "reconciler" {
				arn := aws.ToString(in.TaskDefinition)
				forged.check(!w.isForged(arn), "#%d the reconciler deregistered the forged %s", c.Seq, short(arn))
			}
		}
	}
	running := map[string]bool{}
	for _, s := range v.services {
		if s.Status == "ACTIVE" {
			running[s.TaskDefinition] = true
		}
	}
	for _, arn := range sortedKeys(rolledBack) {
		if fam, _ := parseRevisionArn(arn); !v.optedIn(fam) || !running[sourceOf[arn]] || v.revs[arn] != nil && !v.revs[arn].active {
			continue
		}
		marked.check(len(failMark[arn]) > 0, "%s rolled back on %s, never marked failed", short(arn), strings.Join(sortedKeys(rolledBack[arn]), " "))
	}
	return []*invariant{unfitIv, roles, forged, rolled, races, marked}
}

// replicaOf names the soak replica that made a call (its listener adds
// "soak-replica/N" to the user agent), or "" for one made elsewhere.
func replicaOf(c *awssim.Call) string {
	_, rest, ok := strings.Cut(c.UserAgent, "soak-replica/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, " ")
	return "replica " + id
}

// checkRoles compares a twin of a FireLens or App Mesh family with its
// source: every container but the app and the sidecar as it was; the
// FireLens app starts after its router; a sidecar logging through the
// router waits for it.
func checkRoles(iv *invariant, seq int64, arn string, twin *ecs.RegisterTaskDefinitionInput, sources map[string]*ecs.RegisterTaskDefinitionInput) {
	src := ""
	for _, t := range twin.Tags {
		if aws.ToString(t.Key) == keySource {
			src = aws.ToString(t.Value)
		}
	}
	fam, _ := parseRevisionArn(arn)
	srcArn := arn[:strings.LastIndexByte(arn, ':')+1] + src
	in := sources[srcArn]
	if in == nil {
		iv.check(false, "#%d twin %s: its source %s is not in the journal", seq, short(arn), src)
		return
	}
	byName := map[string]types.ContainerDefinition{}
	for _, c := range in.ContainerDefinitions {
		byName[aws.ToString(c.Name)] = c
	}
	router := ""
	for _, c := range in.ContainerDefinitions {
		if c.FirelensConfiguration != nil {
			router = aws.ToString(c.Name)
		}
	}
	for _, c := range twin.ContainerDefinitions {
		name := aws.ToString(c.Name)
		switch name {
		case sidecarName:
			if lc := c.LogConfiguration; lc != nil && lc.LogDriver == types.LogDriverAwsfirelens {
				iv.check(dependsOn(c, router, ""), "#%d %s: the sidecar logs through %s and does not wait for it", seq, short(arn), router)
			}
			continue
		case "app":
			if router != "" {
				iv.check(dependsOn(c, router, "START") || dependsOn(c, router, "HEALTHY"), "#%d %s: app does not start after the log router %s", seq, short(arn), router)
			}
			continue
		}
		s, ok := byName[name]
		if !ok {
			iv.check(false, "#%d %s: container %s is not in the source", seq, short(arn), name)
			continue
		}
		same := slices.Equal(s.EntryPoint, c.EntryPoint) && slices.Equal(s.Command, c.Command) &&
			slices.EqualFunc(s.DependsOn, c.DependsOn, func(a, b types.ContainerDependency) bool {
				return aws.ToString(a.ContainerName) == aws.ToString(b.ContainerName) && a.Condition == b.Condition
			}) && aws.ToString(s.User) == aws.ToString(c.User) && len(s.VolumesFrom) == len(c.VolumesFrom)
		iv.check(same, "#%d %s (%s): container %s changed (entryPoint %q -> %q, command %q -> %q, dependsOn %d -> %d)",
			seq, short(arn), fam, name, s.EntryPoint, c.EntryPoint, s.Command, c.Command, len(s.DependsOn), len(c.DependsOn))
	}
}

func dependsOn(c types.ContainerDefinition, name, condition string) bool {
	for _, d := range c.DependsOn {
		if aws.ToString(d.ContainerName) == name && (condition == "" || string(d.Condition) == condition) {
			return true
		}
	}
	return false
}
