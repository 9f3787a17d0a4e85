package act

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// The ledger (claims, handled events, active blocks) and the run-time kill switch must outlive
// memory pressure: a Redis that evicts keys can drop a claim (the action is taken again within
// its window) or the kill switch (actions resume while an operator believes them stopped).
// CheckEviction tells, at start-up, whether the ledger's Redis may evict.

// PolicyNoEviction is the only maxmemory-policy under which Redis never drops a key to make room.
const PolicyNoEviction = "noeviction"

// EvictionReport is what a Redis server says about eviction.
type EvictionReport struct {
	// Server names the node (its address) in a Cluster; empty for a single server.
	Server string
	// Policy is maxmemory-policy; MaxMemory is maxmemory in bytes (0: no limit, so nothing is
	// evicted until one is set, at run time if need be).
	Policy    string
	MaxMemory int64
}

// MayEvict reports whether the server may drop ledger keys: any policy but noeviction. The
// volatile-* policies evict only keys with a TTL, which is every claim and handled-event set; the
// allkeys-* ones evict the kill switch and the block records too.
func (r EvictionReport) MayEvict() bool { return r.Policy != PolicyNoEviction }

// CheckEviction reads maxmemory-policy and maxmemory from every master of rdb (CONFIG GET). Managed
// Redis services and ACLs often refuse CONFIG (NOPERM, or the command renamed away): the error
// then says so, and the caller should only advise.
func CheckEviction(ctx context.Context, rdb redis.UniversalClient) ([]EvictionReport, error) {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		var (
			mu  sync.Mutex
			out []EvictionReport
		)
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			r, err := evictionOf(ctx, c)
			r.Server = c.Options().Addr
			mu.Lock()
			out = append(out, r)
			mu.Unlock()
			return err
		})
		return out, err
	}
	r, err := evictionOf(ctx, rdb)
	return []EvictionReport{r}, err
}

// configGetter is what evictionOf needs of a client.
type configGetter interface {
	ConfigGet(ctx context.Context, parameter string) *redis.MapStringStringCmd
}

func evictionOf(ctx context.Context, c configGetter) (EvictionReport, error) {
	var r EvictionReport
	policy, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil {
		return r, fmt.Errorf("CONFIG GET maxmemory-policy: %w", err)
	}
	r.Policy = policy["maxmemory-policy"]
	if r.Policy == "" {
		return r, errors.New("CONFIG GET maxmemory-policy: no value (CONFIG is probably restricted)")
	}
	mem, err := c.ConfigGet(ctx, "maxmemory").Result()
	if err != nil {
		return r, fmt.Errorf("CONFIG GET maxmemory: %w", err)
	}
	r.MaxMemory, _ = strconv.ParseInt(mem["maxmemory"], 10, 64)
	return r, nil
}

// LogEviction checks the ledger's Redis at start-up (CheckEviction, within 5 s) and warns when
// it may evict; a Redis that refuses CONFIG is logged as unknown, never an error.
func LogEviction(ctx context.Context, rdb redis.UniversalClient, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	reports, err := CheckEviction(ctx, rdb)
	for _, r := range reports {
		if r.Policy == "" || !r.MayEvict() {
			continue
		}
		log.Warn("the Redis of the action ledger and kill switch may evict keys: a claim evicted repeats its action, an evicted kill switch turns off; "+
			"set maxmemory-policy noeviction on it, or give the ledger a Redis of its own (THREATPIPE_ACT_REDIS_ADDR; docs/operations.md)",
			zap.String("server", r.Server), zap.String("maxmemory_policy", r.Policy), zap.Int64("maxmemory", r.MaxMemory))
	}
	if err != nil {
		log.Info("could not read the ledger Redis's maxmemory-policy (managed services and ACLs often refuse CONFIG): make sure it is noeviction (docs/operations.md)",
			zap.Error(err))
	}
}
