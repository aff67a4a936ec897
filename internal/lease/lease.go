package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Defaults.
const (
	DefaultShards   = 32
	DefaultDuration = 30 * time.Second
)

// Attribute names of the table's items.
const (
	AttrShard   = "shard"   // partition key (S)
	AttrOwner   = "owner"   // replica id (S)
	AttrExpires = "expires" // unix ms (N)
	AttrToken   = "token"   // fencing token (N), shard items only
	AttrRenewed = "renewed" // unix ms (N)
	AttrShards  = "shards"  // the replica's shard count (N), member items only
)

const memberPrefix = "member-"

// DynamoDBAPI is the part of the DynamoDB client the manager uses.
type DynamoDBAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// CreateTableInput is the table's schema: partition key shard (S), billed on
// demand. The CloudFormation template must create the same.
func CreateTableInput(table string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(AttrShard), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(AttrShard), KeyType: types.KeyTypeHash}},
	}
}

// ShardOf is the shard number of a family among n shards: FNV-1a (32 bits)
// of the family name mod n. It must never change: replicas of different
// releases share a table.
func ShardOf(family string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(family))
	return int(h.Sum32() % uint32(n))
}

// ShardName is the partition key of shard i: "shard-000", "shard-001", ...
func ShardName(i int) string { return fmt.Sprintf("shard-%03d", i) }

// Fence is the proof of a lease: the shard and the fencing token this
// replica got when it took it. Check verifies it against the table.
type Fence struct {
	Shard string
	Token int64
}

// ErrLeaseLost is what Check's errors and the errors about lost leases match
// with errors.Is.
var ErrLeaseLost = errors.New("lease lost")

// LostError says that a lease is not, or no longer, this replica's.
type LostError struct {
	Shard      string
	Token      int64  // the token this replica held (0 if none)
	Reason     string // "expired", "taken", "not held", "superseded"
	TableOwner string // the owner the table shows, if read
	TableToken int64  // the token the table shows, if read
}

func (e *LostError) Error() string {
	s := fmt.Sprintf("lease %s (token %d) lost: %s", e.Shard, e.Token, e.Reason)
	if e.TableOwner != "" || e.TableToken != 0 {
		s += fmt.Sprintf(" (table: owner %q, token %d)", e.TableOwner, e.TableToken)
	}
	return s
}

// Is makes errors.Is(err, ErrLeaseLost) true.
func (e *LostError) Is(target error) bool { return target == ErrLeaseLost }

// APIError is a failed DynamoDB call; it wraps the SDK's error, so
// errors.As finds *types.ConditionalCheckFailedException and the like.
type APIError struct {
	Op    string // the DynamoDB operation
	Shard string // the item's key, if one
	Err   error
}

func (e *APIError) Error() string {
	if e.Shard != "" {
		return fmt.Sprintf("lease: dynamodb %s %s: %v", e.Op, e.Shard, e.Err)
	}
	return fmt.Sprintf("lease: dynamodb %s: %v", e.Op, e.Err)
}

func (e *APIError) Unwrap() error { return e.Err }

// ConfigError is a manager that cannot work as configured, or a table
// shared with replicas that shard differently.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return "lease: " + e.Msg }

// IsConditionFailed reports whether err is DynamoDB's
// ConditionalCheckFailedException.
func IsConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// Options configure a Manager.
type Options struct {
	Client DynamoDBAPI
	Table  string
	// Owner is this replica's id; default hostname + "-" + 12 random hex
	// digits. It must be unique among running replicas.
	Owner string
	// Shards is N, the same for every replica of a table; default 32.
	Shards int
	// Duration is the lease period; default 30 s.
	Duration time.Duration
	// Renew is the round period of Run; default Duration/3.
	Renew time.Duration
	// Margin is how long before its expiry a lease stops counting for Owns
	// and Check; default Duration/10. Clocks must agree within it.
	Margin time.Duration
	Clock  func() time.Time
	Logger *slog.Logger
	// OnRound, when set, is told after each round of Run (failed or not)
	// the fences this replica holds and trusts then (Held): the wiring
	// learns from it which shards were gained or lost, and when the first
	// round is done.
	OnRound func(held []Fence)
}

