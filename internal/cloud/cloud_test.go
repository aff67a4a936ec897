package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

// fakeAWS answers AWS JSON 1.1 calls on 127.0.0.1: the first `throttle`
// calls of each operation get ThrottlingException, the rest an empty result.
type fakeAWS struct {
	mu       sync.Mutex
	throttle int
	calls    map[string]int
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	target := r.Header.Get("X-Amz-Target")
	op := target[strings.LastIndexByte(target, '.')+1:]
	f.mu.Lock()
	f.calls[op]++
	n := f.calls[op]
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if n <= f.throttle {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
		return
	}
	_, _ = io.WriteString(w, `{}`)
}

type attempt struct{ Service, Operation, Code string }

func newTestConfig(t *testing.T, f *fakeAWS, o Options) (aws.Config, *Limiter, func() []attempt) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.calls = map[string]int{}
	var mu sync.Mutex
	var seen []attempt
	o.Endpoint = srv.URL
	o.Region = "us-east-1"
	o.StaticCredentials = &aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}
	o.MaxBackoff = time.Millisecond
	o.Observe = func(service, operation, code string) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, attempt{service, operation, code})
	}
	cfg, lim, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, lim, func() []attempt {
		mu.Lock()
		defer mu.Unlock()
		return append([]attempt(nil), seen...)
	}
}

func TestRetriesAreObservedPerAttempt(t *testing.T) {
	f := &fakeAWS{throttle: 2}
	cfg, _, attempts := newTestConfig(t, f, Options{MaxAttempts: 5})
	if _, err := ecs.NewFromConfig(cfg).ListClusters(context.Background(), &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("ListClusters: %v", err)
	}
	want := []attempt{
		{"ECS", "ListClusters", "ThrottlingException"},
		{"ECS", "ListClusters", "ThrottlingException"},
		{"ECS", "ListClusters", ""},
	}
	if diff := cmp.Diff(attempts(), want); diff != "" {
		t.Errorf("attempts (-got +want):\n%s", diff)
	}
}

// With the SDK's retry quota off, sustained throttling exhausts the attempts
// and the error is a throttle, never a quota error raised before AWS is asked.
func TestSustainedThrottlingUsesEveryAttempt(t *testing.T) {
	f := &fakeAWS{throttle: 1 << 30}
	cfg, _, attempts := newTestConfig(t, f, Options{MaxAttempts: 3})
	client := ecs.NewFromConfig(cfg)
	for i := range 20 {
		_, err := client.ListClusters(context.Background(), &ecs.ListClustersInput{})
		if !IsThrottled(err) {
			t.Fatalf("call %d: err = %v, want a throttling error", i, err)
		}
		var qe ratelimit.QuotaExceededError
		if errors.As(err, &qe) {
			t.Fatalf("call %d: the SDK's retry quota ran out: %v", i, err)
		}
	}
	if got, want := len(attempts()), 20*3; got != want {
		t.Errorf("attempts = %d, want %d", got, want)
	}
}

