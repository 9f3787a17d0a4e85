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
	"go.uber.org/zap"
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
	// Log receives the heartbeat's warnings (beats failing, beats recovered); nil logs nothing.
	Log *zap.Logger

	rdb    redis.UniversalClient
	prefix string
	owner  string
	now    func() time.Time
	// beat is how often Heartbeat renews the liveness key.
	beat time.Duration
	// waitReplicas and waitTimeout: see WaitForReplicas (ledger_durable.go).
	waitReplicas int
	waitTimeout  time.Duration
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
	return &Ledger{rdb: rdb, prefix: prefix, owner: owner, now: time.Now, beat: aliveTTL / 3}
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
// over about aliveTTL after its last beat. Failing beats are logged once when they start failing
// and once when they recover: beyond aliveTTL without one, another replica may take this one's
// pending claims over while it still works on them.
func (l *Ledger) Heartbeat(ctx context.Context) error {
	log := l.Log
	if log == nil {
		log = zap.NewNop()
	}
	t := time.NewTicker(l.beat)
	defer t.Stop()
	var failingSince time.Time
	for {
		err := l.rdb.Set(ctx, l.aliveKey(l.owner), "1", aliveTTL).Err()
		switch {
		case err != nil && ctx.Err() != nil:
			// Shutting down: not a ledger problem.
		case err != nil && failingSince.IsZero():
			failingSince = l.now()
			log.Warn("ledger heartbeat failing: if it fails for longer than the liveness TTL, other replicas may take over this replica's pending actions",
				zap.String("owner", l.owner), zap.Duration("alive_ttl", aliveTTL), zap.Error(err))
		case err == nil && !failingSince.IsZero():
			log.Warn("ledger heartbeat recovered", zap.String("owner", l.owner),
				zap.Duration("failing_for", l.now().Sub(failingSince)))
			failingSince = time.Time{}
		}
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
if cur == ARGV[1] then
  return {1, cur} -- our own claim, run again until a replica has it (ledger_durable.go)
end
return {0, cur}`)

// takeoverScript replaces a pending claim if it is still exactly what we read.
var takeoverScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
if cur == ARGV[2] then
  return 1 -- taken over by this very call, run again until a replica has it
end
return 0`)

// ErrBusy means another live worker holds the claim pending; try again shortly.
var ErrBusy = errors.New("another worker is performing this action")

// Claim claims (playbook, step, target) for window, or reports how it stands.
func (l *Ledger) Claim(ctx context.Context, dry bool, playbook, step, target string, window time.Duration) (ClaimResult, *Claim, error) {
	key := l.claimKey(dry, playbook, step, target)
	mine := Claim{State: StatePending, Key: newActionKey(), Owner: l.owner, At: l.now().UTC()}
	raw, _ := json.Marshal(mine)
	reply, err := l.durable(ctx, claimScript, []string{key}, raw, window.Milliseconds()).Slice()
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
	ok, err := l.durable(ctx, takeoverScript, []string{key}, curRaw, takenRaw).Int()
	if err != nil {
		return 0, nil, fmt.Errorf("ledger: takeover: %w", err)
	}
	if ok != 1 {
		return 0, &cur, ErrBusy // someone else moved first; look again
	}
	return TakenOver, &taken, nil
}

// ErrClaimLost means the claim is no longer the caller's: after the caller lost Redis for longer
// than the liveness TTL, another replica took it over (or took it over and finished, or released
// it and a new claim was made). The ledger was left as the other replica has it.
var ErrClaimLost = errors.New("ledger: the claim was taken over by another owner")

// claimIsMine is the Lua test that the claim JSON in cur is still the caller's: the same action
// key (ARGV[1]) under the same owner (ARGV[2]).
const claimIsMine = `
local function mine(cur)
  local ok, c = pcall(cjson.decode, cur)
  return ok and type(c) == 'table' and c.key == ARGV[1] and c.owner == ARGV[2]
end
`

// markSeenLua records event ARGV[5] as handled in the seen set KEYS[2] at ARGV[6] (ms) for a
// window of ARGV[4] ms: entries older than the window and all but the newest ARGV[7] go, and the
// set lives for the window after its last entry.
const markSeenLua = `
local function markSeen()
  local now, window = tonumber(ARGV[6]), tonumber(ARGV[4])
  redis.call('ZADD', KEYS[2], now, ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[7]) - 1)
  redis.call('PEXPIRE', KEYS[2], window)
end
`

// doneScript settles the caller's claim and records the event as handled, atomically. KEYS[1]
// claim, KEYS[2] seen set; ARGV[1] key, ARGV[2] owner, ARGV[3] settled claim JSON, ARGV[4]
// window (ms), ARGV[5] event id, ARGV[6] now (ms), ARGV[7] seen cap. A lapsed claim is not
// recreated; another owner's claim is left be (returns 0). The event is recorded as handled
// either way: its action happened.
var doneScript = redis.NewScript(claimIsMine + markSeenLua + `
local cur = redis.call('GET', KEYS[1])
local res = 1
if cur then
  if mine(cur) then
    redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
  else
    res = 0
  end
end
markSeen()
return res`)

// markSeenScript records an event as handled: KEYS and ARGV as doneScript's (KEYS[1] and
// ARGV[1-3] unused).
var markSeenScript = redis.NewScript(markSeenLua + `
markSeen()
return 1`)

// releaseScript deletes the claim if it is still the caller's. KEYS[1] claim; ARGV[1] key,
// ARGV[2] owner.
var releaseScript = redis.NewScript(claimIsMine + `
local cur = redis.call('GET', KEYS[1])
if cur and mine(cur) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`)

// Done records that the claimed action happened, with the sink's reference, and that eventID was
// handled: both in one script, so a crash leaves either a pending claim (taken over and checked
// with the sink) or a finished one whose event is known, never a finished claim that a
// redelivery of the same event would act on again. Only the caller's own claim (same key and
// owner) is settled: if another replica took it over meanwhile, Done leaves it be, records the
// event and returns ErrClaimLost.
func (l *Ledger) Done(ctx context.Context, dry bool, playbook, step, target string, c *Claim, ref, eventID string, window time.Duration) error {
	done := *c
	done.State, done.Ref = StateDone, ref
	raw, _ := json.Marshal(done)
	keys := []string{l.claimKey(dry, playbook, step, target), l.seenSetKey(dry, playbook, step, target)}
	n, err := l.durable(ctx, doneScript, keys, c.Key, c.Owner, raw, max(window.Milliseconds(), 1),
		eventID, l.now().UnixMilli(), SeenPerAction).Int()
	if err != nil {
		return fmt.Errorf("ledger: done: %w", err)
	}
	if n != 1 {
		return ErrClaimLost
	}
	return nil
}

// Release drops the caller's claim c, whose action failed, so that a later event tries again. A
// claim that is no longer the caller's (taken over by another replica) is left be.
func (l *Ledger) Release(ctx context.Context, dry bool, playbook, step, target string, c *Claim) error {
	if err := releaseScript.Run(ctx, l.rdb, []string{l.claimKey(dry, playbook, step, target)}, c.Key, c.Owner).Err(); err != nil {
		return fmt.Errorf("ledger: release: %w", err)
	}
	return nil
}

// SeenPerAction bounds the events remembered as handled per (playbook, step, target): a target
// sighted without end (each sighting a new event suppressed within the window) would otherwise
// leave one key per sighting for the whole window. It must exceed the redeliveries one target can
// see, bounded by THREATPIPE_ACT_MAX_IN_FLIGHT (256); past it the oldest are forgotten, and a
// redelivery of one of those counts as a new sighting within the window (suppressed; a ticket
// step comments again).
const SeenPerAction = 2048

// Seen reports whether this event was already handled for (playbook, step, target), which is
// what tells a redelivered event from a new sighting of the same target. An event stays seen
// while the set lives (the window after the action's latest event), even past its own window.
func (l *Ledger) Seen(ctx context.Context, dry bool, playbook, step, target, eventID string) (bool, error) {
	pipe := l.rdb.Pipeline()
	inSet := pipe.ZScore(ctx, l.seenSetKey(dry, playbook, step, target), eventID)
	legacy := pipe.Exists(ctx, l.legacySeenKey(dry, playbook, step, target, eventID))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("ledger: seen: %w", err)
	}
	return inSet.Err() == nil || legacy.Val() == 1, nil
}

