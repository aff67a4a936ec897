package watch

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecs-sidecar/reconciler/internal/ecsarn"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// The samples in testdata/events are the shapes AWS documents for each event.
func TestParseSamples(t *testing.T) {
	tests := []struct {
		file    string
		want    Event
		wantErr error
	}{
		{
			file: "cloudtrail-register-task-definition.json",
			want: Event{
				ID: "1d2c3b4a-0000-4a5e-9c1e-2c8f1f2a9d11", Kind: KindRegisterTaskDefinition,
				Time: mustTime(t, "2026-06-01T12:00:00Z"), Region: "us-east-1", Account: "111122223333",
				Family: "web", TaskDefinitionArn: "arn:aws:ecs:us-east-1:111122223333:task-definition/web:42",
				Caller: "arn:aws:sts::111122223333:assumed-role/ci-deployer/build-17",
			},
		},
		{file: "cloudtrail-register-task-definition-failed.json", wantErr: ErrIgnored},
		{
			file: "cloudtrail-tag-resource.json",
			want: Event{
				ID: "3f4e5d6c-0000-4a5e-9c1e-2c8f1f2a9d11", Kind: KindTagResource,
				Time: mustTime(t, "2026-06-01T12:02:00Z"), Region: "us-east-1", Account: "111122223333",
				Family: "billing", TaskDefinitionArn: "arn:aws:ecs:us-east-1:111122223333:task-definition/billing:7",
				Caller: "arn:aws:iam::111122223333:user/secops",
			},
		},
		{
			file: "ecs-deployment-state-change-failed.json",
			want: Event{
				ID: "ddca6449-b258-46c0-8653-e0e3a6d0468b", Kind: KindDeploymentStateChange,
				Time: mustTime(t, "2026-06-01T12:20:00Z"), Region: "us-east-1", Account: "111122223333",
				Cluster: "prod", Service: "arn:aws:ecs:us-east-1:111122223333:service/prod/web",
				EventName: "SERVICE_DEPLOYMENT_FAILED", DeploymentID: "ecs-svc/123",
				Reason: "ECS deployment circuit breaker: task failed to start.",
			},
		},
		{
			file: "ecs-deployment-state-change-rollback.json",
			want: Event{
				ID: "ee0b7559-0000-46c0-8653-e0e3a6d0468b", Kind: KindDeploymentStateChange,
				Time: mustTime(t, "2026-06-01T12:20:05Z"), Region: "us-east-1", Account: "111122223333",
				Cluster: "prod", Service: "arn:aws:ecs:us-east-1:111122223333:service/prod/web",
				EventName: "SERVICE_DEPLOYMENT_IN_PROGRESS", DeploymentID: "ecs-svc/456",
				Reason: "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/122.",
			},
		},
		{
			file: "ecs-service-action.json",
			want: Event{
				ID: "af3c496d-0000-4a3e-a3b6-9c51b7d4b8a1", Kind: KindServiceAction,
				Time: mustTime(t, "2026-06-01T12:30:00Z"), Region: "us-east-1", Account: "111122223333",
				Cluster: "prod", Service: "arn:aws:ecs:us-east-1:111122223333:service/prod/web",
				EventName: "SERVICE_STEADY_STATE",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "events", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(body)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Parse error = %v, want %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Parse mismatch (-got +want):\n%s", diff)
			}
		})
	}
}

// cloudTrail builds a CloudTrail event around a detail body.
func cloudTrail(detail string) string {
	return `{"version":"0","id":"env-id","detail-type":"AWS API Call via CloudTrail","source":"aws.ecs",` +
		`"time":"2026-06-01T12:00:00Z","region":"eu-west-1","account":"111122223333","detail":` + detail + `}`
}

