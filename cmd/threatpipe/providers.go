package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers"
)

// accountChecker is implemented by providers with a key-check endpoint (the "Test Connection"
// of a SOC tool).
type accountChecker interface {
	CheckAccount(ctx context.Context) (string, error)
}

// howToEnable says which variable switches a provider on: its key, or for sources that take
// none the variable they document.
func howToEnable(r enrich.Registration) string {
	for _, v := range r.Vars() {
		if strings.HasSuffix(v.Name, "_ENABLED") && v.Default == "false" { // keyless: off until enabled
			return "set " + v.Name + "=true to enable"
		}
	}
	for _, v := range r.Vars() {
		if strings.HasSuffix(v.Name, "_API_KEY") {
			return "set " + v.Name + " to enable"
		}
	}
	names := make([]string, 0, 2)
	for _, v := range r.Vars() {
		if strings.HasSuffix(v.Name, "_DB") {
			names = append(names, v.Name)
		}
	}
	return "set " + strings.Join(names, " or ") + " to enable"
}

func runProviders(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "providers list|check", `list: every provider compiled in, whether the environment configures it, and its budget.
check: calls each configured provider's account endpoint (for Criminal IP, POST /v1/user/me)
and prints the account and its remaining allowance; exits 1 if any check fails.`)
	timeout := fs.Duration("timeout", 15*time.Second, "timeout of each check")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch fs.Arg(0) {
	case "list":
		configured, err := loadProviders(env.environ, zap.NewNop())
		if err != nil {
			return err
		}
		on := map[string]enrich.Configured{}
		for _, c := range configured {
			on[c.Provider.Name()] = c
		}
		for _, r := range providers.All() {
			c, ok := on[r.Name]
			if !ok {
				fmt.Fprintf(env.stdout, "%-12s off (%s)\n", r.Name, howToEnable(r))
				continue
			}
			p := c.Policy
			quota := "unmetered"
			if p.Quota > 0 {
				quota = fmt.Sprintf("%d/%s", p.Quota, p.QuotaPeriod)
			}
			fmt.Fprintf(env.stdout, "%-12s on  cost=%s rate=%g/s burst=%d quota=%s ttl malicious=%s benign=%s not-found=%s\n",
				r.Name, c.Provider.Cost(), p.RateLimit, p.RateBurst, quota, p.TTLMalicious, p.TTLBenign, p.TTLNotFound)
		}
		return nil
	case "check":
		configured, err := loadProviders(env.environ, zap.NewNop())
		if err != nil {
			return err
		}
		if len(configured) == 0 {
			return errors.New("no provider is configured (threatpipe providers list says how to enable each)")
		}
		var failed int
		for _, c := range configured {
			ac, ok := c.Provider.(accountChecker)
			if !ok {
				fmt.Fprintf(env.stdout, "%-12s no account check available\n", c.Provider.Name())
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, *timeout)
			summary, err := ac.CheckAccount(cctx)
			cancel()
			if err != nil {
				failed++
				fmt.Fprintf(env.stdout, "%-12s FAILED: %v\n", c.Provider.Name(), err)
				continue
			}
			fmt.Fprintf(env.stdout, "%-12s ok: %s\n", c.Provider.Name(), summary)
		}
		if failed > 0 {
			return fmt.Errorf("%d provider check(s) failed", failed)
		}
		return nil
	default:
		fs.Usage()
		return fmt.Errorf("want a subcommand: list or check")
	}
}