// MarkSeen records the event as handled for window.
func (l *Ledger) MarkSeen(ctx context.Context, dry bool, playbook, step, target, eventID string, window time.Duration) error {
	keys := []string{l.claimKey(dry, playbook, step, target), l.seenSetKey(dry, playbook, step, target)}
	if err := l.durable(ctx, markSeenScript, keys, "", "", "", max(window.Milliseconds(), 1),
		eventID, l.now().UnixMilli(), SeenPerAction).Err(); err != nil {
		return fmt.Errorf("ledger: mark seen: %w", err)
	}
	return nil
}

// seenSetKey is the sorted set of the events handled for one action on one target (member: event
// id, score: when, in ms). It shares the claim's hash tag, so Done writes both in one script.
func (l *Ledger) seenSetKey(dry bool, playbook, step, target string) string {
	return l.key(namespace(dry), "seen", actionTag(playbook, step, target))
}

// legacySeenKey is where releases before the seen set kept one key per handled event; Seen still
// reads it so that an upgrade does not take a redelivery for a new sighting. Such keys expire
// within a window of the upgrade: drop this afterwards.
func (l *Ledger) legacySeenKey(dry bool, playbook, step, target, eventID string) string {
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

	// lease is the lease (ms) under which PopDue handed the block out: Lifted removes the block
	// only while it still holds that lease.
	lease string
}