func TestParseShapes(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Event
		wantErr error
	}{
		{
			name: "register without responseElements (over 100 KB) falls back to the request's family",
			body: cloudTrail(`{"eventSource":"ecs.amazonaws.com","eventName":"RegisterTaskDefinition","eventID":"e1",` +
				`"requestParameters":{"family":"api"},"responseElements":null}`),
			want: Event{ID: "e1", Kind: KindRegisterTaskDefinition, Family: "api"},
		},
		{
			name:    "register with neither parameters nor response names nothing",
			body:    cloudTrail(`{"eventSource":"ecs.amazonaws.com","eventName":"RegisterTaskDefinition"}`),
			wantErr: ErrUnparseable,
		},
		{
			name: "unknown extra fields are accepted",
			body: cloudTrail(`{"eventSource":"ecs.amazonaws.com","eventName":"RegisterTaskDefinition","eventID":"e2","newThing":{"a":[1,2]},` +
				`"responseElements":{"taskDefinition":{"taskDefinitionArn":"arn:aws:ecs:eu-west-1:1:task-definition/api_v2:3","extra":true}}}`),
			want: Event{ID: "e2", Kind: KindRegisterTaskDefinition, Family: "api_v2",
				TaskDefinitionArn: "arn:aws:ecs:eu-west-1:1:task-definition/api_v2:3"},
		},
		{
			name: "deregister by family:revision",
			body: cloudTrail(`{"eventSource":"ecs.amazonaws.com","eventName":"DeregisterTaskDefinition","eventID":"e3",` +
				`"requestParameters":{"taskDefinition":"web:7"}}`),
			want: Event{ID: "e3", Kind: KindDeregisterTaskDefinition, Family: "web"},
		},
		{
			name: "untag of a task definition",
			body: cloudTrail(`{"eventSource":"ecs.amazonaws.com","eventName":"UntagResource","eventID":"e4",` +
				`"requestParameters":{"resourceArn":"arn:aws:ecs:eu-west-1:1:task-definition/web:7","tagKeys":["ecs-sidecar/inject"]}}`),
			want: Event{ID: "e4", Kind: KindUntagResource, Family: "web", TaskDefinitionArn: "arn:aws:ecs:eu-west-1:1:task-definition/web:7"},
		},
		{
			name: "tag of a service is not an opt-in change",
			body: cloudTrail(`{"eventSource":"ecs.amazonaws.com","eventName":"TagResource",` +
				`"requestParameters":{"resourceArn":"arn:aws:ecs:eu-west-1:1:service/prod/web","tags":[]}}`),
			wantErr: ErrIgnored,
		},
		{
			name: "create service in the default cluster",
			body: cloudTrail(`{"eventSource":"ecs.amazonaws.com","eventName":"CreateService","eventID":"e5",` +
				`"requestParameters":{"serviceName":"web","taskDefinition":"web:3"},"responseElements":null}`),
			want: Event{ID: "e5", Kind: KindCreateService, Service: "web", Family: "web"},
		},
		{
			name: "update service prefers the response's ARNs",
			body: cloudTrail(`{"eventSource":"ecs.amazonaws.com","eventName":"UpdateService","eventID":"e6",` +
				`"requestParameters":{"cluster":"prod","service":"web"},` +
				`"responseElements":{"service":{"serviceArn":"arn:aws:ecs:eu-west-1:1:service/prod/web",` +
				`"clusterArn":"arn:aws:ecs:eu-west-1:1:cluster/prod","taskDefinition":"arn:aws:ecs:eu-west-1:1:task-definition/web:9"}}}`),
			want: Event{ID: "e6", Kind: KindUpdateService, Service: "arn:aws:ecs:eu-west-1:1:service/prod/web",
				Cluster: "arn:aws:ecs:eu-west-1:1:cluster/prod", Family: "web"},
		},
		{
			name: "the caller: an assumed role's session",
			body: cloudTrail(`{"eventSource":"ecs.amazonaws.com","eventName":"UpdateService","eventID":"e7",` +
				`"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/terraform/apply-42"},` +
				`"requestParameters":{"cluster":"prod","service":"web","taskDefinition":"web:3"},"responseElements":null}`),
			want: Event{ID: "e7", Kind: KindUpdateService, Service: "web", Cluster: "prod", Family: "web",
				Caller: "arn:aws:sts::1:assumed-role/terraform/apply-42"},
		},
		{
			name: "the reconciler's own call, by its SDK app id",
			body: cloudTrail(`{"eventSource":"ecs.amazonaws.com","eventName":"UpdateService","eventID":"e9",` +
				`"userAgent":"aws-sdk-go-v2/1.41.0 ua/2.1 os/linux lang/go#1.26 app/ecs-sidecar-reconciler m/E",` +
				`"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/ecs-sidecar-reconciler/task"},` +
				`"requestParameters":{"cluster":"prod","service":"web","taskDefinition":"web:4"},"responseElements":null}`),
			want: Event{ID: "e9", Kind: KindUpdateService, Service: "web", Cluster: "prod", Family: "web",
				Caller: "arn:aws:sts::1:assumed-role/ecs-sidecar-reconciler/task", OwnCall: true},
		},
		{
			name: "the caller: a service, by whom it was invoked",
			body: cloudTrail(`{"eventSource":"ecs.amazonaws.com","eventName":"UpdateService","eventID":"e8",` +
				`"userIdentity":{"type":"AWSService","invokedBy":"cloudformation.amazonaws.com"},` +
				`"requestParameters":{"cluster":"prod","service":"web","taskDefinition":"web:3"},"responseElements":null}`),
			want: Event{ID: "e8", Kind: KindUpdateService, Service: "web", Cluster: "prod", Family: "web",
				Caller: "AWSService cloudformation.amazonaws.com"},
		},
		{
			name:    "another API call",
			body:    cloudTrail(`{"eventSource":"ecs.amazonaws.com","eventName":"RunTask"}`),
			wantErr: ErrIgnored,
		},
		{
			name:    "another service's call",
			body:    cloudTrail(`{"eventSource":"s3.amazonaws.com","eventName":"PutObject"}`),
			wantErr: ErrIgnored,
		},
		{
			name:    "null detail",
			body:    cloudTrail(`null`),
			wantErr: ErrIgnored, // no eventSource: not ECS's
		},
		{
			name:    "detail of the wrong type",
			body:    cloudTrail(`[1,2]`),
			wantErr: ErrUnparseable,
		},
		{
			name: "deployment event with an old-format service ARN has no cluster",
			body: `{"id":"d1","detail-type":"ECS Deployment State Change","source":"aws.ecs",` +
				`"resources":["arn:aws:ecs:eu-west-1:1:service/web"],"detail":{"eventName":"SERVICE_DEPLOYMENT_COMPLETED"}}`,
			want: Event{ID: "d1", Kind: KindDeploymentStateChange, Service: "arn:aws:ecs:eu-west-1:1:service/web",
				EventName: "SERVICE_DEPLOYMENT_COMPLETED"},
		},
		{
			name:    "deployment event without a service",
			body:    `{"id":"d2","detail-type":"ECS Deployment State Change","source":"aws.ecs","resources":null,"detail":null}`,
			wantErr: ErrUnparseable,
		},
		{
			name:    "task state changes are not subscribed to",
			body:    `{"id":"d3","detail-type":"ECS Task State Change","source":"aws.ecs","detail":{}}`,
			wantErr: ErrIgnored,
		},
		{name: "another source", body: `{"id":"x","detail-type":"Object Created","source":"aws.s3"}`, wantErr: ErrIgnored},
		{name: "not JSON", body: `hello`, wantErr: ErrUnparseable},
		{name: "JSON but no envelope", body: `{"Message":"hi"}`, wantErr: ErrUnparseable},
		{name: "empty", body: ``, wantErr: ErrUnparseable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.body))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Parse error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			// The envelope fields are covered by TestParseSamples.
			got.Time, got.Region, got.Account = time.Time{}, "", ""
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Parse mismatch (-got +want):\n%s", diff)
			}
		})
	}
}

