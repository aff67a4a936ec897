package config

import (
	"regexp"
	"time"
)

// Leases makes several replicas of the reconciler share one account, one
// writer per task definition family at a time, with shard leases in a
// DynamoDB table (internal/lease, docs/leases.md). Off (one process, the
// default) when Table is empty.
type Leases struct {
	// Table is the DynamoDB table of the leases (partition key shard, S).
	// Empty: no leases, this process writes every family.
	Table string `json:"table,omitempty"`
	// Shards is the number of shard leases families are spread over
	// (1-1000). Every replica of a table must use the same number.
	Shards int `json:"shards"`
	// Duration is the lease period: a lease not renewed for this long is
	// free. Renewals come every Duration/3; a replica stops trusting its
	// lease Duration/10 before it runs out. 3s-10m, whole milliseconds.
	Duration Duration `json:"duration"`
	// Endpoint overrides aws.endpoint for DynamoDB only, an http(s) URL
	// (tests: moto serves DynamoDB, the embedded AWS does not).
	Endpoint string `json:"endpoint,omitempty"`
	// GiveBackReceives is how many receives of an SQS message for a family
	// this replica does not own are given back to the queue, so that the
	// owner receives it; a non-owner deletes a message received more often
	// than that (the owner reconciles the family at its sweeps, and on
	// taking its shard). Keep it below the queue's maxReceiveCount, so that
	// a message that reaches its owner late still has receives left before
	// the dead-letter queue. 1-100.
	GiveBackReceives int `json:"giveBackReceives"`
}

// Bounds and defaults of leases.
const (
	DefaultLeaseShards           = 32
	DefaultLeaseDuration         = 30 * time.Second
	DefaultLeaseGiveBackReceives = 5
	MinLeaseDuration             = 3 * time.Second
	MaxLeaseDuration             = 10 * time.Minute
)

// tableNameRE is DynamoDB's table name: 3-255 of [a-zA-Z0-9_.-].
var tableNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)

// Enabled says whether leases are on.
func (l Leases) Enabled() bool { return l.Table != "" }

func defaultLeases() Leases {
	return Leases{Shards: DefaultLeaseShards, Duration: D(DefaultLeaseDuration), GiveBackReceives: DefaultLeaseGiveBackReceives}
}

func (l *Leases) validate(add func(string, string, ...any)) {
	if l.Table != "" && !tableNameRE.MatchString(l.Table) {
		add("leases.table", "must be a DynamoDB table name: 3-255 letters, digits, '_', '-' or '.'")
	}
	intRange(add, "leases.shards", l.Shards, 1, 1000)
	if d := l.Duration.Duration; d < MinLeaseDuration || d > MaxLeaseDuration || d%time.Millisecond != 0 {
		add("leases.duration", "must be whole milliseconds between %s and %s", D(MinLeaseDuration), D(MaxLeaseDuration))
	}
	if l.Endpoint != "" {
		if msg := checkHTTPURL(l.Endpoint); msg != "" {
			add("leases.endpoint", "%s", msg)
		} else if l.Table == "" {
			add("leases.endpoint", "set without leases.table: leases are off")
		}
	}
	intRange(add, "leases.giveBackReceives", l.GiveBackReceives, 1, 100)
}
