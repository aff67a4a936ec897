package awssim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-cmp/cmp"
)

func TestSecretsManagerAndECROverSDK(t *testing.T) {
	e := newEnv(t, Options{ECRPassword: "pw"})
	ctx := ctxT(t)
	c := must[*secretsmanager.CreateSecretOutput](t)(e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("ecs-sidecar/token"), SecretString: aws.String("s3cret"), Description: aws.String("token"),
	}))
	arn := aws.ToString(c.ARN)
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecs-sidecar/token-") || len(arn) != len("arn:aws:secretsmanager:us-east-1:123456789012:secret:ecs-sidecar/token-")+6 {
		t.Errorf("secret ARN: got %s", arn)
	}
	_, err := e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("ecs-sidecar/token"), SecretString: aws.String("x")})
	wantAPIErr(t, err, "ResourceExistsException", "The operation failed because the secret ecs-sidecar/token already exists.")
	for _, id := range []string{"ecs-sidecar/token", arn, arn[:len(arn)-7]} {
		d := must[*secretsmanager.DescribeSecretOutput](t)(e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)}))
		if aws.ToString(d.ARN) != arn || aws.ToString(d.Description) != "token" || len(d.VersionIdsToStages) != 1 {
			t.Errorf("DescribeSecret(%s): got %+v", id, d)
		}
		v := must[*secretsmanager.GetSecretValueOutput](t)(e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)}))
		if got := aws.ToString(v.SecretString); got != "s3cret" {
			t.Errorf("GetSecretValue(%s): got %q", id, got)
		}
	}
	_, err = e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("nope")})
	wantAPIErr(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	_, err = e.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("ecs-sidecar/token"), VersionStage: aws.String("AWSPREVIOUS")})
	wantAPIErr(t, err, "ResourceNotFoundException", "staging label: AWSPREVIOUS")

	tok := must[*ecr.GetAuthorizationTokenOutput](t)(e.ecr.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{}))
	ad := tok.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(ad.AuthorizationToken))
	if err != nil || string(raw) != "AWS:pw" {
		t.Errorf("token: got %q, %v", raw, err)
	}
	if got := aws.ToTime(ad.ExpiresAt); !got.Equal(t0.Add(12 * time.Hour)) {
		t.Errorf("expiresAt: got %v", got)
	}
	if got := aws.ToString(ad.ProxyEndpoint); got != "https://123456789012.dkr.ecr.us-east-1.amazonaws.com" {
		t.Errorf("proxyEndpoint: got %s", got)
	}
}

func post(t *testing.T, url, target, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestErrorShapeOnTheWire(t *testing.T) {
	e := newEnv(t, Options{})
	for _, tc := range []struct {
		target, body string
		status       int
		typ, msg     string
	}{
		{"AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition", `{"taskDefinition":"nope:1"}`, 400, "ClientException", "Unable to describe task definition."},
		{"AmazonEC2ContainerServiceV20141113.ListServices", `{}`, 400, "ClusterNotFoundException", "Cluster not found."},
		{"AmazonEC2ContainerServiceV20141113.RunTask", `{}`, 400, "UnknownOperationException", "Unknown operation RunTask."},
		{"Nope.Op", `{}`, 400, "UnknownOperationException", `Unknown service target "Nope.Op".`},
		{"AmazonEC2ContainerServiceV20141113.ListClusters", `{"maxResults":`, 400, "SerializationException", ""},
		{"secretsmanager.GetSecretValue", `{"SecretId":"x"}`, 400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."},
	} {
		t.Run(tc.target, func(t *testing.T) {
			resp, b := post(t, e.url, tc.target, tc.body)
			var got struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("body %s: %v", b, err)
			}
			if resp.StatusCode != tc.status || got.Type != tc.typ || !strings.Contains(got.Message, tc.msg) || resp.Header.Get("X-Amzn-ErrorType") != tc.typ {
				t.Errorf("got %d %s %+v, want %d %s %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), got, tc.status, tc.typ, tc.msg)
			}
		})
	}
	// The SDK classifies it: code, message and HTTP status.
	_, err := e.ecs.DescribeTaskDefinition(ctxT(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("nope")})
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 400 {
		t.Errorf("SDK error: got %v, want an HTTP 400 response error", err)
	}
	var ce *types.ClientException
	if !errors.As(err, &ce) {
		t.Errorf("SDK error: got %T, want *types.ClientException", err)
	}
}

func TestGateThrottlesAndIsJournaled(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	var mu sync.Mutex
	var seen []string
	e.sim.AddGate(func(_ context.Context, r Request) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Service+"."+r.Operation)
		if r.Operation == "RegisterTaskDefinition" {
			return &Error{Code: "ThrottlingException", Message: "Rate exceeded", Status: 400}
		}
		if r.Operation == "ListClusters" {
			return errors.New("injected fault")
		}
		return nil
	})
	client := ecs.NewFromConfig(awsConfig(), func(o *ecs.Options) {
		o.BaseEndpoint = aws.String(e.url)
		o.RetryMaxAttempts = 1
	})
	_, err := client.RegisterTaskDefinition(ctx, fargateTD("web"))
	wantAPIErr(t, err, "ThrottlingException", "Rate exceeded")
	_, err = client.ListClusters(ctx, &ecs.ListClustersInput{})
	wantAPIErr(t, err, "ServerException", "injected fault")
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != 500 {
		t.Errorf("fault: got %v, want HTTP 500", err)
	}
	if diff := cmp.Diff(seen, []string{"ecs.RegisterTaskDefinition", "ecs.ListClusters"}); diff != "" {
		t.Errorf("gate saw (-got +want):\n%s", diff)
	}
	j := e.sim.Journal()
	if len(j) != 1 || j[0].Call.Operation != "RegisterTaskDefinition" || j[0].Call.Err.Code != "ThrottlingException" {
		t.Errorf("journal: got %+v, want the throttled RegisterTaskDefinition only", j)
	}
}

