package watch

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
)

// The samples' own account and Region.
const (
	ownAccount = "111122223333"
	ownRegion  = "us-east-1"
)

// withEnvelope is a copy of a sample with the envelope's account and Region
// replaced ("" keeps the sample's).
func withEnvelope(t *testing.T, name, account, region string) string {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal([]byte(sample(t, name)), &ev); err != nil {
		t.Fatal(err)
	}
	if account != "" {
		ev["account"] = account
	}
	if region != "" {
		ev["region"] = region
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Events of another account or Region are deleted at once, counted foreign
// and logged with their id, account and Region, never their body; the
// account's own events are still handled. Through the SDK against awssim's
// SQS.
func TestConsumerDeletesForeignEvents(t *testing.T) {
	q := newSimQueues(t)
	rec := &recorder{outcomes: map[string]int{}}
	logs := &syncBuffer{}
	c, err := NewConsumer(q.client, ConsumerOptions{
		QueueURL: q.queue, WaitTime: time.Millisecond, Visibility: holdVisibility, // short polls
		Account: ownAccount, Region: ownRegion,
		Enqueue: rec.enqueue, Observe: rec.observe,
		Resolve: func(context.Context, Event) (string, error) { return "web", nil },
		Logger:  slog.New(slog.NewJSONHandler(logs, nil)),
		Now:     q.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	const (
		otherAccount = "444455556666"
		otherRegion  = "eu-west-1"
	)
	foreign := map[string]string{ // event id -> why
		"1d2c3b4a-0000-4a5e-9c1e-2c8f1f2a9d11": "account", // CloudTrail: detail.eventID
		"af3c496d-0000-4a3e-a3b6-9c51b7d4b8a1": "region",
		"3f4e5d6c-0000-4a5e-9c1e-2c8f1f2a9d11": "arn", // CloudTrail: detail.eventID
	}
	for _, body := range []string{
		// Foreign: the envelope's account, the envelope's Region, an ARN
		// of another account under an envelope of ours.
		withEnvelope(t, "cloudtrail-register-task-definition.json", otherAccount, ""),
		withEnvelope(t, "ecs-service-action.json", "", otherRegion),
		strings.ReplaceAll(sample(t, "cloudtrail-tag-resource.json"), "arn:aws:ecs:us-east-1:"+ownAccount+":task-definition/", "arn:aws:ecs:us-east-1:"+otherAccount+":task-definition/"),
		// Ours.
		sample(t, "cloudtrail-tag-resource.json"),
		sample(t, "ecs-deployment-state-change-failed.json"),
	} {
		send(t, q.client, q.queue, body)
	}
	for i := 0; i < 3; i++ {
		if err := c.receiveOnce(context.Background()); err != nil {
			t.Fatalf("receive: %v", err)
		}
	}
	families, outcomes := rec.snapshot()
	slices.Sort(families)
	if outcomes[OutcomeForeign] != 3 || outcomes[OutcomeQueued] != 2 || len(outcomes) != 2 {
		t.Errorf("outcomes %v, want 3 foreign and 2 queued", outcomes)
	}
	if strings.Join(families, ",") != "billing,web" {
		t.Errorf("enqueued %v, want billing (tag resource) and web (deployment)", families)
	}
	// The foreign ones are gone; ours are held for their reconciles.
	if v, nv := q.depth(t, q.queue); v != "0" || nv != "2" {
		t.Errorf("queue: visible %s, in flight %s; want 0 and the 2 held", v, nv)
	}
	if c.Held() != 2 {
		t.Errorf("held %d, want 2", c.Held())
	}

	seen := map[string]bool{}
	for _, l := range logs.lines() {
		if l["msg"] != "deleting an event from another account or Region" {
			continue
		}
		id, _ := l["event_id"].(string)
		if l["level"] != "WARN" || foreign[id] == "" || l["mismatch"] != foreign[id] || l["own_account"] != ownAccount || l["own_region"] != ownRegion {
			t.Errorf("foreign event logged as %v", l)
		}
		if l["account"] == nil || l["region"] == nil {
			t.Errorf("foreign event logged without its account and Region: %v", l)
		}
		seen[id] = true
	}
	if len(seen) != 3 {
		t.Errorf("logged foreign events %v, want the 3 of %v", seen, foreign)
	}
	logs.mu.Lock()
	text := logs.b.String()
	logs.mu.Unlock()
	for _, body := range []string{"userIdentity", "requestParameters", "secops", "SERVICE_STEADY_STATE"} {
		if strings.Contains(text, body) {
			t.Errorf("the log shows the body (%q):\n%s", body, text)
		}
	}
}

// Without an own account and Region nothing is foreign (the consumer's
// behaviour before the check); with only one, only that one is checked.
func TestEventForeign(t *testing.T) {
	td := Event{Account: ownAccount, Region: ownRegion, TaskDefinitionArn: "arn:aws:ecs:us-east-1:" + ownAccount + ":task-definition/web:3"}
	svc := Event{Account: ownAccount, Region: ownRegion, Service: "arn:aws:ecs:us-east-1:" + ownAccount + ":service/prod/web", Cluster: "prod"}
	tests := []struct {
		name            string
		ev              Event
		account, region string
		want            string
	}{
		{"ours", td, ownAccount, ownRegion, ""},
		{"ours, a service with its cluster by name", svc, ownAccount, ownRegion, ""},
		{"not checked", Event{Account: "x", Region: "y", Service: "arn:bad"}, "", "", ""},
		{"another account", td, "444455556666", ownRegion, "account"},
		{"another Region", td, ownAccount, "eu-west-1", "region"},
		{"account only", Event{Account: ownAccount, Region: "eu-west-1"}, ownAccount, "", ""},
		{"no account in the envelope", Event{Region: ownRegion}, ownAccount, ownRegion, "account"},
		{"a cluster ARN of another Region", Event{Account: ownAccount, Region: ownRegion, Cluster: "arn:aws:ecs:eu-west-1:" + ownAccount + ":cluster/prod"}, ownAccount, ownRegion, "arn"},
		{"a malformed ARN", Event{Account: ownAccount, Region: ownRegion, Service: "arn:aws:ecs"}, ownAccount, ownRegion, "arn"},
	}
	for _, tt := range tests {
		if got := tt.ev.Foreign(tt.account, tt.region); got != tt.want {
			t.Errorf("%s: Foreign(%q, %q) = %q, want %q", tt.name, tt.account, tt.region, got, tt.want)
		}
	}
}

// OwnAccount asks STS (awssim's, through the SDK); without STS it falls back
// to the queue's account and says why.
func TestOwnAccount(t *testing.T) {
	sim := awssim.New(awssim.Options{Account: "210987654321"})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	client := sts.New(sts.Options{
		Region:       ownRegion,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(srv.URL),
	})
	const queue = "https://sqs.us-east-1.amazonaws.com/111122223333/reconciler-events"
	got, err := OwnAccount(context.Background(), client, queue)
	if err != nil || got != "210987654321" {
		t.Errorf("OwnAccount = %q, %v; want STS's account", got, err)
	}

	down := errors.New("no route to STS")
	got, err = OwnAccount(context.Background(), failingSTS{down}, queue)
	if !errors.Is(err, down) || got != ownAccount {
		t.Errorf("OwnAccount without STS = %q, %v; want the queue's account and STS's error", got, err)
	}
	got, err = OwnAccount(context.Background(), failingSTS{down}, "q")
	if err == nil || got != "" {
		t.Errorf("OwnAccount without STS or a queue account = %q, %v; want none and an error", got, err)
	}
}

type failingSTS struct{ err error }

func (f failingSTS) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	return nil, f.err
}

func TestAccountOfQueueURL(t *testing.T) {
	for url, want := range map[string]string{
		"https://sqs.us-east-1.amazonaws.com/123456789012/q": "123456789012",
		"http://127.0.0.1:4566/000000000000/events":          "000000000000",
		"https://sqs.us-east-1.amazonaws.com/1234/q":         "",
		"https://sqs.us-east-1.amazonaws.com/123456789012":   "",
		"q":  "",
		"":   "",
		"%%": "",
	} {
		if got := AccountOfQueueURL(url); got != want {
			t.Errorf("AccountOfQueueURL(%q) = %q, want %q", url, got, want)
		}
	}
}

func TestBounded(t *testing.T) {
	if got := bounded("us-east-1"); got != "us-east-1" {
		t.Errorf("bounded(short) = %q", got)
	}
	long := strings.Repeat("é", 40) // 80 bytes
	got := bounded(long)
	if len(got) > 64+3 || !strings.HasSuffix(got, "...") || !strings.HasPrefix(long, strings.TrimSuffix(got, "...")) || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("bounded(80 bytes) = %q", got)
	}
}
