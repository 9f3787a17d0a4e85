package act

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Ledger is the Redis record of actions that makes them idempotent across redelivery, crashes
// and replicas. Keys live under <prefix>:act: (or <prefix>:act-dry: for dry-run playbooks, so a
// shadow playbook never suppresses a real one).
//
// One action on one target is a claim, keyed (playbook, step, target), that lives for the
// playbook's window: whoever creates it acts; everyone else within the window sees it. A claim is
// pending while its owner works and done once the sink answered. A pending claim whose owner is
// no longer alive (its liveness key lapsed: a crash) is taken over, and the action is repeated
// under the same idempotency key, after asking the sink whether it already happened (Finder).
type Ledger struct {
	rdb    redis.UniversalClient
	prefix string
	owner  string
	now    func() time.Time
}

// Claim states.
const (
	StatePending = "pending"
	StateDone    = "done"
)

// Claim is what the ledger holds for one action on one target.
type Claim struct {
	State string `json:"state"`
	// Key is the idempotency key sent to the sink; a repeat after a crash reuses it.
	Key   string    `json:"key"`
	Owner string    `json:"owner"`
	At    time.Time `json:"at"`
	Ref   string    `json:"ref,omitempty"`
}

// NewLedger returns a ledger writing under prefix as owner (unique per process).
func NewLedger(rdb redis.UniversalClient, prefix, owner string) *Ledger {
	return &Ledger{rdb: rdb, prefix: prefix, owner: owner, now: time.Now}
}

// Owner is this process's identity in claims.
func (l *Ledger) Owner() string { return l.owner }

func (l *Ledger) key(ns, kind, rest string) string {
	return l.prefix + ":" + ns + ":" + kind + ":" + rest
}

func namespace(dry bool) string {
	if dry {
		return "act-dry"
	}
	return "act"
}

// actionTag is the Redis Cluster hash tag of one action on one target: its claim and its seen
// events share a slot, so that Done can write both in one transaction (a cluster rejects a
// transaction across slots).
func actionTag(playbook, step, target string) string {
	return "{" + playbook + ":" + step + ":" + target + "}"
}

func (l *Ledger) claimKey(dry bool, playbook, step, target string) string {
	return l.key(namespace(dry), "claim", actionTag(playbook, step, target))
}

func (l *Ledger) aliveKey(owner string) string { return l.key("act", "alive", owner) }

// aliveTTL is how long an owner counts as alive after its last heartbeat.
const aliveTTL = 6 * time.Second

// Heartbeat keeps this owner alive until ctx ends; a crashed owner's pending claims are taken
// over about aliveTTL after its last beat.
func (l *Ledger) Heartbeat(ctx context.Context) error {
	t := time.NewTicker(aliveTTL / 3)
	defer t.Stop()
	for {
		_ = l.rdb.Set(ctx, l.aliveKey(l.owner), "1", aliveTTL).Err()
		select {
		case <-t.C:
		case <-ctx.Done():
			// A clean exit frees its claims for takeover at once.
			_ = l.rdb.Del(context.WithoutCancel(ctx), l.aliveKey(l.owner)).Err()
			return nil
		}
	}
}

// Outcome of a Claim call.
type ClaimResult int

// Claim results.
const (
	// Claimed: this worker must act, with the returned claim's key.
	Claimed ClaimResult = iota
	// TakenOver: a crashed owner left the claim pending; this worker must finish it (asking
	// the sink first whether it already happened).
	TakenOver
	// AlreadyDone: the action happened within the window; the claim holds its reference.
	AlreadyDone
)

// claimScript creates the claim, or returns the existing one. KEYS[1] claim; ARGV[1] new claim
// JSON; ARGV[2] window in ms.
var claimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, ARGV[1]}
end
return {0, cur}`)

// takeoverScript replaces a pending claim if it is still exactly what we read.
var takeoverScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0`)

// ErrBusy means another live worker holds the claim pending; try again shortly.
var ErrBusy = errors.New("another worker is performing this action")

// Claim claims (playbook, step, target) for window, or reports how it stands.
func (l *Ledger) Claim(ctx context.Context, dry bool, playbook, step, target string, window time.Duration) (ClaimResult, *Claim, error) {
	key := l.claimKey(dry, playbook, step, target)
	mine := Claim{State: StatePending, Key: newActionKey(), Owner: l.owner, At: l.now().UTC()}
	raw, _ := json.Marshal(mine)
	reply, err := claimScript.Run(ctx, l.rdb, []string{key}, raw, window.Milliseconds()).Slice()
	if err != nil {
		return 0, nil, fmt.Errorf("ledger: claim: %w", err)
	}
	if created, _ := reply[0].(int64); created == 1 {
		return Claimed, &mine, nil
	}
	curRaw, _ := reply[1].(string)
	var cur Claim
	if err := json.Unmarshal([]byte(curRaw), &cur); err != nil {
		return 0, nil, fmt.Errorf("ledger: unreadable claim %s: %w", key, err)
	}
	if cur.State == StateDone {
		return AlreadyDone, &cur, nil
	}
	alive, err := l.rdb.Exists(ctx, l.aliveKey(cur.Owner)).Result()
	if err != nil {
		return 0, nil, fmt.Errorf("ledger: liveness: %w", err)
	}
	if alive == 1 || cur.Owner == l.owner {
		// A live owner, or another goroutine of this process, is acting right now.
		return 0, &cur, ErrBusy
	}
	taken := cur
	taken.Owner = l.owner // At stays the original claim time: how long ago the lost action began
	takenRaw, _ := json.Marshal(taken)
	ok, err := takeoverScript.Run(ctx, l.rdb, []string{key}, curRaw, takenRaw).Int()
	if err != nil {
		return 0, nil, fmt.Errorf("ledger: takeover: %w", err)
	}
	if ok != 1 {
		return 0, &cur, ErrBusy // someone else moved first; look again
	}
	return TakenOver, &taken, nil
}