func TestLimiterBlocksPastTheShareOfTheBucket(t *testing.T) {
	f := &fakeAWS{}
	// Two cluster-read tokens at share 1, and a refill too slow to matter.
	buckets := map[Category]Bucket{ClusterRead: {Burst: 2, Refill: 0.0001}}
	cfg, _, attempts := newTestConfig(t, f, Options{BudgetShare: 1, Buckets: buckets, MaxAttempts: 1})
	client := ecs.NewFromConfig(cfg)
	for i := range 2 {
		if _, err := client.ListClusters(context.Background(), &ecs.ListClustersInput{}); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := client.ListClusters(ctx, &ecs.ListClustersInput{})
	if err == nil || !strings.Contains(err.Error(), "cluster_read token") {
		t.Fatalf("third call: err = %v, want the limiter to refuse it", err)
	}
	if got := len(attempts()); got != 2 {
		t.Errorf("attempts that reached AWS = %d, want 2", got)
	}
	// Other categories and other services are not limited by that bucket.
	if _, err := client.ListServices(context.Background(), &ecs.ListServicesInput{}); err != nil {
		t.Errorf("ListServices: %v", err)
	}
	q := sqs.NewFromConfig(cfg)
	for range 3 {
		if _, err := q.ListQueues(context.Background(), &sqs.ListQueuesInput{}); err != nil {
			t.Errorf("ListQueues: %v", err)
		}
	}
}

func TestShareScalesEveryBucket(t *testing.T) {
	l := NewLimiter(Buckets(), 0.5)
	tests := []struct {
		c      Category
		burst  int
		refill float64
	}{
		{TaskDefinitionModify, 10, 0.5},
		{TaskDefinitionRead, 25, 10},
		{ServiceModify, 25, 2.5},
		{ServiceRead, 50, 10},
		{ClusterRead, 25, 10},
		{TagModify, 10, 5},
		{TagRead, 25, 10},
	}
	for _, tc := range tests {
		burst, refill, ok := l.Limit(tc.c)
		if !ok || burst != tc.burst || refill != tc.refill {
			t.Errorf("%s: burst %d refill %v (ok %v), want %d %v", tc.c, burst, refill, ok, tc.burst, tc.refill)
		}
	}
	if burst, _, _ := NewLimiter(map[Category]Bucket{TagModify: {Burst: 1, Refill: 1}}, 0.1).Limit(TagModify); burst != 1 {
		t.Errorf("a tiny share gives burst %d, want at least 1", burst)
	}
}

func TestScaledBucketsScaleRefillsOnly(t *testing.T) {
	aws, scaled := Buckets(), ScaledBuckets(20)
	if len(scaled) != len(aws) {
		t.Fatalf("ScaledBuckets has %d categories, want %d", len(scaled), len(aws))
	}
	for c, b := range aws {
		if got, want := scaled[c], (Bucket{Burst: b.Burst, Refill: b.Refill * 20}); got != want {
			t.Errorf("%s: %+v, want %+v", c, got, want)
		}
	}
	if got := ScaledBuckets(1); got[TaskDefinitionModify] != aws[TaskDefinitionModify] {
		t.Errorf("scale 1 changed a bucket: %+v", got[TaskDefinitionModify])
	}
}

func TestEveryCategorisedOperationIsAnECSOperation(t *testing.T) {
	for op, c := range categoryOf {
		if _, ok := Buckets()[c]; !ok {
			t.Errorf("%s: category %s has no bucket", op, c)
		}
		if got, ok := CategoryOf("ECS", op); !ok || got != c {
			t.Errorf("CategoryOf(ECS, %s) = %s %v", op, got, ok)
		}
	}
	if _, ok := CategoryOf("SQS", "ListQueues"); ok {
		t.Error("SQS operations must not take ECS tokens")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{
		{Region: "us-east-1", Endpoint: "localhost:4566"},
		{Region: "us-east-1", BudgetShare: 1.5},
		{Region: "us-east-1", MaxAttempts: -1},
	} {
		if _, _, err := New(context.Background(), o); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
}

func TestClassification(t *testing.T) {
	api := func(code, msg string) error {
		return &smithy.GenericAPIError{Code: code, Message: msg}
	}
	tests := []struct {
		err                                error
		throttled, notFound, denied, input bool
	}{
		{err: api("ThrottlingException", "Rate exceeded"), throttled: true},
		{err: ratelimit.QuotaExceededError{}, throttled: true},
		{err: api("ClientException", "Unable to describe task definition."), notFound: true},
		{err: api("ServiceNotFoundException", "Service not found."), notFound: true},
		{err: api("ResourceNotFoundException", "Secrets Manager can't find the specified secret."), notFound: true},
		{err: api("AccessDeniedException", "not authorized"), denied: true},
		{err: api("ClientException", "Container.image should not be null or empty."), input: true},
		{err: api("InvalidParameterException", "bad"), input: true},
		{err: errors.New("connection reset")},
		{err: nil},
	}
	for _, tc := range tests {
		got := [4]bool{IsThrottled(tc.err), IsNotFound(tc.err), IsAccessDenied(tc.err), IsInvalidInput(tc.err)}
		want := [4]bool{tc.throttled, tc.notFound, tc.denied, tc.input}
		if got != want {
			t.Errorf("%v: throttled/notFound/denied/input = %v, want %v", tc.err, got, want)
		}
	}
	if got := ErrorCode(context.Canceled); got != "Canceled" {
		t.Errorf("ErrorCode(context.Canceled) = %q", got)
	}
}

func TestIsInactive(t *testing.T) {
	api := func(code, msg string) error {
		return &smithy.GenericAPIError{Code: code, Message: msg}
	}
	tests := []struct {
		err  error
		want bool
	}{
		{err: api("ClientException", "TaskDefinition is inactive"), want: true},
		{err: fmt.Errorf("update service web: %w", api("ClientException", "TaskDefinition is inactive")), want: true},
		{err: api("InvalidParameterException", "The task definition is INACTIVE."), want: true},
		{err: api("ClientException", "Container.image should not be null or empty.")},
		{err: fmt.Errorf("update service inactive-web: %w", api("ClientException", "Container.image should not be null or empty."))},
		{err: api("ServiceNotActiveException", "Service is inactive.")}, // not found, not invalid input
		{err: errors.New("TaskDefinition is inactive")},                 // no API error
		{err: nil},
	}
	for _, tc := range tests {
		if got := IsInactive(tc.err); got != tc.want {
			t.Errorf("IsInactive(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestIsNoCredentials(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{err: &v4.SigningError{Err: errors.New("no credentials")}, want: true},
		{err: fmt.Errorf("operation error STS: GetCallerIdentity, get identity: %w", errors.New("anonymous")), want: true},
		{err: errors.New("operation error STS: GetCallerIdentity, failed to retrieve credentials: no EC2 IMDS role found"), want: true},
		{err: errors.New("dial tcp: lookup sts.example: no such host")},
		{err: &smithy.GenericAPIError{Code: "ExpiredToken", Message: "The security token included in the request is expired"}},
		{err: nil},
	}
	for _, tc := range tests {
		if got := IsNoCredentials(tc.err); got != tc.want {
			t.Errorf("IsNoCredentials(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