func TestJournalAndStateOverHTTP(t *testing.T) {
	e := newEnv(t, Options{RolloutDelay: time.Second})
	ctx := ctxT(t)
	var observed []string
	e.sim.OnCall(func(c Call) { observed = append(observed, fmt.Sprintf("%d %s %v", c.Seq, c.Operation, c.Err != nil)) })
	if err := e.sim.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("demo"), Service: aws.String("bluegreen"), TaskDefinition: aws.String("web:1")})
	wantAPIErr(t, err, "InvalidParameterException", "CODE_DEPLOY")
	must[*ecs.UpdateServiceOutput](t)(e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("demo"), Service: aws.String("web"), TaskDefinition: aws.String("web:1")}))
	_, _ = e.ecs.ListClusters(ctx, &ecs.ListClustersInput{}) // reads are not journaled
	e.clock.Advance(time.Second)
	e.sim.Step()

	resp, err := http.Get(e.url + "/_sim/journal")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var entries []JournalEntryJSON
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, en := range entries {
		if en.Kind == "call" {
			calls = append(calls, en.Operation)
		}
	}
	wantCalls := []string{"CreateCluster", "CreateSecret", "RegisterTaskDefinition", "RegisterTaskDefinition", "RegisterTaskDefinition",
		"RegisterTaskDefinition", "RegisterTaskDefinition", "CreateService", "CreateService", "CreateService", "CreateService", "UpdateService", "UpdateService"}
	if diff := cmp.Diff(calls, wantCalls); diff != "" {
		t.Errorf("journaled calls (-got +want):\n%s", diff)
	}
	if len(observed) != len(wantCalls) || !strings.HasSuffix(observed[11], "UpdateService true") || !strings.HasSuffix(observed[12], "UpdateService false") {
		t.Errorf("observer saw %v", observed)
	}
	// Entries carry the wire input and output, and the error.
	var failed, updated *JournalEntryJSON
	for i := range entries {
		if entries[i].Operation == "UpdateService" {
			if entries[i].Error != nil {
				failed = &entries[i]
			} else {
				updated = &entries[i]
			}
		}
	}
	wire := func(raw json.RawMessage) map[string]any {
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return m
	}
	if failed == nil || failed.Error.Type != "InvalidParameterException" || wire(failed.Input)["service"] != "bluegreen" || failed.Output != nil {
		t.Errorf("failed call entry: %+v", failed)
	}
	if updated == nil || wire(updated.Output)["service"].(map[string]any)["taskDefinition"] != "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1" {
		t.Errorf("update entry: %+v", updated)
	}
	// A history question: which (web:2's first deployment was superseded
	// before its due time: it has no outcome) task definitions was service web ever pointed at?
	var webTDs []string
	for _, en := range e.sim.Journal() {
		if d := en.Deployment; d != nil && strings.HasSuffix(d.ServiceArn, "/demo/web") {
			webTDs = append(webTDs, d.TaskDefinition[strings.LastIndex(d.TaskDefinition, "/")+1:]+" "+string(d.State))
		}
	}
	if diff := cmp.Diff(webTDs, []string{"web:2 IN_PROGRESS", "web:1 IN_PROGRESS", "web:1 COMPLETED"}); diff != "" {
		t.Errorf("web's deployments (-got +want):\n%s", diff)
	}
	// since= and operation= filter.
	resp2, err := http.Get(fmt.Sprintf("%s/_sim/journal?since=%d&operation=UpdateService", e.url, entries[0].Seq))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var filtered []JournalEntryJSON
	if err := json.NewDecoder(resp2.Body).Decode(&filtered); err != nil || len(filtered) != 2 {
		t.Errorf("filtered journal: got %d entries (%v), want 2", len(filtered), err)
	}

	resp3, err := http.Get(e.url + "/_sim/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp3.Body.Close()
	var st State
	if err := json.NewDecoder(resp3.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	var svcs []string
	for _, s := range st.Clusters[0].Services {
		svcs = append(svcs, s.Arn[strings.LastIndex(s.Arn, "/")+1:]+"="+s.TaskDefinition[strings.LastIndex(s.TaskDefinition, "/")+1:])
	}
	if diff := cmp.Diff(svcs, []string{"api=api:1", "bluegreen=api:1", "web=web:1", "worker=worker:1"}); diff != "" {
		t.Errorf("state services (-got +want):\n%s", diff)
	}
	if got := st.Families[2].Revisions[0].Tags["ecs-sidecar/inject"]; st.Families[2].Name != "web" || got != "true" {
		t.Errorf("state web:1 tags: got %+v", st.Families[2])
	}
	if len(st.Secrets) != 1 || st.Secrets[0].Name != DemoTokenSecret {
		t.Errorf("state secrets: got %+v", st.Secrets)
	}
}

func TestGoAPISharesNoMemory(t *testing.T) {
	s := New(Options{Clock: NewFakeClock(t0)})
	ctx := context.Background()
	in := fargateTD("web")
	in.Tags = []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}
	out, err := s.ECS().RegisterTaskDefinition(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	in.ContainerDefinitions[0].Image = aws.String("changed-input")
	in.Tags[0].Value = aws.String("changed-input")
	out.TaskDefinition.ContainerDefinitions[0].Image = aws.String("changed-output")
	d, err := s.ECS().DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:1"), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(d.TaskDefinition.ContainerDefinitions[0].Image); got != "nginx:1.27" {
		t.Errorf("image: got %s, want nginx:1.27", got)
	}
	if got := aws.ToString(d.Tags[0].Value); got != "v" {
		t.Errorf("tag: got %s, want v", got)
	}
	// Errors from the Go API classify like the SDK's.
	_, err = s.ECS().DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("nope")})
	wantAPIErr(t, err, "ClientException", "Unable to describe task definition.")
}