// Done records that the claimed action happened, with the sink's reference, and that eventID was
// handled: both in one transaction, so a crash leaves either a pending claim (taken over and
// checked with the sink) or a finished one whose event is known, never a finished claim that a
// redelivery of the same event would act on again.
func (l *Ledger) Done(ctx context.Context, dry bool, playbook, step, target string, c *Claim, ref, eventID string, window time.Duration) error {
	done := *c
	done.State, done.Ref = StateDone, ref
	raw, _ := json.Marshal(done)
	pipe := l.rdb.TxPipeline()
	pipe.SetArgs(ctx, l.claimKey(dry, playbook, step, target), raw, redis.SetArgs{KeepTTL: true, Mode: "XX"})
	pipe.Set(ctx, l.seenKey(dry, playbook, step, target, eventID), "1", window)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("ledger: done: %w", err)
	}
	return nil
}

// Release drops a claim whose action failed, so that a later event tries again.
func (l *Ledger) Release(ctx context.Context, dry bool, playbook, step, target string) error {
	return l.rdb.Del(ctx, l.claimKey(dry, playbook, step, target)).Err()
}

// Seen reports whether this event was already handled for (playbook, step, target), which is
// what tells a redelivered event from a new sighting of the same target.
func (l *Ledger) Seen(ctx context.Context, dry bool, playbook, step, target, eventID string) (bool, error) {
	n, err := l.rdb.Exists(ctx, l.seenKey(dry, playbook, step, target, eventID)).Result()
	return n == 1, err
}

// MarkSeen records the event as handled for window.
func (l *Ledger) MarkSeen(ctx context.Context, dry bool, playbook, step, target, eventID string, window time.Duration) error {
	return l.rdb.Set(ctx, l.seenKey(dry, playbook, step, target, eventID), "1", window).Err()
}

func (l *Ledger) seenKey(dry bool, playbook, step, target, eventID string) string {
	return l.key(namespace(dry), "seen", actionTag(playbook, step, target)+":"+eventID)
}

// Offence counts a new block of target and returns how many it has had within memory
// (1 for a first offence).
func (l *Ledger) Offence(ctx context.Context, dry bool, target string, memory time.Duration) (int64, error) {
	key := l.key(namespace(dry), "offences", target)
	pipe := l.rdb.TxPipeline()
	n := pipe.Incr(ctx, key)
	pipe.Expire(ctx, key, memory)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("ledger: offence: %w", err)
	}
	return n.Val(), nil
}

// ActiveBlock is a block the ledger holds until it is lifted.
type ActiveBlock struct {
	Sink     string    `json:"sink"`
	Target   string    `json:"target"`
	Key      string    `json:"key"`
	Ref      string    `json:"ref,omitempty"`
	Playbook string    `json:"playbook"`
	Step     string    `json:"step"`
	Until    time.Time `json:"until"`
}

// The two block keys share the Redis Cluster hash tag {blocks}: the scripts below touch both.
func (l *Ledger) blocksKey() string          { return l.key("act", "blocks", "{blocks}:due") }
func (l *Ledger) blockInfoKey() string       { return l.key("act", "blocks", "{blocks}:info") }
func blockMember(sink, target string) string { return sink + "|" + target }

// addBlockScript records a block unless the sink already holds the target at least as long.
// KEYS[1] due set, KEYS[2] records; ARGV[1] member, ARGV[2] until (ms), ARGV[3] record.
var addBlockScript = redis.NewScript(`
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if cur and tonumber(cur) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1`)

// AddBlock records an active block until b.Until; a longer later block of the same target on
// the same sink replaces it, a shorter one leaves it be (the target stays blocked until the
// longer one lapses).
func (l *Ledger) AddBlock(ctx context.Context, b ActiveBlock) error {
	raw, _ := json.Marshal(b)
	return addBlockScript.Run(ctx, l.rdb, []string{l.blocksKey(), l.blockInfoKey()},
		blockMember(b.Sink, b.Target), b.Until.UnixMilli(), raw).Err()
}

