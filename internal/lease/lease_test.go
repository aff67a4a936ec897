package lease

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ecs-sidecar/reconciler/internal/moto"
)

// One moto_server for the package's tests (TestMain starts it), each test
// on a table of its own.
var motoURL string

func server(t *testing.T) string {
	t.Helper()
	if motoURL == "" {
		t.Fatal("moto_server did not start")
	}
	return motoURL
}

// mainTB lets TestMain use moto.Start, which wants a testing.TB: it keeps
// the cleanups for after the tests and exits on a fatal error.
type mainTB struct {
	testing.TB
	cleanups []func()
}

func (m *mainTB) Helper()                      {}
func (m *mainTB) Cleanup(f func())             { m.cleanups = append(m.cleanups, f) }
func (m *mainTB) Fatal(args ...any)            { m.fail(fmt.Sprint(args...)) }
func (m *mainTB) Fatalf(f string, args ...any) { m.fail(fmt.Sprintf(f, args...)) }

func (m *mainTB) fail(msg string) {
	fmt.Fprintln(os.Stderr, "lease tests:", msg)
	m.done()
	os.Exit(1)
}

func (m *mainTB) done() {
	for i := len(m.cleanups) - 1; i >= 0; i-- {
		m.cleanups[i]()
	}
}

func TestMain(m *testing.M) {
	tb := &mainTB{}
	motoURL = moto.Start(tb)
	code := m.Run()
	tb.done()
	os.Exit(code)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_800_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t      *testing.T
	client *dynamodb.Client
	table  string
	clock  *clock
}

var tableSeq struct {
	sync.Mutex
	n int
}

func newFixture(t *testing.T, url string) *fixture {
	t.Helper()
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(url),
	})
	tableSeq.Lock()
	tableSeq.n++
	table := fmt.Sprintf("leases-%d", tableSeq.n)
	tableSeq.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.CreateTable(ctx, CreateTableInput(table)); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	return &fixture{t: t, client: client, table: table, clock: newClock()}
}

const (
	dur   = 30 * time.Second
	renew = 10 * time.Second
)

