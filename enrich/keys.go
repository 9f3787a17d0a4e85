package enrich

// cacheSchema versions cached values: bump it when Intel changes incompatibly, and old entries
// are simply not found.
const cacheSchema = "v1"

// Keys names everything threatpipe keeps in Redis, under a prefix (THREATPIPE_REDIS_KEY_PREFIX)
// so that several deployments, or tests, can share one Redis.
type Keys struct{ Prefix string }

func (k Keys) key(kind, rest string) string {
	return k.Prefix + ":" + cacheSchema + ":" + kind + ":" + rest
}

// Cache is the key of one provider's answer for one indicator. shape names the request
// (endpoint and options), so two lookups of different depth never share an answer.
// Built in one concatenation: it runs for every event.
func (k Keys) Cache(provider, shape, indicator string) string {
	return k.Prefix + ":" + cacheSchema + ":cache:" + provider + ":" + shape + ":" + indicator
}

// Lease is the cross-replica single-flight lease of the lookup whose answer is stored under
// cacheKey. The cache key is its Redis Cluster hash tag, so the two share a slot and one script
// can take the lease and read the answer atomically.
func (k Keys) Lease(cacheKey string) string {
	return k.key("lease", "{"+cacheKey+"}")
}

// LeaseFailed holds a failed lookup's outcome for the replicas that waited on its lease.
func (k Keys) LeaseFailed(token string) string { return k.key("lease-failed", token) }

// Quota is one provider's lookup count for one quota period (a UTC day, 2026-12-06, or a
// month, 2026-12).
func (k Keys) Quota(provider, period string) string { return k.key("quota", provider+":"+period) }

// QuotaWarned marks that the quota warning went out for one provider and period.
func (k Keys) QuotaWarned(provider, period string) string {
	return k.key("quota-warned", provider+":"+period)
}

// Rate is one provider's shared rate-limiter state (redis_rate adds its own prefix).
func (k Keys) Rate(provider string) string { return k.key("rate", provider) }

// Seen marks that a first-sight source has seen an address.
func (k Keys) Seen(provider, indicator string) string {
	return k.key("seen", provider+":"+indicator)
}

// ParkedDue is one provider's queue of parked lookups. The provider is the Cluster hash tag.
func (k Keys) ParkedDue(provider string) string { return k.key("park", "{"+provider+"}:due") }

// ParkedEvents holds the events awaiting an address's revision.
func (k Keys) ParkedEvents(addr string) string { return k.key("park", "ev:{"+addr+"}") }

// ParkedLock is the lock of an address's revision; it shares ParkedEvents' hash tag.
func (k Keys) ParkedLock(addr string) string { return k.key("park", "lock:{"+addr+"}") }

// Hot counts the sightings of a provider's answers near their expiry (refresh ahead).
func (k Keys) Hot(provider string) string { return k.key("refresh", provider+":hot") }

// RefreshUsed counts a provider's refreshes in one quota period.
func (k Keys) RefreshUsed(provider, period string) string {
	return k.key("refresh", provider+":used:"+period)
}

// Budget counts one budget's lookups at a provider in one quota period (an input source's
// share, an IPv6 /64's budget). The provider and period are the hash tag: one lookup spends a
// source's and a /64's budget in one script, which Redis Cluster runs only on keys of one slot.
func (k Keys) Budget(provider, period, budget string) string {
	return k.key("budget", "{"+provider+":"+period+"}:"+budget)
}

// Sightings counts an address's lookups while quota is short, for ranking.
func (k Keys) Sightings(provider, indicator string) string {
	return k.key("sightings", provider+":"+indicator)
}
