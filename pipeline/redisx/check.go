package redisx

import (
	"context"
	"fmt"
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
	if err == nil {
		return nil
	}
	return explain(cfg, err)
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
