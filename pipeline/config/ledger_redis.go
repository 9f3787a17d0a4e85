package config

import "slices"

// LedgerRedis is the Redis of the action ledger and the kill switch: THREATPIPE_REDIS_* with
// THREATPIPE_ACT_REDIS_ADDR and THREATPIPE_ACT_REDIS_DB in place of the address and database
// when they are set. Everything else (credentials, TLS, Sentinel, key prefix) is shared.
func (c *Config) LedgerRedis() Redis {
	r := c.Redis
	if len(c.Act.RedisAddrs) > 0 {
		r.Addrs = c.Act.RedisAddrs
	}
	if c.Act.RedisDB >= 0 {
		r.DB = c.Act.RedisDB
	}
	return r
}

// SeparateLedgerRedis reports whether the ledger's Redis differs from the cache's (another
// address or another database), so that the process needs a second client.
func (c *Config) SeparateLedgerRedis() bool {
	l := c.LedgerRedis()
	return l.DB != c.Redis.DB || !slices.Equal(l.Addrs, c.Redis.Addrs)
}