type held struct {
	token   int64
	expires time.Time // by this replica's clock: the time before the write + Duration
}

// Manager holds and renews this replica's shard leases.
type Manager struct {
	o     Options
	log   *slog.Logger
	round sync.Mutex // one Round or Release at a time

	mu   sync.Mutex
	held map[string]held
}

// New checks the options and fills in the defaults.
func New(o Options) (*Manager, error) {
	if o.Client == nil || o.Table == "" {
		return nil, &ConfigError{Msg: "a client and a table name are needed"}
	}
	if o.Shards == 0 {
		o.Shards = DefaultShards
	}
	if o.Shards < 1 || o.Shards > 1000 {
		return nil, &ConfigError{Msg: fmt.Sprintf("shards %d: want 1..1000", o.Shards)}
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Renew == 0 {
		o.Renew = o.Duration / 3
	}
	if o.Margin == 0 {
		o.Margin = o.Duration / 10
	}
	if o.Duration <= 0 || o.Renew <= 0 || o.Margin < 0 || o.Renew+o.Margin >= o.Duration {
		return nil, &ConfigError{Msg: fmt.Sprintf("duration %v, renew %v, margin %v: want renew + margin < duration", o.Duration, o.Renew, o.Margin)}
	}
	if o.Owner == "" {
		id, err := defaultOwner()
		if err != nil {
			return nil, err
		}
		o.Owner = id
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{o: o, log: o.Logger.With("lease_owner", o.Owner), held: map[string]held{}}, nil
}

func defaultOwner() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "replica"
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("lease: owner id: %w", err)
	}
	return host + "-" + hex.EncodeToString(b), nil
}

// Owner is this replica's id.
func (m *Manager) Owner() string { return m.o.Owner }

// ShardFor is the shard name of a family.
func (m *Manager) ShardFor(family string) string { return ShardName(ShardOf(family, m.o.Shards)) }

// Owns says whether this replica holds the family's shard, with a lease that
// has not run out by its own clock minus the margin, and returns the fence
// to Check before writing. It does no I/O.
func (m *Manager) Owns(family string) (Fence, bool) {
	return m.OwnsShard(m.ShardFor(family))
}

// OwnsShard is Owns for a shard name.
func (m *Manager) OwnsShard(shard string) (Fence, bool) {
	now := m.o.Clock()
	m.mu.Lock()
	h, ok := m.held[shard]
	m.mu.Unlock()
	if !ok || !now.Before(h.expires.Add(-m.o.Margin)) {
		return Fence{}, false
	}
	return Fence{Shard: shard, Token: h.token}, true
}

// Held is the fences of the shards this replica holds and trusts now, by
// shard name.
func (m *Manager) Held() []Fence {
	var out []Fence
	for _, s := range m.heldNames() {
		if f, ok := m.OwnsShard(s); ok {
			out = append(out, f)
		}
	}
	return out
}

// Check verifies a fence before a write batch: the lease must not have run
// out by this replica's clock, and a strongly consistent read of the shard
// must show this replica as owner with the fence's token. A failure matches
// ErrLeaseLost, or is an *APIError if the table could not be read; either
// way the batch must not be written.
func (m *Manager) Check(ctx context.Context, f Fence) error {
	mine, ok := m.OwnsShard(f.Shard)
	if !ok || mine.Token != f.Token {
		reason := "not held"
		if ok {
			reason = "superseded"
		} else if m.holds(f.Shard, f.Token) {
			reason = "expired"
		}
		return &LostError{Shard: f.Shard, Token: f.Token, Reason: reason}
	}
	out, err := m.o.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(m.o.Table),
		Key:            key(f.Shard),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return &APIError{Op: "GetItem", Shard: f.Shard, Err: err}
	}
	it := parse(out.Item)
	if it.owner != m.o.Owner || it.token != f.Token {
		m.drop(f.Shard, f.Token, "taken")
		return &LostError{Shard: f.Shard, Token: f.Token, Reason: "taken", TableOwner: it.owner, TableToken: it.token}
	}
	// The read may have been slow: the lease must still hold now.
	if _, ok := m.OwnsShard(f.Shard); !ok {
		return &LostError{Shard: f.Shard, Token: f.Token, Reason: "expired"}
	}
	return nil
}