// TestDeterministic replays the same calls against two simulators and
// requires identical states and journals.
func TestDeterministic(t *testing.T) {
	run := func() (State, []JournalEntryJSON) {
		clock := NewFakeClock(t0)
		s := New(Options{Clock: clock, RolloutDelay: time.Second})
		ctx := context.Background()
		if err := s.SeedDemo(ctx); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			_, _ = s.ECS().UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("demo"), Service: aws.String("api"), ForceNewDeployment: true, DesiredCount: aws.Int32(int32(i))})
			clock.Advance(time.Second / 2)
		}
		return s.State(), JournalJSON(s.Journal())
	}
	st1, j1 := run()
	st2, j2 := run()
	if diff := cmp.Diff(st1, st2); diff != "" {
		t.Errorf("states differ:\n%s", diff)
	}
	if diff := cmp.Diff(j1, j2); diff != "" {
		t.Errorf("journals differ:\n%s", diff)
	}
}

// TestConcurrentClients drives the simulator from many goroutines through
// the SDK; run with -race.
func TestConcurrentClients(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	must[*ecs.CreateClusterOutput](t)(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				fam := fmt.Sprintf("f%d", g)
				if _, err := e.ecs.RegisterTaskDefinition(ctx, fargateTD(fam)); err != nil {
					errs <- err
					return
				}
				if _, err := e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(fam)}); err != nil {
					errs <- err
					return
				}
				if i == 0 {
					if _, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String(fam), TaskDefinition: aws.String(fam + ":1")}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := e.sim.State()
	for _, f := range st.Families {
		if len(f.Revisions) != 10 {
			t.Errorf("family %s: %d revisions, want 10", f.Name, len(f.Revisions))
		}
	}
	if got := len(st.Clusters[0].Services); got != 8 {
		t.Errorf("services: got %d, want 8", got)
	}
}

// TestJournalRecordsUserAgent: a journaled call names its HTTP caller (the
// SDK's user agent with its app id), so that a history tells one client's
// writes from another's; Go callers have none.
func TestJournalRecordsUserAgent(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := ctxT(t)
	if _, err := e.sim.ECS().CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("go")}); err != nil {
		t.Fatal(err)
	}
	cfg := awsConfig()
	cfg.AppID = "soak-tester"
	withApp := ecs.NewFromConfig(cfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String(e.url) })
	must[*ecs.CreateClusterOutput](t)(withApp.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("app")}))
	must[*ecs.CreateClusterOutput](t)(e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("plain")}))
	j := e.sim.Journal()
	if len(j) != 3 {
		t.Fatalf("journal: got %d entries, want 3", len(j))
	}
	if ua := j[0].Call.UserAgent; ua != "" {
		t.Errorf("Go caller: got user agent %q, want none", ua)
	}
	if ua := j[1].Call.UserAgent; !strings.Contains(ua, "app/soak-tester") {
		t.Errorf("SDK caller with an app id: got user agent %q, want app/soak-tester in it", ua)
	}
	if ua := j[2].Call.UserAgent; ua == "" || strings.Contains(ua, "app/") {
		t.Errorf("SDK caller without an app id: got user agent %q", ua)
	}
	resp, err := http.Get(e.url + "/_sim/journal")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var wire []JournalEntryJSON
	if err := json.NewDecoder(resp.Body).Decode(&wire); err != nil {
		t.Fatal(err)
	}
	if len(wire) != 3 || wire[0].UserAgent != "" || wire[1].UserAgent != j[1].Call.UserAgent {
		t.Errorf("GET /_sim/journal: user agents %q, %q; want none, then %q", wire[0].UserAgent, wire[1].UserAgent, j[1].Call.UserAgent)
	}
}
