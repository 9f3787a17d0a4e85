package redisx

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

// CheckSettings sends one PING and returns an error naming the variable to fix when the failure
// is a setting's fault: credentials the server rejects, a server that wants credentials, a user
// without permission, or a TLS handshake the settings cannot pass (untrusted CA, wrong server
// name, TLS to a plain-text port, a client certificate the server requires). An unreachable
// server is not: it returns nil, and the processes ride the outage out as they do later. Run it at
// start-up, so that a wrong password fails the start with its name.
func CheckSettings(ctx context.Context, c redis.UniversalClient, cfg *config.Redis) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+5*time.Second)
	defer cancel()
	err := c.Ping(ctx).Err()
	if err != nil {
		return explain(cfg, err)
	}
	return checkReplicas(ctx, c, cfg)
}

// checkReplicas fails the start when a primary has fewer replicas connected than
// THREATPIPE_REDIS_WAIT_REPLICAS asks to acknowledge each write: every paid answer's store would
// then be retried for a minute and every ledger write would wait, in silence. A server that will
// not answer INFO (an ACL without it) is not checked.
func checkReplicas(ctx context.Context, c redis.UniversalClient, cfg *config.Redis) error {
	if cfg.WaitReplicas <= 0 {
		return nil
	}
	check := func(ctx context.Context, node redis.UniversalClient) error {
		info, err := node.Info(ctx, "replication").Result()
		if err != nil {
			return nil
		}
		if n, ok := infoInt(info, "connected_slaves"); ok && n < cfg.WaitReplicas {
			return fmt.Errorf("%sREDIS_WAIT_REPLICAS: %d replicas must acknowledge each write, but the primary has %d connected (set 0 for a Redis without replicas)",
				config.Prefix, cfg.WaitReplicas, n)
		}
		return nil
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return check(ctx, m) })
	}
	return check(ctx, c)
}

// infoInt reads field's integer value from an INFO reply.
func infoInt(info, field string) (int, bool) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.Atoi(v)
			return n, err == nil
		}
	}
	return 0, false
}

func explain(cfg *config.Redis, err error) error {
	addrs := strings.Join(cfg.Addrs, ",")
	user := cfg.Username
	if user == "" {
		user = "default"
	}
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "WRONGPASS"):
		return fmt.Errorf("%sREDIS_PASSWORD: %s rejected user %q with this password (check %sREDIS_USERNAME too): %w",
			config.Prefix, addrs, user, config.Prefix, err)
	case strings.HasPrefix(msg, "NOAUTH"):
		return fmt.Errorf("%sREDIS_PASSWORD: %s requires authentication: set %sREDIS_USERNAME and %sREDIS_PASSWORD: %w",
			config.Prefix, addrs, config.Prefix, config.Prefix, err)
	case strings.HasPrefix(msg, "NOPERM"):
		return fmt.Errorf("%sREDIS_USERNAME: user %q may not run what threatpipe needs on %s (see docs/operations.md for the ACL): %w",
			config.Prefix, user, addrs, err)
	}
	return config.ExplainTLSError("REDIS_", addrs, err)
}