func (m *Manager) holds(shard string, token int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.held[shard]
	return ok && h.token == token
}

// drop forgets a shard if it is still held with that token.
func (m *Manager) drop(shard string, token int64, why string) {
	m.mu.Lock()
	h, ok := m.held[shard]
	if ok && h.token == token {
		delete(m.held, shard)
	}
	m.mu.Unlock()
	if ok && h.token == token {
		m.log.Info("lease dropped", "shard", shard, "token", token, "reason", why)
	}
}

// Run does a Round at once and then every Renew period until ctx ends; it
// returns nil then. Errors of a round are logged and the next round retries.
// Call Release after it returns, with a fresh context, to hand the shards
// over at once.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.o.Renew)
	defer t.Stop()
	for {
		if err := m.Round(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("lease round failed; the next one retries", "err", err)
		}
		if m.o.OnRound != nil && ctx.Err() == nil {
			m.o.OnRound(m.Held())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type item struct {
	shard   string
	owner   string
	expires int64
	token   int64
	shards  int64
	exists  bool
}

func parse(av map[string]types.AttributeValue) item {
	var it item
	if len(av) == 0 {
		return it
	}
	it.exists = true
	if v, ok := av[AttrShard].(*types.AttributeValueMemberS); ok {
		it.shard = v.Value
	}
	if v, ok := av[AttrOwner].(*types.AttributeValueMemberS); ok {
		it.owner = v.Value
	}
	it.expires = num(av[AttrExpires])
	it.token = num(av[AttrToken])
	it.shards = num(av[AttrShards])
	return it
}

func num(v types.AttributeValue) int64 {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	i, _ := strconv.ParseInt(n.Value, 10, 64)
	return i
}

func key(shard string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrShard: &types.AttributeValueMemberS{Value: shard}}
}

func avN(i int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(i, 10)}
}

func avS(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func ms(t time.Time) int64 { return t.UnixMilli() }

// Round is one step of Run: renew, heartbeat, scan, balance, acquire (see
// the package doc). It returns the errors of the calls that failed, joined;
// losing a race for a free shard is not an error.
func (m *Manager) Round(ctx context.Context) error {
	m.round.Lock()
	defer m.round.Unlock()
	var errs []error

	// Renewals first: nothing may delay them.
	errs = append(errs, m.renewAll(ctx)...)
	if err := m.heartbeat(ctx); err != nil {
		errs = append(errs, err)
	}

	items, err := m.scan(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	now := ms(m.o.Clock())
	owners := map[string]bool{m.o.Owner: true}
	shards := map[string]item{}
	for _, it := range items {
		switch {
		case strings.HasPrefix(it.shard, memberPrefix):
			if it.expires > now && it.owner != m.o.Owner {
				if it.shards != 0 && it.shards != int64(m.o.Shards) {
					// Two mappings of families to shards would give a
					// family two owners: hold nothing until it is gone.
					errs = append(errs, m.releaseAll(ctx, "shard count mismatch")...)
					errs = append(errs, &ConfigError{Msg: fmt.Sprintf("replica %s uses %d shards, this one %d: holding no shard until they agree", it.owner, it.shards, m.o.Shards)})
					return errors.Join(errs...)
				}
				owners[it.owner] = true
			}
		default:
			shards[it.shard] = it
			if it.expires > now && it.owner != "" {
				owners[it.owner] = true
			}
		}
	}

	// What the table says about the shards we hold: someone else's now?
	m.mu.Lock()
	for sh, h := range m.held {
		if it := shards[sh]; it.owner != m.o.Owner || it.token != h.token {
			delete(m.held, sh)
			m.log.Info("lease dropped", "shard", sh, "token", h.token, "reason", "taken", "table_owner", it.owner, "table_token", it.token)
		}
	}
	count := len(m.held)
	m.mu.Unlock()

	target := (m.o.Shards + len(owners) - 1) / len(owners)
	if count > target {
		errs = append(errs, m.shed(ctx, count-target)...)
		return errors.Join(errs...)
	}

	// Free shards, in this replica's order. An unexpired item that names
	// this replica but that it does not hold (an acquisition whose answer
	// was lost) is not adopted: it runs out and is taken with a new token.
	var free []string
	for i := range m.o.Shards {
		sh := ShardName(i)
		if m.isHeld(sh) {
			continue // renewed above, or past its local expiry: renewal will tell
		}
		if it := shards[sh]; !it.exists || it.expires < now {
			free = append(free, sh)
		}
	}
	slices.SortFunc(free, func(a, b string) int { return cmpHash(m.o.Owner, a, b) })
	for _, sh := range free {
		if count >= target {
			break
		}
		ok, err := m.acquire(ctx, sh)
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			count++
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) isHeld(shard string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.held[shard]
	return ok
}

func cmpHash(owner, a, b string) int {
	ha, hb := hash32(owner+"/"+a), hash32(owner+"/"+b)
	switch {
	case ha < hb:
		return -1
	case ha > hb:
		return 1
	}
	return strings.Compare(a, b)
}

func hash32(v string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(v))
	return h.Sum32()
}

func (m *Manager) heartbeat(ctx context.Context) error {
	now := m.o.Clock()
	_, err := m.o.Client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(m.o.Table),
		Item: map[string]types.AttributeValue{
			AttrShard:   avS(memberPrefix + m.o.Owner),
			AttrOwner:   avS(m.o.Owner),
			AttrExpires: avN(ms(now.Add(m.o.Duration))),
			AttrRenewed: avN(ms(now)),
			AttrShards:  avN(int64(m.o.Shards)),
		},
	})
	if err != nil {
		return &APIError{Op: "PutItem", Shard: memberPrefix + m.o.Owner, Err: err}
	}
	return nil
}

