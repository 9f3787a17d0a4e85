package act

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The ledger operations of verdict changes (change.go): finding and lifting a target's blocks
// before they lapse, reading its open tickets and ending its action windows. Which change
// records were handled is a claim like any action's (changePlaybook).

// TargetBlocks returns every block the ledger holds on target, whatever its sink, playbook or
// step. It scans the block records (one HSCAN pass over them): verdict changes are rare next
// to scored events.
func (l *Ledger) TargetBlocks(ctx context.Context, target string) ([]ActiveBlock, error) {
	var out []ActiveBlock
	iter := l.rdb.HScan(ctx, l.blockInfoKey(), 0, "*|"+globEscape(target), 1000).Iterator()
	for i := 0; iter.Next(ctx); i++ {
		if i%2 == 0 {
			continue // a field; its value follows
		}
		var b ActiveBlock
		if json.Unmarshal([]byte(iter.Val()), &b) == nil && b.Target == target {
			out = append(out, b)
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("ledger: blocks of %s: %w", target, err)
	}
	return out, nil
}

// globEscape escapes the characters Redis MATCH patterns give a meaning to.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// leaseNowScript leases one block to the caller for lifting now, as popDueScript does for due
// ones, unless another lifter holds a lease on it that has not ended. Returns the block's record,
// or nil. KEYS: due, info, lease; ARGV[1] member, ARGV[2] now (ms), ARGV[3] lease end (ms).
var leaseNowScript = redis.NewScript(`
local info = redis.call('HGET', KEYS[2], ARGV[1])
if not info then
  return false
end
local lease = redis.call('HGET', KEYS[3], ARGV[1])
if lease and tonumber(lease) > tonumber(ARGV[2]) then
  return false
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return info`)

// LeaseNow leases the block of b's sink on b's target for lifting before it lapses, under the
// same lease PopDue hands due blocks out with: the caller reports it with Lifted, and a block it
// does not lift is handed out to the lifters once the lease ends. ok is false when the ledger
// holds no such block or another lifter is lifting it.
func (l *Ledger) LeaseNow(ctx context.Context, b ActiveBlock) (ActiveBlock, bool, error) {
	now := l.now()
	lease := strconv.FormatInt(now.Add(liftRetry).UnixMilli(), 10)
	raw, err := leaseNowScript.Run(ctx, l.rdb, l.blockKeys(), blockMember(b.Sink, b.Target), now.UnixMilli(), lease).Text()
	if errors.Is(err, redis.Nil) {
		return ActiveBlock{}, false, nil
	}
	if err != nil {
		return ActiveBlock{}, false, fmt.Errorf("ledger: lease block: %w", err)
	}
	var cur ActiveBlock
	if err := json.Unmarshal([]byte(raw), &cur); err != nil {
		return ActiveBlock{}, false, fmt.Errorf("ledger: unreadable block %s: %w", blockMember(b.Sink, b.Target), err)
	}
	cur.lease = lease
	return cur, true, nil
}

// GetClaim returns the claim on (playbook, step, target), or nil when there is none.
func (l *Ledger) GetClaim(ctx context.Context, dry bool, playbook, step, target string) (*Claim, error) {
	raw, err := l.rdb.Get(ctx, l.claimKey(dry, playbook, step, target)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: claim: %w", err)
	}
	var c Claim
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return nil, fmt.Errorf("ledger: unreadable claim of %s/%s/%s: %w", playbook, step, target, err)
	}
	return &c, nil
}

// endWindowScript deletes a settled claim; a pending one (an action under way) is left be.
var endWindowScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then
  return 0
end
local ok, c = pcall(cjson.decode, cur)
if ok and type(c) == 'table' and c.state == 'done' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`)

// EndWindow ends the window of a settled action on target early, so that the next event that
// triggers (playbook, step) acts again. It reports whether there was one to end.
func (l *Ledger) EndWindow(ctx context.Context, dry bool, playbook, step, target string) (bool, error) {
	n, err := endWindowScript.Run(ctx, l.rdb, []string{l.claimKey(dry, playbook, step, target)}).Int()
	if err != nil {
		return false, fmt.Errorf("ledger: end window: %w", err)
	}
	return n == 1, nil
}
