package enrich

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// errNoLease: Redis could not be asked for the cross-replica lease.
var errNoLease = errors.New("redis unavailable")

// coordinated looks ind up for a flight: the budgets first (admission.go), then the lookup under
// the cross-replica lease; an answer another replica stored meanwhile counts when usable says so. While Redis cannot be asked for the lease it waits, with backoff,
// rather than look up without it: two replicas could then pay for the same answer, and neither
// the shared rate nor the quota ledger would count the call. The event waits in flight
// meanwhile (consumption pauses at the in-flight bound; cache hits kept in process still
// flow), and the retry budget starts again once Redis answers. Only Close ends the wait.
func (l *Lookuper) coordinated(key string, ind event.Indicator, h Hint, usable func(*CacheEntry) bool) *event.ProviderOutcome {
	var wait *backoff.ExponentialBackOff // made at the first wait: most lookups never need it
	for {
		fctx, cancel := context.WithTimeout(l.lifetime, l.o.Policy.RetryBudget+l.o.Policy.AttemptTimeout)
		out, charged := l.admit(fctx, ind, h) // the flight's leader spends the budgets
		var err error
		if out == nil {
			out, err = l.shared(fctx, key, ind, usable)
		}
		cancel()
		if err == nil {
			l.refund(charged, out)
			l.leaseDown(false, nil)
			return out
		}
		l.refund(charged, &event.ProviderOutcome{Status: event.StatusFailed})
		l.leaseDown(true, err)
		if wait == nil {
			wait = pipeline.DependencyBackOff()
		}
		t := time.NewTimer(wait.NextBackOff())
		select {
		case <-t.C:
		case <-l.lifetime.Done():
			t.Stop()
			return &event.ProviderOutcome{Status: event.StatusFailed, Error: "shutting down while Redis was unavailable for the lease"}
		}
	}
}

// leaseDown logs when lookups start and stop waiting for Redis, once per change, not per lookup.
func (l *Lookuper) leaseDown(down bool, err error) {
	if l.waitingForRedis.Swap(down) == down {
		return
	}
	if down {
		l.log.Warn("Redis unavailable: lookups wait for the cross-replica lease instead of paying without it", zap.Error(err))
	} else {
		l.log.Info("Redis answers again: lookups resume under the lease")
	}
}