func TestFamilyOf(t *testing.T) {
	tests := map[string]string{
		"arn:aws:ecs:us-east-1:1:task-definition/web:42": "web",
		"arn:aws:ecs:us-east-1:1:task-definition/web":    "web",
		"web:42":     "web",
		"web":        "web",
		"web:latest": "",
		"arn:aws:ecs:us-east-1:1:service/prod/web": "",
		"we b":                   "",
		"":                       "",
		strings.Repeat("a", 256): "",
	}
	for in, want := range tests {
		if got := ecsarn.Family(in); got != want {
			t.Errorf("ecsarn.Family(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"source":"aws.ecs","detail-type":"AWS API Call via CloudTrail","detail":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrUnparseable) && !errors.Is(err, ErrIgnored) {
				t.Fatalf("Parse error %v is neither ErrUnparseable nor ErrIgnored", err)
			}
			return
		}
		if !slices.Contains(Kinds, ev.Kind) {
			t.Fatalf("Parse kind %q is not one of Kinds", ev.Kind)
		}
		if ev.Family == "" && ev.Service == "" {
			t.Fatalf("Parse returned an event with neither family nor service: %+v", ev)
		}
		if ev.Family != "" && !ecsarn.ValidFamily(ev.Family) {
			t.Fatalf("Parse returned the invalid family %q", ev.Family)
		}
	})
}
