package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecs-sidecar/reconciler/internal/awssim"
	"github.com/ecs-sidecar/reconciler/internal/config"
	"github.com/ecs-sidecar/reconciler/internal/lease"
	"github.com/ecs-sidecar/reconciler/internal/moto"
)

// Two `run`s with leases.table set, as the CloudFormation template's two
// tasks, share one account (awssim) and one lease table (moto's
// DynamoDB): every opted-in family converges with one twin per source, and
// each run, stopped, gives its shards back and removes its member item.
func TestRunReplicasShareTheAccountByLeases(t *testing.T) {
	sim := awssim.New(awssim.Options{})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	ctx := t.Context()
	e := sim.ECS()
	if _, err := e.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	const families = 16
	var names []string
	for i := range families {
		name := fmt.Sprintf("svc-%02d", i)
		names = append(names, name)
		in := awssim.DemoTaskDefinition(name, "nginx:1.27", []types.Tag{{Key: aws.String("ecs-sidecar/inject"), Value: aws.String("true")}})
		in.ContainerDefinitions[0].EntryPoint = []string{"/docker-entrypoint.sh"}
		in.ContainerDefinitions[0].Command = []string{"nginx", "-g", "daemon off;"}
		if _, err := e.RegisterTaskDefinition(ctx, in); err != nil {
			t.Fatal(err)
		}
		if _, err := e.CreateService(ctx, &ecs.CreateServiceInput{
			Cluster: aws.String("prod"), ServiceName: aws.String(name), TaskDefinition: aws.String(name + ":1"), DesiredCount: aws.Int32(1),
		}); err != nil {
			t.Fatal(err)
		}
	}

	motoURL := moto.Start(t)
	ddb := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), BaseEndpoint: aws.String(motoURL),
	})
	const table = "ecs-sidecar-leases"
	if _, err := ddb.CreateTable(ctx, lease.CreateTableInput(table)); err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.AWS.Region, cfg.AWS.Endpoint = "us-east-1", srv.URL
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.Images.Resolve = false
	cfg.Rollouts.MaxInFlight, cfg.Rollouts.MaxInFlightPerCluster = families, families
	cfg.Leases = config.Leases{Table: table, Shards: 8, Duration: config.D(3 * time.Second), Endpoint: motoURL, GiveBackReceives: 5}
	p := cfg.Profiles[config.BuiltinProfile]
	p.TokenSecretArn = testSecretArn
	cfg.Profiles[config.BuiltinProfile] = p
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	type replica struct {
		cancel context.CancelFunc
		done   chan error
		logs   *syncBuffer
	}
	var replicas []*replica
	for range 2 {
		r := &replica{done: make(chan error, 1), logs: &syncBuffer{}}
		var runCtx context.Context
		runCtx, r.cancel = context.WithCancel(ctx)
		go func() {
			r.done <- runReconciler(runCtx, slog.New(slog.NewTextHandler(r.logs, nil)), cfg,
				&aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, observability{})
		}()
		replicas = append(replicas, r)
	}
	stop := func(i int) {
		t.Helper()
		r := replicas[i]
		if r.cancel == nil {
			return
		}
		r.cancel()
		r.cancel = nil
		if err := <-r.done; err != nil {
			t.Errorf("replica %d: run: %v", i, err)
		}
	}
	defer func() {
		for i := range replicas {
			stop(i)
		}
		if t.Failed() {
			for i, r := range replicas {
				t.Logf("replica %d logs:\n%s", i, r.logs.String())
			}
		}
	}()

	converged := func() bool {
		for start := 0; start < len(names); start += 10 {
			out, err := e.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: names[start:min(start+10, len(names))]})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range out.Services {
				if strings.HasSuffix(aws.ToString(s.TaskDefinition), ":1") {
					return false
				}
			}
		}
		return true
	}
	bound := time.Now().Add(60 * time.Second) // a bound on the wait, not a timing assertion
	for !converged() {
		if time.Now().After(bound) {
			t.Fatal("the families did not converge")
		}
		time.Sleep(50 * time.Millisecond)
	}
	twins := map[string]int{}
	for _, en := range sim.Journal() {
		if c := en.Call; c != nil && c.Operation == "RegisterTaskDefinition" && c.Err == nil {
			in := c.Input.(*ecs.RegisterTaskDefinitionInput)
			for _, tag := range in.Tags {
				if aws.ToString(tag.Key) == "ecs-sidecar/source" {
					twins[aws.ToString(in.Family)+":"+aws.ToString(tag.Value)]++
				}
			}
		}
	}
	total := 0
	for key, n := range twins {
		total += n
		if n != 1 {
			t.Errorf("%s: %d twins registered, want 1", key, n)
		}
	}
	if len(twins) != families {
		t.Errorf("twins of %d sources, want %d", len(twins), families)
	}
	t.Logf("2 replicas, %d families: %d twin registrations", families, total)

	scan := func() (shards map[string]map[string]ddbtypes.AttributeValue, members int) {
		out, err := ddb.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		shards = map[string]map[string]ddbtypes.AttributeValue{}
		for _, it := range out.Items {
			key := it[lease.AttrShard].(*ddbtypes.AttributeValueMemberS).Value
			if strings.HasPrefix(key, "member-") {
				members++
			} else {
				shards[key] = it
			}
		}
		return shards, members
	}
	expires := func(it map[string]ddbtypes.AttributeValue) string {
		return it[lease.AttrExpires].(*ddbtypes.AttributeValueMemberN).Value
	}
	// Stopped (SIGTERM): the first gives back what it holds and leaves.
	owner0 := ownerIn(t, replicas[0].logs.String())
	stop(0)
	shards, members := scan()
	if members != 1 {
		t.Errorf("%d member items after one replica stopped, want 1", members)
	}
	for sh, it := range shards {
		if it[lease.AttrOwner].(*ddbtypes.AttributeValueMemberS).Value == owner0 && expires(it) != "0" {
			t.Errorf("%s still held by the stopped replica %s: expires %s", sh, owner0, expires(it))
		}
	}
	stop(1)
	shards, members = scan()
	if members != 0 {
		t.Errorf("%d member items after both stopped, want 0", members)
	}
	for sh, it := range shards {
		if expires(it) != "0" {
			t.Errorf("%s not released: expires %s", sh, expires(it))
		}
	}
}

// ownerIn finds the replica id that run logs when leases are on.
func ownerIn(t *testing.T, logs string) string {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "leases on") {
			continue
		}
		if _, rest, ok := strings.Cut(line, " owner="); ok {
			owner, _, _ := strings.Cut(rest, " ")
			return owner
		}
	}
	t.Fatalf("no \"leases on\" line with the owner in the logs:\n%s", logs)
	return ""
}
