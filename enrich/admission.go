package enrich

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Spending quota where it matters (docs/lifecycle.md). Before a miss reaches the provider:
//
//   - an input source (the event's source) may spend at most SOURCE_SHARE of the quota per
//     period, and one IPv6 /64 at most V6_PREFIX_BUDGET lookups, so one noisy or hostile sender
//     cannot spend the day's quota (a spray of addresses from one /64 costs its budget, not
//     thousands of lookups);
//   - when less than QUOTA_RESERVE of the quota is left, lookups are ranked (rank below) and
//     only those at or above a bar that rises as the quota runs out spend it.
//
// A lookup held back is pending: parked until the quota period resets, when it is tried again.

// Hint is what the Enricher knows about a lookup besides its address: it ranks the lookup when
// quota is short and names the budget it spends.
type Hint struct {
	// Source is the input event's source (its producer).
	Source string
	// Score and Voters are the verdict so far (earlier stages of the cascade).
	Score, Voters int
	// Fresh forces the lookup: a cached answer is not served (an analyst's "re-enrich now",
	// pipeline.ForcedLookup); the lookup still goes through the budgets, the lease, the rate,
	// the quota and the breaker, and its answer replaces the cached one.
	Fresh bool
}

// Rank orders lookups when quota is short, 0-100: how often the address was sighted this
// period (up to 40 points: 10 sightings or more give all), how many sources already rate it
// (up to 20: two or more), its score so far (up to 30), and 10 for a first sight, which has no
// answer at all yet.
func Rank(sightings int64, h Hint) int {
	s := 40 * min(1, math.Log10(1+float64(max(sightings, 0)))/math.Log10(11))
	v := 20 * float64(min(max(h.Voters, 0), 2)) / 2
	sc := 30 * float64(min(max(h.Score, 0), 100)) / 100
	first := 0.0
	if sightings <= 1 {
		first = 10
	}
	return int(math.Round(s + v + sc + first))
}

// admitScript counts one lookup against the budgets KEYS[i] (limit ARGV[i+1], expiry ARGV[1]
// ms) unless one of them is spent; it returns the index (1-based) of the spent budget, or 0.
var admitScript = redis.NewScript(`
for i, k in ipairs(KEYS) do
  local limit = tonumber(ARGV[i + 1])
  if limit > 0 and tonumber(redis.call('GET', k) or '0') >= limit then return i end
end
for i, k in ipairs(KEYS) do
  if tonumber(ARGV[i + 1]) > 0 then
    redis.call('INCR', k)
    redis.call('PEXPIRE', k, ARGV[1])
  end
end
return 0`)

// refundScript gives back one lookup to each budget KEYS[i] still counting.
var refundScript = redis.NewScript(`
for _, k in ipairs(KEYS) do
  if tonumber(redis.call('GET', k) or '0') > 0 then redis.call('DECR', k) end
end
return 0`)

// admit decides whether a miss may be sent to the provider; it returns nil when it may, else
// the pending outcome that parks it until the period resets. Without Redis it admits: the
// provider's own quota answer still stops a runaway. charged are the budgets it counted the
// lookup against, for refund when the lookup costs the provider nothing.
func (l *Lookuper) admit(ctx context.Context, ind event.Indicator, h Hint) (held *event.ProviderOutcome, charged []string) {
	q := l.chain.Quota
	if q == nil {
		return nil, nil
	}
	ledger := q.Ledger()
	period := ledger.Period().ID(l.o.Now())
	limit := ledger.Limit()
	var keys, names []string
	var limits []any
	if share := l.o.Policy.SourceShare; limit > 0 && share > 0 && share < 1 && h.Source != "" {
		keys = append(keys, l.o.Keys.Budget(l.name, period, "source:"+h.Source))
		names = append(names, "the share of input source "+h.Source)
		limits = append(limits, int64(math.Max(1, math.Floor(share*float64(limit)))))
	}
	if n := l.o.Policy.V6PrefixBudget; n > 0 && ind.Addr.Is6() && !ind.Addr.Is4In6() {
		p, _ := ind.Addr.Prefix(64)
		keys = append(keys, l.o.Keys.Budget(l.name, period, "v6:"+p.String()))
		names = append(names, "the budget of "+p.String())
		limits = append(limits, n)
	}
	if out := l.rank(ctx, ind, h, limit); out != nil {
		return out, nil
	}
	if len(keys) == 0 {
		return nil, nil
	}
	args := append([]any{ledger.keep().Milliseconds()}, limits...)
	spent, err := admitScript.Run(ctx, l.o.Redis, keys, args...).Int()
	switch {
	case err != nil:
		return nil, nil
	case spent == 0:
		return nil, keys
	}
	return l.heldUntilReset(names[spent-1] + " of the " + ledger.Period().Label() + " quota is spent"), nil
}

// refund gives back the budgets charged for a lookup that cost the provider nothing: it failed
// (a 429 or 5xx storm, a reset, an open breaker) or another replica's answer was taken. Without
// it every retry through a storm would spend a source's share or a /64's budget, and the
// addresses would then wait for the period's reset.
func (l *Lookuper) refund(charged []string, out *event.ProviderOutcome) {
	if len(charged) == 0 || billed(out) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.lifetime), l.o.Policy.AttemptTimeout)
	defer cancel()
	_ = refundScript.Run(ctx, l.o.Redis, charged).Err() // at worst the budget stays spent
}

// billed reports whether a flight's outcome is an answer this replica paid for.
func billed(out *event.ProviderOutcome) bool {
	fresh := out.Cache == nil || !out.Cache.Joined
	return fresh && (out.Status == event.StatusOK || out.Status == event.StatusNotFound)
}

// rank holds back a lookup whose rank is below the bar when quota is short.
func (l *Lookuper) rank(ctx context.Context, ind event.Indicator, h Hint, limit int64) *event.ProviderOutcome {
	reserve := l.o.Policy.QuotaReserve
	if limit <= 0 || reserve <= 0 {
		return nil
	}
	used := l.chain.health.quotaUsed(l.o.Now())
	left := float64(limit-used) / float64(limit)
	if left >= reserve {
		return nil
	}
	// The bar rises from 0 (at the reserve) to 100 (nothing left).
	bar := int(math.Ceil(100 * (1 - max(left, 0)/reserve)))
	key := l.o.Keys.Sightings(l.name, ind.Value)
	n, err := l.o.Redis.Incr(ctx, key).Result()
	if err != nil {
		return nil
	}
	_ = l.o.Redis.Expire(ctx, key, 24*time.Hour).Err()
	if r := Rank(n, h); r < bar {
		return l.heldUntilReset(fmt.Sprintf("quota short (%.0f%% left): rank %d is below the bar of %d", 100*max(left, 0), r, bar))
	}
	return nil
}

// heldUntilReset is the pending outcome of a lookup held back until the quota period resets.
func (l *Lookuper) heldUntilReset(why string) *event.ProviderOutcome {
	reset := l.chain.Quota.ResetAt(l.o.Now())
	status := event.StatusPending
	if !l.o.Defer {
		status = event.StatusQuotaExhausted
	}
	out := &event.ProviderOutcome{Status: status, Error: why + "; looked up after " + reset.Format(time.RFC3339)}
	if l.o.Defer {
		out.RetryAt = &reset
	}
	return out
}