// The block keys share the Redis Cluster hash tag {blocks}: the scripts below touch them
// together. due is the sorted set of blocks by when they lapse (or, while leased to a lifter,
// when the lease ends), info their records, lease the lease each block is being lifted under.
func (l *Ledger) blocksKey() string     { return l.key("act", "blocks", "{blocks}:due") }
func (l *Ledger) blockInfoKey() string  { return l.key("act", "blocks", "{blocks}:info") }
func (l *Ledger) blockLeaseKey() string { return l.key("act", "blocks", "{blocks}:lease") }
func (l *Ledger) blockKeys() []string {
	return []string{l.blocksKey(), l.blockInfoKey(), l.blockLeaseKey()}
}
func blockMember(sink, target string) string { return sink + "|" + target }

// addBlockScript records a block unless the sink already holds the target at least as long.
// A block being lifted (leased) holds nothing any more: a new block replaces it, and the lift's
// Lifted then leaves the new one be. KEYS: due, info, lease; ARGV[1] member, ARGV[2] until (ms),
// ARGV[3] record.
var addBlockScript = redis.NewScript(`
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if cur and redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 and tonumber(cur) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1`)

// AddBlock records an active block until b.Until; a longer later block of the same target on
// the same sink replaces it, a shorter one leaves it be (the target stays blocked until the
// longer one lapses).
func (l *Ledger) AddBlock(ctx context.Context, b ActiveBlock) error {
	raw, _ := json.Marshal(b)
	return l.durable(ctx, addBlockScript, l.blockKeys(), blockMember(b.Sink, b.Target), b.Until.UnixMilli(), raw).Err()
}

// Active returns the blocks of sink that have not expired, by target. A block whose lift failed
// (or whose lifter crashed) stays until its next attempt.
func (l *Ledger) Active(ctx context.Context, sink string) (map[string]time.Time, error) {
	due, err := l.rdb.ZRangeByScoreWithScores(ctx, l.blocksKey(), &redis.ZRangeBy{
		Min: strconv.FormatInt(l.now().UnixMilli()+1, 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time)
	if len(due) == 0 {
		return out, nil
	}
	members := make([]string, len(due))
	for i, z := range due {
		members[i], _ = z.Member.(string)
	}
	raws, err := l.rdb.HMGet(ctx, l.blockInfoKey(), members...).Result()
	if err != nil {
		return nil, err
	}
	for i, r := range raws {
		s, _ := r.(string)
		var b ActiveBlock
		if json.Unmarshal([]byte(s), &b) == nil && b.Sink == sink {
			until := b.Until
			if leased := time.UnixMilli(int64(due[i].Score)); leased.After(until) {
				until = leased // a lift under way, or retried after it failed
			}
			out[b.Target] = until
		}
	}
	return out, nil
}

// popDueScript leases up to ARGV[2] due members to the caller for lifting: each one's score
// moves to the lease's end ARGV[3] (ms), so that no other lifter takes it meanwhile, and it is
// handed out again once the lease ends if the caller never reports it lifted (a crash, a failed
// lift). Returns the leased members' records. KEYS: due, info, lease; ARGV[1] now (ms).
var popDueScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, m in ipairs(due) do
  local info = redis.call('HGET', KEYS[2], m)
  if info then
    redis.call('ZADD', KEYS[1], ARGV[3], m)
    redis.call('HSET', KEYS[3], m, ARGV[3])
    table.insert(out, info)
  else
    redis.call('ZREM', KEYS[1], m)
    redis.call('HDEL', KEYS[3], m)
  end
end
return out`)

// PopDue leases up to n expired blocks to the caller for lifting, for liftRetry: the caller
// reports each block it lifted with Lifted; a block it does not is handed out again after the
// lease.
func (l *Ledger) PopDue(ctx context.Context, n int) ([]ActiveBlock, error) {
	now := l.now()
	lease := strconv.FormatInt(now.Add(liftRetry).UnixMilli(), 10)
	raws, err := popDueScript.Run(ctx, l.rdb, l.blockKeys(), now.UnixMilli(), n, lease).StringSlice()
	if err != nil {
		return nil, err
	}
	out := make([]ActiveBlock, 0, len(raws))
	for _, r := range raws {
		var b ActiveBlock
		if json.Unmarshal([]byte(r), &b) == nil {
			b.lease = lease
			out = append(out, b)
		}
	}
	return out, nil
}

// liftedScript forgets a lifted block if it still holds the caller's lease. KEYS: due, info,
// lease; ARGV[1] member, ARGV[2] lease.
var liftedScript = redis.NewScript(`
if redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 1
end
return 0`)

// Lifted forgets block b, handed out by PopDue, once it was lifted (or can never be). A newer
// block of the same target recorded meanwhile, or a lease that ended and went to another
// lifter, is left be.
func (l *Ledger) Lifted(ctx context.Context, b ActiveBlock) error {
	if b.lease == "" {
		return errors.New("ledger: lifted: the block was not handed out by PopDue")
	}
	return liftedScript.Run(ctx, l.rdb, l.blockKeys(), blockMember(b.Sink, b.Target), b.lease).Err()
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
