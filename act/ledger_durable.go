package act

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/redisx"
)

// WaitForReplicas makes the ledger's writes that decide whether an action happens (claims,
// takeovers, settled claims, handled events, active blocks) count only once numReplicas replicas
// acknowledged them (Redis WAIT, on the same connection, within timeout each time). Replication
// is asynchronous: on a Sentinel or Cluster failover, what the old primary took in its last
// moments and had not passed on is lost, and a lost claim is an action done twice. Call it
// before the ledger is used; 0 (the default) waits for none.
func (l *Ledger) WaitForReplicas(numReplicas int, timeout time.Duration) *Ledger {
	l.waitReplicas, l.waitTimeout = numReplicas, timeout
	return l
}

var errNotReplicated = errors.New("not acknowledged by enough replicas")

// durable runs script on keys' primary. With WaitForReplicas it sends a WAIT in the same round
// trip and runs the script again until a replica has its effect: every script passed here is
// idempotent for the same arguments (a claim finding its own claim reports it created, a
// takeover finding its own result reports it done), so the re-run on the new primary, after the
// client follows a failover, repeats nothing. It gives up when ctx ends.
func (l *Ledger) durable(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	if l.waitReplicas <= 0 {
		return script.Run(ctx, l.rdb, keys, args...)
	}
	wait := 50 * time.Millisecond
	for {
		cmd, err := l.runWaited(ctx, script, keys, args...)
		if err == nil || cmd.Err() != nil {
			return cmd
		}
		select {
		case <-ctx.Done():
			cmd.SetErr(fmt.Errorf("%w: %w", err, ctx.Err()))
			return cmd
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Second)
	}
}

// runWaited runs script and WAIT in one round trip on one connection. cmd carries the script's
// own error; err says the write was not acknowledged by enough replicas.
func (l *Ledger) runWaited(ctx context.Context, script *redis.Script, keys []string, args ...any) (*redis.Cmd, error) {
	pipe, err := redisx.KeyPipeline(ctx, l.rdb, keys[0])
	if err != nil {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd, nil
	}
	// EVAL, not EVALSHA: a pipeline cannot fall back when the server lacks the script (NOSCRIPT),
	// as a new primary after a failover may.
	cmd := script.Eval(ctx, pipe, keys, args...)
	acks := redisx.QueueWait(ctx, pipe, l.waitReplicas, l.waitTimeout)
	_, _ = pipe.Exec(ctx)
	if cmd.Err() != nil && !errors.Is(cmd.Err(), redis.Nil) {
		redisx.ReloadCluster(ctx, l.rdb)
		return cmd, nil
	}
	if n, werr := acks.Result(); werr != nil || n < int64(l.waitReplicas) {
		return cmd, fmt.Errorf("ledger write acknowledged by %d of %d replicas within %s: %w", n, l.waitReplicas, l.waitTimeout,
			errors.Join(werr, errNotReplicated))
	}
	return cmd, nil
}
