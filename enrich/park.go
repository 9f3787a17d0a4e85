package enrich

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/encoding/json"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Parking is the durable delay queue of lookups that could not finish within their event's
// budget (docs/lifecycle.md), kept in Redis beside the answer cache:
//
//	park:{<provider>}:due    sorted set: address -> when its lookup is next due (unix ms)
//	park:ev:{<address>}      hash: event_id -> the scored event as last published, for its revision
//	park:lock:{<address>}    the lock of the one revision of an address at a time
//
// An address is parked once per provider however many events wait on it; every waiting event
// is revised when the lookup finishes. A parked lookup outlives every enricher: it lives in
// Redis and any replica's Retrier takes it up when due. Parking writes the event before the due
// time, so whoever sees the due time finds the event.
type Parking struct {
	rdb       redis.UniversalClient
	keys      Keys
	maxEvents int
	keep      time.Duration
}

// ParkingOptions bound what is kept.
type ParkingOptions struct {
	// MaxEventsPerAddress caps the events awaiting one address's revision (default 1000); more
	// are published pending and counted, not kept.
	MaxEventsPerAddress int
	// Keep is how long parked events are kept at most (default 7 days).
	Keep time.Duration
}

// NewParking returns the delay queue on rdb.
func NewParking(rdb redis.UniversalClient, keys Keys, o ParkingOptions) *Parking {
	if o.MaxEventsPerAddress <= 0 {
		o.MaxEventsPerAddress = 1000
	}
	if o.Keep <= 0 {
		o.Keep = 7 * 24 * time.Hour
	}
	return &Parking{rdb: rdb, keys: keys, maxEvents: o.MaxEventsPerAddress, keep: o.Keep}
}

// ErrParkingFull says an address already has the most events a revision may carry.
var ErrParkingFull = errors.New("too many events already await this address's lookup")

// storeEvent keeps an event (KEYS[1], field ARGV[1], value ARGV[2]) unless the hash is full
// (ARGV[3]) and the field new; it returns 0 when full.
var storeEvent = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`)

// Park keeps ev for its revision and schedules, for each provider in due, the lookup of its
// address at that time (an earlier time already scheduled stands).
func (p *Parking) Park(ctx context.Context, ev *event.Scored, due map[string]time.Time) error {
	raw := ev.AppendJSON(nil)
	addr := ev.Indicator.Value
	ok, err := storeEvent.Run(ctx, p.rdb, []string{p.keys.ParkedEvents(addr)}, ev.EventID, raw, p.maxEvents, p.keep.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("park %s: %w", addr, err)
	}
	if ok == 0 {
		return ErrParkingFull
	}
	pipe := p.rdb.Pipeline()
	for provider, at := range due {
		pipe.ZAddLT(ctx, p.keys.ParkedDue(provider), redis.Z{Score: float64(at.UnixMilli()), Member: addr})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("park %s: %w", addr, err)
	}
	return nil
}

// claimScript takes up to ARGV[2] members of KEYS[1] due by ARGV[1] and moves each to ARGV[3]
// (the claim's lease), so no other replica takes them meanwhile; a replica that dies with a
// claim leaves it due again when the lease ends.
var claimScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[3], m) end
return due`)

// Claim takes the addresses whose lookup at provider is due at now, at most n, leasing each for
// lease.
func (p *Parking) Claim(ctx context.Context, provider string, now time.Time, n int, lease time.Duration) ([]string, error) {
	return claimScript.Run(ctx, p.rdb, []string{p.keys.ParkedDue(provider)},
		now.UnixMilli(), n, now.Add(lease).UnixMilli()).StringSlice()
}

// Reschedule moves a claimed lookup to at.
func (p *Parking) Reschedule(ctx context.Context, provider, addr string, at time.Time) error {
	return p.rdb.ZAddXX(ctx, p.keys.ParkedDue(provider), redis.Z{Score: float64(at.UnixMilli()), Member: addr}).Err()
}

// Pending counts the lookups parked at provider.
func (p *Parking) Pending(ctx context.Context, provider string) (int64, error) {
	return p.rdb.ZCard(ctx, p.keys.ParkedDue(provider)).Result()
}

// Events reads the events awaiting addr's revision, keyed by event id. An entry that does not
// decode is dropped (it cannot be revised).
func (p *Parking) Events(ctx context.Context, addr string) (map[string]*event.Scored, error) {
	raw, err := p.rdb.HGetAll(ctx, p.keys.ParkedEvents(addr)).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]*event.Scored, len(raw))
	for id, v := range raw {
		var ev event.Scored
		if json.Unmarshal([]byte(v), &ev) == nil {
			ind, err := event.ParseIP(ev.Indicator.Value)
			if err == nil {
				ev.Indicator = ind
				out[id] = &ev
			}
		}
	}
	return out, nil
}

// Settle records the outcome of a revision of addr for provider: events still waiting on
// another provider are kept as revised, the others dropped; then the provider's lookup is
// taken off the queue, unless an event parked meanwhile still waits on it (Park writes the event
// before the due time, so reading the events after the removal cannot miss one).
func (p *Parking) Settle(ctx context.Context, provider, addr string, keep map[string]*event.Scored, drop []string) error {
	key := p.keys.ParkedEvents(addr)
	pipe := p.rdb.Pipeline()
	for id, ev := range keep {
		pipe.HSet(ctx, key, id, ev.AppendJSON(nil))
	}
	if len(drop) > 0 {
		pipe.HDel(ctx, key, drop...)
	}
	pipe.ZRem(ctx, p.keys.ParkedDue(provider), addr)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("settle %s: %w", addr, err)
	}
	left, err := p.Events(ctx, addr)
	if err != nil {
		return err
	}
	for _, ev := range left {
		if o := ev.Providers[provider]; o != nil && o.Status == event.StatusPending {
			return p.rdb.ZAddLT(ctx, p.keys.ParkedDue(provider), redis.Z{Score: float64(time.Now().UnixMilli()), Member: addr}).Err()
		}
	}
	return nil
}

var unlockScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// Lock takes the revision lock of addr for at most ttl, trying until ctx ends; the returned
// function releases it.
func (p *Parking) Lock(ctx context.Context, addr, owner string, ttl time.Duration) (func(), error) {
	key := p.keys.ParkedLock(addr)
	token := owner + ":" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for wait := 10 * time.Millisecond; ; wait = min(wait*2, 200*time.Millisecond) {
		ok, err := p.rdb.SetNX(ctx, key, token, ttl).Result()
		if err != nil {
			return nil, err
		}
		if ok {
			return func() { _ = unlockScript.Run(context.WithoutCancel(ctx), p.rdb, []string{key}, token).Err() }, nil
		}
		if !pipeline.Sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}