func (m *Manager) renewAll(ctx context.Context) []error {
	m.mu.Lock()
	type sh struct {
		name  string
		token int64
	}
	var list []sh
	for name, h := range m.held {
		list = append(list, sh{name, h.token})
	}
	m.mu.Unlock()
	slices.SortFunc(list, func(a, b sh) int { return strings.Compare(a.name, b.name) })
	var errs []error
	for _, h := range list {
		if _, err := m.renew(ctx, h.name, h.token); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// renew extends a lease held with token. It returns false, nil when the
// condition failed: the shard is then dropped.
func (m *Manager) renew(ctx context.Context, shard string, token int64) (bool, error) {
	now := m.o.Clock()
	err := m.setExpiry(ctx, shard, token, now.Add(m.o.Duration), now)
	if IsConditionFailed(err) {
		m.drop(shard, token, "renewal refused: owner or token changed")
		return false, nil
	}
	if err != nil {
		// Keep the shard: the lease may still be ours. Its local expiry
		// is not extended, so Owns turns false on time.
		return false, &APIError{Op: "UpdateItem", Shard: shard, Err: err}
	}
	m.mu.Lock()
	if h, ok := m.held[shard]; ok && h.token == token {
		m.held[shard] = held{token: token, expires: now.Add(m.o.Duration)}
	}
	m.mu.Unlock()
	return true, nil
}

// acquire takes a free shard, incrementing its token.
func (m *Manager) acquire(ctx context.Context, shard string) (bool, error) {
	now := m.o.Clock()
	out, err := m.o.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(m.o.Table),
		Key:                 key(shard),
		UpdateExpression:    aws.String("SET #o = :me, #e = :exp, #r = :now, #t = if_not_exists(#t, :zero) + :one"),
		ConditionExpression: aws.String("attribute_not_exists(#s) OR #e < :now"),
		ExpressionAttributeNames: map[string]string{
			"#s": AttrShard, "#o": AttrOwner, "#e": AttrExpires, "#r": AttrRenewed, "#t": AttrToken,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me":   avS(m.o.Owner),
			":exp":  avN(ms(now.Add(m.o.Duration))),
			":now":  avN(ms(now)),
			":zero": avN(0),
			":one":  avN(1),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if IsConditionFailed(err) {
		return false, nil // another replica was faster
	}
	if err != nil {
		return false, &APIError{Op: "UpdateItem", Shard: shard, Err: err}
	}
	it := parse(out.Attributes)
	if it.owner != m.o.Owner || it.token <= 0 {
		return false, &APIError{Op: "UpdateItem", Shard: shard, Err: fmt.Errorf("unexpected item after acquisition: owner %q, token %d", it.owner, it.token)}
	}
	m.mu.Lock()
	m.held[shard] = held{token: it.token, expires: now.Add(m.o.Duration)}
	m.mu.Unlock()
	m.log.Info("lease acquired", "shard", shard, "token", it.token)
	return true, nil
}

func (m *Manager) scan(ctx context.Context) ([]item, error) {
	var out []item
	var start map[string]types.AttributeValue
	for {
		page, err := m.o.Client.Scan(ctx, &dynamodb.ScanInput{
			TableName:         aws.String(m.o.Table),
			ConsistentRead:    aws.Bool(true),
			ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, &APIError{Op: "Scan", Err: err}
		}
		for _, av := range page.Items {
			out = append(out, parse(av))
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = page.LastEvaluatedKey
	}
}

// shed gives up k held shards, the highest numbers first.
func (m *Manager) shed(ctx context.Context, k int) []error {
	m.mu.Lock()
	names := make([]string, 0, len(m.held))
	for sh := range m.held {
		names = append(names, sh)
	}
	m.mu.Unlock()
	slices.Sort(names)
	slices.Reverse(names)
	var errs []error
	for _, sh := range names[:min(k, len(names))] {
		if err := m.giveUp(ctx, sh, "rebalance"); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func (m *Manager) releaseAll(ctx context.Context, why string) []error {
	var errs []error
	for _, sh := range m.heldNames() {
		if err := m.giveUp(ctx, sh, why); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// giveUp forgets a shard first (Owns turns false before the table says it
// is free) and then expires it in the table, if it is still ours. The token
// is kept, so the next owner's is greater.
func (m *Manager) giveUp(ctx context.Context, shard, why string) error {
	m.mu.Lock()
	h, ok := m.held[shard]
	delete(m.held, shard)
	m.mu.Unlock()
	if !ok {
		return nil
	}
	err := m.setExpiry(ctx, shard, h.token, time.UnixMilli(0), m.o.Clock())
	m.log.Info("lease released", "shard", shard, "token", h.token, "reason", why)
	if err != nil && !IsConditionFailed(err) {
		// It runs out by itself within a lease period.
		return &APIError{Op: "UpdateItem", Shard: shard, Err: err}
	}
	return nil
}

// Release gives up every held shard and deletes the member item, so that
// the other replicas take the shards on their next round (call it on
// SIGTERM, after the last write batch, with a context of its own). Owns is
// false for every family as soon as Release starts. A shard it could not
// expire runs out within a lease period.
func (m *Manager) Release(ctx context.Context) error {
	m.round.Lock()
	defer m.round.Unlock()
	errs := m.releaseAll(ctx, "release")
	if _, err := m.o.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(m.o.Table),
		Key:       key(memberPrefix + m.o.Owner),
	}); err != nil {
		errs = append(errs, &APIError{Op: "DeleteItem", Shard: memberPrefix + m.o.Owner, Err: err})
	}
	return errors.Join(errs...)
}

// heldNames is the names of the shards held, sorted.
func (m *Manager) heldNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.held))
}

// setExpiry writes a shard's expiry (and when it was written), on the
// condition that this replica still holds it with token: renewal extends
// it, giving up sets it to 0 (the epoch).
func (m *Manager) setExpiry(ctx context.Context, shard string, token int64, expires, now time.Time) error {
	_, err := m.o.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(m.o.Table),
		Key:                 key(shard),
		UpdateExpression:    aws.String("SET #e = :exp, #r = :now"),
		ConditionExpression: aws.String("#o = :me AND #t = :tok"),
		ExpressionAttributeNames: map[string]string{
			"#e": AttrExpires, "#r": AttrRenewed, "#o": AttrOwner, "#t": AttrToken,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":exp": avN(ms(expires)),
			":now": avN(ms(now)),
			":me":  avS(m.o.Owner),
			":tok": avN(token),
		},
	})
	return err
}
