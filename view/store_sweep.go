package view

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// sweepBatch is how many expired indicators one Sweep round handles per read.
const sweepBatch = 500

// Sweep removes the indicators whose last sighting is older than the retention: their keys (if
// Redis has not expired them yet) and their index entries. It returns how many it removed. An
// indicator sighted again meanwhile is kept and re-indexed. It first moves whatever is left in
// the ranking of a view before the priority (migrateRanking): a no-op once migrated.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	if _, err := s.migrateRanking(ctx); err != nil {
		return 0, err
	}
	now := s.opts.Now()
	cutoff := strconv.FormatInt(now.Add(-s.opts.Retention).UnixMilli(), 10)
	removed := 0
	for {
		ips, err := s.rdb.ZRangeByScore(ctx, s.seenIndexKey(), &redis.ZRangeBy{Min: "-inf", Max: cutoff, Count: sweepBatch}).Result()
		if err != nil {
			return removed, fmt.Errorf("view: sweep: %w", err)
		}
		if len(ips) == 0 {
			return removed, nil
		}
		for _, ip := range ips {
			if err := ctx.Err(); err != nil {
				return removed, err
			}
			gone, err := expireIndicator.Run(ctx, s.rdb, s.indicatorKeys(ip), now.UnixMilli(), s.opts.Retention.Milliseconds()).Int()
			if err != nil {
				return removed, fmt.Errorf("view: sweep %s: %w", ip, err)
			}
			if gone == 1 {
				removed++
			}
			if err := s.settle(ctx, ip, gone == 1); err != nil {
				return removed, err
			}
		}
		if len(ips) < sweepBatch {
			return removed, nil
		}
	}
}
