package enrich

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v10"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

// Deps are what provider constructors may use.
type Deps struct {
	HTTPClient *http.Client
	Log        *zap.Logger
}

// ProviderConfig is implemented by every provider's configuration struct (through a pointer).
// Resolve applies _FILE secrets and validates, naming variables in its errors; Configured says
// whether the operator set the provider up (an API key, say) so that it should run.
type ProviderConfig interface {
	Resolve() error
	Configured() bool
	ProviderPolicy() *Policy
}

// Registration describes one provider: its name, its variables (for docs and `threatpipe
// config`) and how to build it from the environment.
type Registration struct {
	Name string
	// Prefix of its variables: THREATPIPE_<NAME>_.
	Prefix string
	vars   func() []config.Var
	load   func(environ map[string]string, deps Deps) (Provider, *Policy, bool, error)
}

// Vars lists the provider's variables.
func (r Registration) Vars() []config.Var { return r.vars() }

// Register describes a provider whose configuration is C (env-tagged, embedding Policy) and
// whose constructor is build. A provider package exposes one such Registration; the list in
// enrich/providers is the one line that adds it to the binary.
func Register[C any, PC interface {
	*C
	ProviderConfig
}](name string, build func(*C, Deps) (Provider, error)) Registration {
	prefix := config.Prefix + strings.ToUpper(name) + "_"
	return Registration{
		Name:   name,
		Prefix: prefix,
		vars:   func() []config.Var { return config.VarsOf(prefix, reflect.TypeFor[C]()) },
		load: func(environ map[string]string, deps Deps) (Provider, *Policy, bool, error) {
			cfg := new(C)
			if err := env.ParseWithOptions(cfg, env.Options{Prefix: prefix, Environment: environ}); err != nil {
				return nil, nil, false, fmt.Errorf("%s: %w", name, config.ExplainParseError(err, config.VarsOf(prefix, reflect.TypeFor[C]())))
			}
			pc := PC(cfg)
			if err := pc.Resolve(); err != nil {
				return nil, nil, false, err
			}
			pol := pc.ProviderPolicy()
			if err := pol.validate(prefix); err != nil {
				return nil, nil, false, err
			}
			if !pol.Enabled || !pc.Configured() {
				return nil, pol, false, nil
			}
			p, err := build(cfg, deps)
			if err != nil {
				return nil, nil, false, fmt.Errorf("%s: %w", name, err)
			}
			return p, pol, true, nil
		},
	}
}

// Configured is a provider that the environment set up, with its policy.
type Configured struct {
	Provider Provider
	Policy   *Policy
}

// Load builds every registered provider the environment configures, in registration order.
// Errors name the offending variable.
func Load(regs []Registration, environ []string, deps Deps) ([]Configured, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var out []Configured
	for _, r := range regs {
		p, pol, ok, err := r.load(vars, deps)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, Configured{Provider: p, Policy: pol})
		}
	}
	return out, nil
}

func (p *Policy) validate(prefix string) error {
	bad := func(name, msg string) error { return fmt.Errorf("%s%s: %s", prefix, name, msg) }
	switch {
	case p.RateLimit <= 0:
		return bad("RATE_LIMIT", "must be greater than zero")
	case p.RateBurst < 1:
		return bad("RATE_BURST", "must be at least 1")
	case p.MaxConcurrent < 1:
		return bad("MAX_CONCURRENT", "must be at least 1")
	case p.DailyQuota < 0:
		return bad("DAILY_QUOTA", "must not be negative (0 = unmetered)")
	case p.QuotaWarnRatio <= 0 || p.QuotaWarnRatio > 1:
		return bad("QUOTA_WARN_RATIO", "must be in (0, 1]")
	case p.TTLMalicious <= 0 || p.TTLBenign <= 0 || p.TTLNotFound <= 0:
		return bad("TTL_*", "cache lifetimes must be greater than zero")
	case p.AttemptTimeout <= 0:
		return bad("ATTEMPT_TIMEOUT", "must be greater than zero")
	case p.RetryBudget < 0:
		return bad("RETRY_BUDGET", "must not be negative")
	}
	return nil
}