var (
	// acquireScript takes the lease (KEYS[1]) and, in the same step, reads the answer (KEYS[2])
	// that a previous holder may have stored between our cache read and now: {1, answer} when
	// taken, {0, holder token} when another replica holds it.
	acquireScript = redis.NewScript(`if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, redis.call('GET', KEYS[2])} end return {0, redis.call('GET', KEYS[1])}`)
	releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)
	renewScript   = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`)
)

// shared makes sure one replica looks ind up: it takes the lease and looks up, or waits for the
// holder's answer. An answer stored meanwhile counts when usable says so (a refresh does not
// take the answer it is refreshing). A holder that fails leaves its outcome under its lease token
// for the replicas that waited on it, and nothing for later events: errors are not cached.
//
// It fails only when Redis cannot be asked for the lease: the caller must not look up then.
func (l *Lookuper) shared(ctx context.Context, key string, ind event.Indicator, usable func(*CacheEntry) bool) (*event.ProviderOutcome, error) {
	leaseKey := l.o.Keys.Lease(key)
	var waitingOn string
	poll := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if out := l.joinResult(ctx, key, waitingOn, usable); out != nil {
				return out, nil
			}
		}
		token := l.o.Owner + ":" + randomToken()
		reply, err := acquireScript.Run(ctx, l.o.Redis, []string{leaseKey, key}, token, l.o.LeaseTTL.Milliseconds()).Slice()
		if ctx.Err() != nil { // out of time, not out of Redis: never look up without the lease then
			return l.failed(&Error{Provider: l.name, Kind: KindTransient, Message: "out of time before the lease", Err: ctx.Err()}), nil
		}
		if err != nil || len(reply) != 2 {
			return nil, fmt.Errorf("lease of %s: %w", ind.Value, errors.Join(err, errNoLease))
		}
		value, _ := reply[1].(string)
		if acquired, _ := reply[0].(int64); acquired == 1 {
			// The answer may have landed between our cache read and the lease: its holder
			// stores it before releasing. Reading it under the lease makes the lookup exactly-once.
			if e := parseEntry([]byte(value)); e != nil && usable(e) {
				_ = releaseScript.Run(ctx, l.o.Redis, []string{leaseKey}, token).Err()
				l.savedJoin.Inc()
				return l.answer(e, &event.CacheInfo{Joined: true}), nil
			}
			return l.holdAndFetch(ctx, key, ind, leaseKey, token), nil
		}
		waitingOn = value
		t := time.NewTimer(poll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return l.failed(&Error{Provider: l.name, Kind: KindTransient, Message: "timed out waiting for another replica's lookup"}), nil
		}
		poll = min(poll*2, 250*time.Millisecond)
	}
}

// joinResult reads the answer another replica stored, or its failure under token.
func (l *Lookuper) joinResult(ctx context.Context, key, token string, usable func(*CacheEntry) bool) *event.ProviderOutcome {
	pipe := l.o.Redis.Pipeline()
	cacheCmd := pipe.Get(ctx, key)
	var failCmd *redis.StringCmd
	if token != "" {
		failCmd = pipe.Get(ctx, l.o.Keys.LeaseFailed(token))
	}
	_, _ = pipe.Exec(ctx)
	if rep := decodeEntry(cacheCmd); rep.entry != nil && usable(rep.entry) {
		l.savedJoin.Inc()
		return l.answer(rep.entry, &event.CacheInfo{Joined: true})
	}
	if failCmd != nil {
		if raw, err := failCmd.Bytes(); err == nil {
			var out event.ProviderOutcome
			if json.Unmarshal(raw, &out) == nil && out.Status != "" {
				out.Cache = &event.CacheInfo{Joined: true}
				return &out
			}
		}
	}
	return nil
}

func (l *Lookuper) holdAndFetch(ctx context.Context, key string, ind event.Indicator, leaseKey, token string) *event.ProviderOutcome {
	// The lease is renewed, and the outcome stored, for as long as the request takes, even past
	// the flight's deadline (ctx's, which still bounds the waits before a request is sent): a
	// request sent is waited for (Instrument), and another replica taking the lease meanwhile, or
	// the answer not stored, would pay for the address again. Close still ends it.
	hold, cancelHold := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHold()
	defer context.AfterFunc(l.lifetime, cancelHold)()
	renewCtx, stopRenew := context.WithCancel(hold)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(l.o.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = renewScript.Run(renewCtx, l.o.Redis, []string{leaseKey}, token, l.o.LeaseTTL.Milliseconds()).Err()
			case <-renewCtx.Done():
				return
			}
		}
	}()
	// An answer is stored and the lease released in one round trip; a failure is left under the
	// token for the replicas waiting on it, in the same round trip as the release.
	release := func(pipe redis.Pipeliner) {
		// EVAL, not EVALSHA: a pipeline cannot fall back when a fresh Redis has not cached the
		// script yet (NOSCRIPT), and the lease would then stay until it lapses.
		releaseScript.Eval(hold, pipe, []string{leaseKey}, token)
	}
	out := l.fetch(ctx, hold, key, ind, release)
	stopRenew()
	<-renewed
	if out.Status != event.StatusOK && out.Status != event.StatusNotFound {
		_, _ = l.o.Redis.Pipelined(hold, func(pipe redis.Pipeliner) error {
			if raw, err := json.Marshal(out); err == nil {
				pipe.Set(hold, l.o.Keys.LeaseFailed(token), raw, l.o.LeaseTTL+2*time.Second)
			}
			release(pipe)
			return nil
		})
	}
	return out
}

func randomToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