func (f *fixture) manager(owner string, shards int, client DynamoDBAPI) *Manager {
	f.t.Helper()
	if client == nil {
		client = f.client
	}
	m, err := New(Options{Client: client, Table: f.table, Owner: owner, Shards: shards, Duration: dur, Renew: renew, Clock: f.clock.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func round(t *testing.T, m *Manager) {
	t.Helper()
	if err := m.Round(ctxT(t)); err != nil {
		t.Fatalf("%s: Round: %v", m.Owner(), err)
	}
}

// items reads the shard items of the table.
func (f *fixture) items() map[string]item {
	f.t.Helper()
	out, err := f.client.Scan(ctxT(f.t), &dynamodb.ScanInput{TableName: aws.String(f.table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		f.t.Fatalf("Scan: %v", err)
	}
	if out.LastEvaluatedKey != nil {
		f.t.Fatal("the table does not fit a page")
	}
	m := map[string]item{}
	for _, av := range out.Items {
		it := parse(av)
		m[it.shard] = it
	}
	return m
}

// familyOf finds a family name on each shard.
func familyOf(shards int) []string {
	out := make([]string, shards)
	left := shards
	for i := 0; left > 0; i++ {
		name := fmt.Sprintf("family-%d", i)
		if sh := ShardOf(name, shards); out[sh] == "" {
			out[sh] = name
			left--
		}
	}
	return out
}

// exclusive checks that no shard is trusted by two managers and that what a
// manager trusts is what the table says.
func (f *fixture) exclusive(ms ...*Manager) {
	f.t.Helper()
	items := f.items()
	for i := range ms[0].o.Shards {
		sh := ShardName(i)
		var owners []string
		for _, m := range ms {
			fe, ok := m.OwnsShard(sh)
			if !ok {
				continue
			}
			owners = append(owners, m.Owner())
			if it := items[sh]; it.owner != m.Owner() || it.token != fe.Token {
				f.t.Fatalf("%s trusts %s with token %d, the table says owner %q token %d", m.Owner(), sh, fe.Token, it.owner, it.token)
			}
		}
		if len(owners) > 1 {
			f.t.Fatalf("%s owned by %v at once", sh, owners)
		}
	}
}

func count(m *Manager) int { return len(m.Held()) }

func TestShardOf(t *testing.T) {
	// FNV-1a 32 of "a" is 0xe40c292c; of "" the offset basis 0x811c9dc5.
	if got := ShardOf("a", 32); got != 0xe40c292c%32 {
		t.Errorf(`ShardOf("a", 32) = %d`, got)
	}
	if got := ShardOf("", 1000); got != 0x811c9dc5%1000 {
		t.Errorf(`ShardOf("", 1000) = %d`, got)
	}
	if ShardName(7) != "shard-007" || ShardName(31) != "shard-031" {
		t.Errorf("ShardName: %s %s", ShardName(7), ShardName(31))
	}
	hist := make([]int, 32)
	for i := range 32000 {
		hist[ShardOf(fmt.Sprintf("svc-%d-api", i), 32)]++
	}
	for sh, c := range hist {
		if c < 800 || c > 1200 {
			t.Errorf("shard %d has %d of 32000 families", sh, c)
		}
	}
}

func TestNewOptions(t *testing.T) {
	c := &dynamodb.Client{}
	m, err := New(Options{Client: c, Table: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if m.o.Shards != 32 || m.o.Duration != 30*time.Second || m.o.Renew != 10*time.Second || m.o.Margin != 3*time.Second {
		t.Errorf("defaults: %+v", m.o)
	}
	if !strings.Contains(m.Owner(), "-") || len(m.Owner()) < 13 {
		t.Errorf("owner %q: want hostname-suffix", m.Owner())
	}
	m2, _ := New(Options{Client: c, Table: "t"})
	if m2.Owner() == m.Owner() {
		t.Errorf("two managers got the same owner %q", m.Owner())
	}
	var ce *ConfigError
	if _, err := New(Options{Client: c, Table: "t", Duration: time.Second, Renew: time.Second}); !errors.As(err, &ce) {
		t.Errorf("renew = duration: %v", err)
	}
	if _, err := New(Options{Table: "t"}); !errors.As(err, &ce) {
		t.Errorf("no client: %v", err)
	}
}

// 1. One manager takes every shard; Owns gives a fence for every family.
func TestOneTakesAll(t *testing.T) {
	f := newFixture(t, server(t))
	a := f.manager("a", 32, nil)
	if _, ok := a.Owns("web"); ok {
		t.Fatal("Owns before any round")
	}
	round(t, a)
	// An acquisition whose answer the transport lost is retried by the SDK
	// and refused by its own first write (aws-sdk-go-v2#2737 under load):
	// the item names a, which does not adopt it (by design) and takes it
	// again, with a new token, once it has run out.
	want := map[string]int64{}
	for i := range 32 {
		want[ShardName(i)] = 1
	}
	if held := count(a); held < 32 {
		for sh, it := range f.items() {
			if !strings.HasPrefix(sh, "shard-") || a.isHeld(sh) {
				continue
			}
			if it.owner != "a" || it.token != 1 {
				t.Fatalf("%s not held after one round and not a lost answer of a's own: %+v", sh, it)
			}
			want[sh] = 2
		}
		f.clock.Advance(dur + time.Millisecond)
		round(t, a)
	}
	for i, fam := range familyOf(32) {
		fe, ok := a.Owns(fam)
		if !ok || fe.Shard != ShardName(i) || fe.Token != want[ShardName(i)] {
			t.Fatalf("Owns(%s) = %+v, %v; want %s token %d", fam, fe, ok, ShardName(i), want[ShardName(i)])
		}
		if err := a.Check(ctxT(t), fe); err != nil {
			t.Fatalf("Check(%+v): %v", fe, err)
		}
	}
	items := f.items()
	for i := range 32 {
		if it := items[ShardName(i)]; it.owner != "a" || it.token != want[ShardName(i)] || it.expires != ms(f.clock.Now().Add(dur)) {
			t.Fatalf("%s: %+v", ShardName(i), it)
		}
	}
	if m := items["member-a"]; m.owner != "a" || m.shards != 32 {
		t.Fatalf("member item: %+v", m)
	}
	// Renewal keeps the token and pushes the expiry.
	f.clock.Advance(renew)
	round(t, a)
	for i, it := range f.items() {
		if strings.HasPrefix(i, "shard-") && (it.token != want[i] || it.expires != ms(f.clock.Now().Add(dur))) {
			t.Fatalf("after renewal %s: %+v", i, it)
		}
	}
	if n := count(a); n != 32 {
		t.Fatalf("holds %d", n)
	}
}

// 2. Two managers split the shards, never owning one together.
func TestTwoSplit(t *testing.T) {
	f := newFixture(t, server(t))
	a, b := f.manager("a", 32, nil), f.manager("b", 32, nil)
	for r := range 5 {
		round(t, a)
		f.exclusive(a, b)
		round(t, b)
		f.exclusive(a, b)
		f.clock.Advance(renew)
		t.Logf("round %d: a %d, b %d", r, count(a), count(b))
	}
	na, nb := count(a), count(b)
	if na < 15 || na > 17 || nb < 15 || nb > 17 || na+nb != 32 {
		t.Fatalf("a holds %d, b %d: want 16 each", na, nb)
	}
	// Every family has exactly one owner.
	for _, fam := range familyOf(32) {
		_, oa := a.Owns(fam)
		_, ob := b.Owns(fam)
		if oa == ob {
			t.Fatalf("%s: owned by a %v, by b %v", fam, oa, ob)
		}
	}
	// A third replica gets its share too.
	c := f.manager("c", 32, nil)
	for range 4 {
		for _, m := range []*Manager{c, a, b} {
			round(t, m)
			f.exclusive(a, b, c)
		}
		f.clock.Advance(renew)
	}
	for _, m := range []*Manager{a, b, c} {
		if n := count(m); n < 10 || n > 11 {
			t.Fatalf("%s holds %d of 32 among 3: want 10 or 11", m.Owner(), n)
		}
	}
	if count(a)+count(b)+count(c) != 32 {
		t.Fatalf("%d+%d+%d shards held", count(a), count(b), count(c))
	}
}

// 3. A paused manager loses its shards within a lease period, stops
// trusting them by its own clock before the other can take them, and its
// fences fail Check.
func TestPausedLosesLeases(t *testing.T) {
	f := newFixture(t, server(t))
	a, b := f.manager("a", 32, nil), f.manager("b", 32, nil)
	for range 3 {
		round(t, a)
		round(t, b)
		f.clock.Advance(renew)
	}
	round(t, a) // a's last renewal, at t0
	t0 := f.clock.Now()
	fences := a.Held()
	if len(fences) != 16 {
		t.Fatalf("a holds %d before the pause", len(fences))
	}
	// a is paused: only b runs, one round every Renew.
	step := renew / 2
	for f.clock.Now().Before(t0.Add(dur + renew)) {
		f.clock.Advance(step)
		now := f.clock.Now()
		if now.Sub(t0) >= dur-dur/10 {
			if n := count(a); n != 0 {
				t.Fatalf("%v after its last renewal a still trusts %d shards (margin %v)", now.Sub(t0), n, dur/10)
			}
		}
		if now.Sub(t0)%renew == 0 {
			round(t, b)
		}
		f.exclusive(a, b)
		if now.Sub(t0) <= dur && count(b) != 16 {
			t.Fatalf("b took a's shards %v after a's renewal, before they expired", now.Sub(t0))
		}
	}
	if n := count(b); n != 32 {
		t.Fatalf("one lease period and a round after a's last renewal, b holds %d", n)
	}
	for _, fe := range fences {
		if _, ok := a.OwnsShard(fe.Shard); ok {
			t.Fatalf("a still owns %s", fe.Shard)
		}
		err := a.Check(ctxT(t), fe)
		if !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("Check(%+v) after the pause: %v", fe, err)
		}
	}
	// a wakes up: it renews nothing, and gets half back with new tokens.
	items := f.items()
	for range 2 {
		round(t, a)
		f.exclusive(a, b)
		round(t, b)
		f.exclusive(a, b)
		f.clock.Advance(renew)
	}
	if count(a) != 16 {
		t.Fatalf("after waking up a holds %d", count(a))
	}
	for _, fe := range a.Held() {
		if fe.Token <= items[fe.Shard].token {
			t.Fatalf("%s back to a with token %d, b had %d", fe.Shard, fe.Token, items[fe.Shard].token)
		}
	}
}

// 4. Release hands the shards over at once.
func TestReleaseHandsOver(t *testing.T) {
	f := newFixture(t, server(t))
	a, b := f.manager("a", 32, nil), f.manager("b", 32, nil)
	round(t, a)
	round(t, b)
	if count(a) != 32 || count(b) != 0 {
		t.Fatalf("a %d, b %d", count(a), count(b))
	}
	if err := a.Release(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := count(a); n != 0 {
		t.Fatalf("a trusts %d shards after Release", n)
	}
	items := f.items()
	if _, ok := items["member-a"]; ok {
		t.Fatal("a's member item is still there")
	}
	for i := range 32 {
		if it := items[ShardName(i)]; it.expires != 0 || it.token != 1 {
			t.Fatalf("after Release %s: %+v", ShardName(i), it)
		}
	}
	round(t, b) // no time passes
	if n := count(b); n != 32 {
		t.Fatalf("b took %d shards on its round after a's Release", n)
	}
	for _, fe := range b.Held() {
		if fe.Token != 2 {
			t.Fatalf("%s: token %d, want 2", fe.Shard, fe.Token)
		}
	}
}

// 5. Tokens only grow: a token is never handed out twice, and the table's
// token of a shard never goes down, through joins, pauses, releases and
// restarts.
func TestTokensMonotonic(t *testing.T) {
	f := newFixture(t, server(t))
	const shards = 8
	rng := rand.New(rand.NewPCG(1, 2))
	seq := 0
	newM := func() *Manager { seq++; return f.manager(fmt.Sprintf("r%d", seq), shards, nil) }
	ms := []*Manager{newM(), newM(), newM()}
	issued := map[Fence]string{} // fence -> owner
	last := map[string]int64{}
	handovers := 0
	prevOwner := map[string]string{}
	for step := range 60 {
		m := ms[rng.IntN(len(ms))]
		switch x := rng.IntN(10); {
		case x < 6:
			_ = m.Round(ctxT(t))
		case x < 7:
			if err := m.Release(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			ms[indexOf(ms, m)] = newM() // the replica restarts with a new id
		case x < 9:
			f.clock.Advance(renew)
		default:
			f.clock.Advance(dur) // everyone paused
		}
		f.exclusive(ms...)
		for _, m := range ms {
			for _, fe := range m.Held() {
				if o, ok := issued[fe]; ok && o != m.Owner() {
					t.Fatalf("step %d: token %d of %s issued to %s and %s", step, fe.Token, fe.Shard, o, m.Owner())
				}
				issued[fe] = m.Owner()
			}
		}
		for sh, it := range f.items() {
			if !strings.HasPrefix(sh, "shard-") {
				continue
			}
			if it.token < last[sh] {
				t.Fatalf("step %d: %s token went from %d to %d", step, sh, last[sh], it.token)
			}
			if it.owner != prevOwner[sh] {
				if it.token <= last[sh] {
					t.Fatalf("step %d: %s went from %s to %s with token %d -> %d", step, sh, prevOwner[sh], it.owner, last[sh], it.token)
				}
				handovers++
			}
			last[sh], prevOwner[sh] = it.token, it.owner
		}
	}
	if handovers < 3*shards {
		t.Fatalf("only %d handovers: the test did not exercise much", handovers)
	}
	t.Logf("%d handovers, %d fences", handovers, len(issued))
}

func indexOf(ms []*Manager, m *Manager) int {
	for i := range ms {
		if ms[i] == m {
			return i
		}
	}
	panic("not found")
}

// faulty injects errors into chosen calls.
type faulty struct {
	DynamoDBAPI
	mu     sync.Mutex
	update func(*dynamodb.UpdateItemInput) error
	scan   error
	// emptyScan makes Scan answer an empty table: a stale view.
	emptyScan bool
}

func (c *faulty) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.mu.Lock()
	fn := c.update
	c.mu.Unlock()
	if fn != nil {
		if err := fn(in); err != nil {
			return nil, err
		}
	}
	return c.DynamoDBAPI.UpdateItem(ctx, in, o...)
}

func (c *faulty) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	c.mu.Lock()
	err := c.scan
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if c.emptyScan {
		return &dynamodb.ScanOutput{}, nil
	}
	return c.DynamoDBAPI.Scan(ctx, in, o...)
}

func shardOf(in *dynamodb.UpdateItemInput) string {
	return in.Key[AttrShard].(*types.AttributeValueMemberS).Value
}

// 6. A renewal refused with ConditionalCheckFailed drops the shard at once,
// and a fence whose shard was taken fails Check.
func TestConditionFailedDrops(t *testing.T) {
	f := newFixture(t, server(t))
	fc := &faulty{DynamoDBAPI: f.client}
	a := f.manager("a", 8, fc)
	round(t, a)
	if count(a) != 8 {
		t.Fatalf("holds %d", count(a))
	}
	// Someone else takes shard-003 and shard-005 behind a's back, and a
	// process with a's id (a misconfiguration) takes shard-006.
	for _, sh := range []string{"shard-003", "shard-005", "shard-006"} {
		owner := "intruder"
		if sh == "shard-006" {
			owner = "a"
		}
		_, err := f.client.UpdateItem(ctxT(t), &dynamodb.UpdateItemInput{
			TableName:                 aws.String(f.table),
			Key:                       key(sh),
			UpdateExpression:          aws.String("SET #o = :o, #t = #t + :one, #e = :e"),
			ExpressionAttributeNames:  map[string]string{"#o": AttrOwner, "#t": AttrToken, "#e": AttrExpires},
			ExpressionAttributeValues: map[string]types.AttributeValue{":o": avS(owner), ":one": avN(1), ":e": avN(ms(f.clock.Now().Add(time.Hour)))},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The fence of shard-005 still looks good locally; Check reads the table.
	fe, ok := a.OwnsShard("shard-005")
	if !ok {
		t.Fatal("a does not trust shard-005 yet")
	}
	err := a.Check(ctxT(t), fe)
	var lost *LostError
	if !errors.As(err, &lost) || !errors.Is(err, ErrLeaseLost) || lost.Reason != "taken" || lost.TableOwner != "intruder" || lost.TableToken != 2 {
		t.Fatalf("Check of a taken shard: %v", err)
	}
	if _, ok := a.OwnsShard("shard-005"); ok {
		t.Fatal("a still trusts shard-005 after a failed Check")
	}
	fe, _ = a.OwnsShard("shard-006")
	if err := a.Check(ctxT(t), fe); !errors.As(err, &lost) || lost.TableOwner != "a" || lost.TableToken != fe.Token+1 {
		t.Fatalf("Check of a shard taken under the same id: %v", err)
	}
	// shard-003: the renewal is refused. The round's Scan fails, so the
	// drop can only come from the renewal.
	fc.mu.Lock()
	fc.scan = errors.New("injected scan failure")
	fc.mu.Unlock()
	f.clock.Advance(renew)
	err = a.Round(ctxT(t))
	var api *APIError
	if !errors.As(err, &api) || api.Op != "Scan" {
		t.Fatalf("Round with a failing Scan: %v", err)
	}
	if _, ok := a.OwnsShard("shard-003"); ok {
		t.Fatal("a still trusts shard-003 after its renewal was refused")
	}
	if count(a) != 5 {
		t.Fatalf("a holds %d, want 5", count(a))
	}
	fc.mu.Lock()
	fc.scan = nil
	fc.mu.Unlock()
	round(t, a)
	// The intruder's leases are not expired, so a does not take them back;
	// and the intruder counts as a replica: a keeps ceil(8/2).
	if _, ok := a.OwnsShard("shard-003"); ok {
		t.Fatal("a took shard-003 back from the intruder")
	}
	for _, sh := range []string{"shard-005", "shard-006"} {
		if _, ok := a.OwnsShard(sh); ok {
			t.Fatalf("a took %s back (or adopted it)", sh)
		}
	}
	if count(a) != 4 {
		t.Fatalf("a holds %d after a full round, want 4", count(a))
	}
	// An injected ConditionalCheckFailed drops too, even while the table
	// still names a (no adoption of a lease whose renewal is refused).
	fc.mu.Lock()
	fc.update = func(in *dynamodb.UpdateItemInput) error {
		if shardOf(in) == "shard-000" {
			return &types.ConditionalCheckFailedException{Message: aws.String("injected")}
		}
		return nil
	}
	fc.mu.Unlock()
	round(t, a)
	if _, ok := a.OwnsShard("shard-000"); ok {
		t.Fatal("a trusts shard-000 after a ConditionalCheckFailed")
	}
}

// A renewal that fails for another reason keeps the shard until its local
// expiry minus the margin, and a later renewal saves it.
func TestTransientRenewalError(t *testing.T) {
	f := newFixture(t, server(t))
	fc := &faulty{DynamoDBAPI: f.client}
	a := f.manager("a", 4, fc)
	round(t, a)
	t0 := f.clock.Now()
	fc.mu.Lock()
	fc.update = func(*dynamodb.UpdateItemInput) error { return errors.New("injected: connection reset") }
	fc.mu.Unlock()
	f.clock.Advance(renew)
	err := a.Round(ctxT(t))
	var api *APIError
	if !errors.As(err, &api) || api.Op != "UpdateItem" || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Round: %v", err)
	}
	if count(a) != 4 {
		t.Fatalf("a dropped shards on a transient error: holds %d", count(a))
	}
	f.clock.Advance(t0.Add(dur - dur/10).Sub(f.clock.Now()))
	if count(a) != 0 {
		t.Fatalf("at expiry - margin a still trusts %d", count(a))
	}
	fe := Fence{Shard: "shard-000", Token: 1}
	if err := a.Check(ctxT(t), fe); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Check past the local expiry: %v", err)
	}
	fc.mu.Lock()
	fc.update = nil
	fc.mu.Unlock()
	round(t, a)
	if count(a) != 4 {
		t.Fatalf("a holds %d after the table came back", count(a))
	}
	for _, fe := range a.Held() {
		if fe.Token != 1 {
			t.Fatalf("%s: token %d, want 1 (renewed, never taken by another)", fe.Shard, fe.Token)
		}
	}
}

// Replicas that map families to shards differently hold nothing.
func TestShardCountMismatch(t *testing.T) {
	f := newFixture(t, server(t))
	a, b := f.manager("a", 8, nil), f.manager("b", 16, nil)
	round(t, a)
	err := b.Round(ctxT(t))
	var ce *ConfigError
	if !errors.As(err, &ce) || count(b) != 0 {
		t.Fatalf("b: %v, holds %d", err, count(b))
	}
	err = a.Round(ctxT(t))
	if !errors.As(err, &ce) || count(a) != 0 {
		t.Fatalf("a: %v, holds %d", err, count(a))
	}
}

// Run renews in the background on the real clock and stops with its
// context; Release then frees everything.
func TestRun(t *testing.T) {
	f := newFixture(t, server(t))
	a, err := New(Options{Client: f.client, Table: f.table, Owner: "a", Shards: 4, Duration: 600 * time.Millisecond, Renew: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for count(a) != 4 {
		if time.Now().After(deadline) {
			t.Fatal("Run took no shards in 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Past two lease periods the leases are still held: they were renewed.
	time.Sleep(1200 * time.Millisecond)
	if n := count(a); n != 4 {
		t.Fatalf("after 2 lease periods a holds %d", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if err := a.Release(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if it := f.items()[ShardName(i)]; it.expires != 0 {
			t.Fatalf("%s not released: %+v", ShardName(i), it)
		}
	}
}

// A replica that believes every shard is free (a stale view) takes none
// that another holds: the conditional write refuses.
func TestStaleViewTakesNothing(t *testing.T) {
	f := newFixture(t, server(t))
	a := f.manager("a", 8, nil)
	round(t, a)
	b := f.manager("b", 8, &faulty{DynamoDBAPI: f.client, emptyScan: true})
	f.clock.Advance(renew)
	round(t, b) // it tries all 8 and loses every race, silently
	if n := count(b); n != 0 {
		t.Fatalf("b took %d unexpired shards", n)
	}
	f.exclusive(a, b)
	for i, it := range f.items() {
		if strings.HasPrefix(i, "shard-") && (it.owner != "a" || it.token != 1) {
			t.Fatalf("%s: %+v", i, it)
		}
	}
}

// Clocks that disagree by more than the margin: the replica ahead takes a
// lease while the owner still trusts it by its own clock; Check is what
// keeps the old owner from writing. Within the margin, the owner stops
// trusting first.
func TestClockSkew(t *testing.T) {
	for _, tc := range []struct {
		skew    time.Duration
		overlap bool
	}{{skew: 2 * time.Second}, {skew: 5 * time.Second, overlap: true}} {
		t.Run(tc.skew.String(), func(t *testing.T) {
			f := newFixture(t, server(t))
			ahead := &clock{t: f.clock.Now().Add(tc.skew)}
			a := f.manager("a", 4, nil)
			b, err := New(Options{Client: f.client, Table: f.table, Owner: "b", Shards: 4, Duration: dur, Renew: renew, Clock: ahead.Now})
			if err != nil {
				t.Fatal(err)
			}
			round(t, a) // a takes all 4 at t0 by its clock
			fences := a.Held()
			overlapSeen := false
			for range 40 { // a is paused; b runs every second
				f.clock.Advance(time.Second)
				ahead.Advance(time.Second)
				round(t, b)
				if count(b) == 0 {
					continue
				}
				if _, ok := a.OwnsShard(fences[0].Shard); ok {
					overlapSeen = true
					for _, fe := range fences {
						if err := a.Check(ctxT(t), fe); !errors.Is(err, ErrLeaseLost) {
							t.Fatalf("a passed Check on %s after b took it: %v", fe.Shard, err)
						}
					}
				}
				break
			}
			if count(b) != 4 {
				t.Fatalf("b holds %d", count(b))
			}
			if overlapSeen != tc.overlap {
				t.Fatalf("skew %v: a still trusted its lease when b took it: %v, want %v", tc.skew, overlapSeen, tc.overlap)
			}
		})
	}
}

// Run tells OnRound what it holds after each round: after the first one,
// every shard of a lone replica, with the tokens the table shows.
func TestRunTellsEachRound(t *testing.T) {
	f := newFixture(t, server(t))
	rounds := make(chan []Fence, 1)
	a, err := New(Options{Client: f.client, Table: f.table, Owner: "a", Shards: 4, Clock: f.clock.Now,
		OnRound: func(held []Fence) {
			select {
			case rounds <- held:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	var held []Fence
	select {
	case held = <-rounds:
	case <-ctx.Done():
		t.Fatal("no round told")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	items := f.items()
	if len(held) != 4 {
		t.Fatalf("first round told %v, want the 4 shards", held)
	}
	for _, fe := range held {
		if it := items[fe.Shard]; it.owner != "a" || it.token != fe.Token {
			t.Errorf("told %+v, the table says %+v", fe, it)
		}
	}
}
