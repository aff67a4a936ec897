// Package lease keeps a single writer per task definition family across
// replicas of the reconciler, with leases in a DynamoDB table.
//
// # Shards, not families
//
// Families are not leased one by one: an account has thousands of them, and
// a lease per family would be thousands of items, each renewed every few
// seconds, so thousands of writes per renewal period for nothing. Instead the
// table holds a fixed number N of shard leases ("shard-000" .. "shard-031"
// for the default N = 32), and a family belongs to shard
// FNV-1a-32(family) mod N. The hash is stable across processes and
// releases, so every replica maps a family to the same shard without talking
// to the others. N is fixed for the life of a table: every replica must use
// the same N (each replica writes its N into its member item, and a replica
// that sees another N holds nothing until the mismatch is gone, because two
// mappings would let two replicas own one family). N bounds how finely work
// spreads: with 32 shards, up to 32 replicas have work.
//
// # Items
//
// Partition key shard (S). A shard item has owner (S, the replica id),
// expires (N, unix milliseconds by the owner's clock), token (N, the fencing
// token, incremented on every acquisition and never reset) and renewed (N,
// unix ms of the last renewal). Besides the shard items, each running replica
// keeps a member item, shard = "member-" + owner, with owner, expires,
// renewed and shards (its N): it makes a replica that holds no shard yet
// visible to the others, so that they make room for it.
//
// # A round
//
// Manager.Round is one step of the loop that Manager.Run repeats every Renew
// period (default Duration/3, Duration default 30 s):
//
//  1. renew every held shard: UpdateItem expires = now + Duration with the
//     condition owner = :me AND token = :tok. A ConditionalCheckFailed means
//     that someone else holds the shard now: it is dropped at once. Any other
//     error keeps the shard, but its local expiry is not extended, so Owns
//     turns false on time if the table stays out of reach;
//  2. write the member item (PutItem);
//  3. Scan the table (strongly consistent) and count the replicas: the
//     distinct owners of unexpired shard leases and unexpired member items,
//     this replica included. The target is ceil(N / replicas);
//  4. if this replica holds more than the target, it releases the excess
//     (the highest shard numbers) by expiring them, so that a replica that
//     joined takes them on its next round;
//  5. below the target, it tries to take free shards (no item, expired, or
//     released): UpdateItem owner = :me, expires = now + Duration,
//     token = token + 1, with the condition attribute_not_exists(shard) OR
//     expires < :now. Losing that race to another replica is normal and
//     silent. Each replica tries the free shards in its own order (a hash of
//     its id and the shard), so that two replicas rarely race for the same
//     one.
//
// The balance is deliberately simple: every replica aims at the same
// ceil(N / replicas), from the same table. Replicas that disagree for a round
// (one has seen a new member, another not yet) only delay the spread by a
// round; they never make two owners, because taking a shard is a conditional
// write. Two replicas settle at 16 shards each, three at 11, 11 and 10.
//
// Release (on SIGTERM) expires every held shard and deletes the member item:
// the other replicas take the shards on their next round, not a lease
// period later. Shard items are expired, never deleted, so that the token of
// a shard only grows.
//
// # Fencing
//
// Owns(family) says, without I/O, whether this replica holds the family's
// shard and its lease has not run out by its own clock minus a safety margin
// (default Duration/10); it returns the shard's Fence (shard and token).
// Check(ctx, fence) re-reads the shard item with a strongly consistent
// GetItem and fails with ErrLeaseLost if the owner or the token differ, or if
// the lease ran out locally. The controller runs Check before every write
// batch for a family. A replica that was paused (GC, a stopped container, a
// partition) and lost its lease meanwhile fails Check at the next batch, so
// it makes no write after it knows, or could know, it lost the lease.
//
// What remains is the window between a Check that passed and the writes that
// follow it: a replica paused exactly there writes after its lease was taken.
// The usual cure is to send the token to the storage, which refuses writes
// with an older token; ECS has no conditional writes (RegisterTaskDefinition
// and UpdateService take no precondition), so checking right before the batch
// is the best that can be done, and it bounds a double write to that window
// (milliseconds, unless the process is paused right there). The reconciler's
// writes are idempotent and level-triggered, so a late write from a stale
// replica is undone or confirmed by the new owner's next reconcile.
//
// # Clocks
//
// Expiries are written by the owner's clock and compared by the taker's, so
// the replicas' clocks must agree within the safety margin (3 s at the
// default 30 s Duration): the owner stops trusting its lease at
// expires - margin by its clock, another replica takes it after expires by
// its own. Amazon Time Sync keeps ECS tasks within milliseconds. The local
// expiry is computed from the time read before the renewal was sent, so a
// slow response shortens the lease as this replica sees it, never lengthens
// it. A clock that jumps forward only makes a replica give up early; a clock
// of another replica that runs ahead by more than the margin can take a lease
// early, and then only Check stands between the old owner and a double write.
//
// # Costs
//
// On-demand, every write of an item under 1 KB is one write request unit, a
// strongly consistent read of under 4 KB one read unit. A replica's round is
// one UpdateItem per held shard, one member PutItem, one Scan (N + replicas
// items of about 100 bytes, one read unit per 4 KB: 1 for the defaults) and
// a write per shard it takes or gives. In steady state the writes per Renew period
// over all replicas are N + replicas, whatever the number of families; each
// Check is one read unit. docs/leases.md has the numbers for the defaults.
package lease