// Active returns the blocks of sink that have not expired, by target.
func (l *Ledger) Active(ctx context.Context, sink string) (map[string]time.Time, error) {
	members, err := l.rdb.ZRangeByScore(ctx, l.blocksKey(), &redis.ZRangeBy{
		Min: strconv.FormatInt(l.now().UnixMilli()+1, 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time)
	if len(members) == 0 {
		return out, nil
	}
	raws, err := l.rdb.HMGet(ctx, l.blockInfoKey(), members...).Result()
	if err != nil {
		return nil, err
	}
	for _, r := range raws {
		s, _ := r.(string)
		var b ActiveBlock
		if json.Unmarshal([]byte(s), &b) == nil && b.Sink == sink {
			out[b.Target] = b.Until
		}
	}
	return out, nil
}

// popDueScript removes up to ARGV[2] due members and returns them with their records: the
// replica that pops a block is the one that lifts it.
var popDueScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  local info = redis.call('HGET', KEYS[2], m)
  redis.call('HDEL', KEYS[2], m)
  if info then table.insert(out, info) end
end
return out`)

// PopDue takes up to n expired blocks out of the ledger for lifting.
func (l *Ledger) PopDue(ctx context.Context, n int) ([]ActiveBlock, error) {
	raws, err := popDueScript.Run(ctx, l.rdb, []string{l.blocksKey(), l.blockInfoKey()}, l.now().UnixMilli(), n).StringSlice()
	if err != nil {
		return nil, err
	}
	out := make([]ActiveBlock, 0, len(raws))
	for _, r := range raws {
		var b ActiveBlock
		if json.Unmarshal([]byte(r), &b) == nil {
			out = append(out, b)
		}
	}
	return out, nil
}

// Pending is an undoable alert (a page) to resolve when its target's block is lifted.
type Pending struct {
	Sink     string `json:"sink"`
	Key      string `json:"key"`
	Ref      string `json:"ref"`
	Playbook string `json:"playbook"`
	Step     string `json:"step"`
}

func (l *Ledger) resolveKey(target string) string { return l.key("act", "resolve", target) }

// AddResolve remembers an undoable alert on target for memory.
func (l *Ledger) AddResolve(ctx context.Context, target string, p Pending, memory time.Duration) error {
	raw, _ := json.Marshal(p)
	pipe := l.rdb.TxPipeline()
	pipe.HSet(ctx, l.resolveKey(target), p.Sink+"|"+p.Playbook+"|"+p.Step, raw)
	pipe.Expire(ctx, l.resolveKey(target), memory)
	_, err := pipe.Exec(ctx)
	return err
}

// TakeResolves returns and forgets the undoable alerts on target.
func (l *Ledger) TakeResolves(ctx context.Context, target string) ([]Pending, error) {
	pipe := l.rdb.TxPipeline()
	all := pipe.HGetAll(ctx, l.resolveKey(target))
	pipe.Del(ctx, l.resolveKey(target))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	var out []Pending
	for _, raw := range all.Val() {
		var p Pending
		if json.Unmarshal([]byte(raw), &p) == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// countBlockScript records one new block at ARGV[1] (ms) under a unique member ARGV[2] in a
// sliding 60-second window and returns how many the window holds.
var countBlockScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - 60000)
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], 120000)
return redis.call('ZCARD', KEYS[1])`)

// CountBlock counts one new block across replicas in the last 60 seconds (a sliding window, so
// a flood cannot double the cap by straddling a minute boundary) and reports whether the cap
// is exceeded.
func (l *Ledger) CountBlock(ctx context.Context, dry bool, perMinute int) (int64, bool, error) {
	n, err := countBlockScript.Run(ctx, l.rdb, []string{l.key(namespace(dry), "block-rate", "window")},
		l.now().UnixMilli(), newActionKey()).Int64()
	if err != nil {
		return 0, false, fmt.Errorf("ledger: block rate: %w", err)
	}
	return n, n > int64(perMinute), nil
}

func (l *Ledger) tripKey(dry bool) string { return l.key(namespace(dry), "tripped", "blocks") }

// Trip switches blocking to alert-only for d; first is true for the call that tripped it.
func (l *Ledger) Trip(ctx context.Context, dry bool, d time.Duration, reason string) (bool, error) {
	return l.rdb.SetNX(ctx, l.tripKey(dry), reason, d).Result()
}

// Tripped reports whether blocking is alert-only now.
func (l *Ledger) Tripped(ctx context.Context, dry bool) (bool, error) {
	n, err := l.rdb.Exists(ctx, l.tripKey(dry)).Result()
	return n == 1, err
}

func (l *Ledger) killKey() string { return l.key("act", "kill-switch", "on") }

// SetKillSwitch turns the global kill switch on or off for every replica.
func (l *Ledger) SetKillSwitch(ctx context.Context, on bool, reason string) error {
	if on {
		return l.rdb.Set(ctx, l.killKey(), reason, 0).Err()
	}
	return l.rdb.Del(ctx, l.killKey()).Err()
}

// KillSwitch reports whether the run-time kill switch is on.
func (l *Ledger) KillSwitch(ctx context.Context) (bool, error) {
	n, err := l.rdb.Exists(ctx, l.killKey()).Result()
	return n == 1, err
}

func newActionKey() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "tpa-" + hex.EncodeToString(b)
}
