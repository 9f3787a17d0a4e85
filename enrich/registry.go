package enrich

import (
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"strings"

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

// Defaults override the documented defaults of a provider's variables (names without the
// provider prefix: "RATE_LIMIT", "QUOTA"), for vendors whose limits differ from the common
// defaults (VirusTotal's public API allows 4 lookups a minute, say).
type Defaults map[string]string

// renamed are variables that changed names; setting one fails start-up with the new name.
var renamed = map[string]string{"DAILY_QUOTA": "QUOTA (with QUOTA_PERIOD=day)"}

// Register describes a provider whose configuration is C (env-tagged, embedding Policy) and
// whose constructor is build. A provider package exposes one such Registration; the list in
// enrich/providers is the one line that adds it to the binary.
func Register[C any, PC interface {
	*C
	ProviderConfig
}](name string, build func(*C, Deps) (Provider, error), defaults Defaults) Registration {
	prefix := config.Prefix + strings.ToUpper(name) + "_"
	vars := func() []config.Var {
		vs := config.VarsOf(prefix, reflect.TypeFor[C]())
		for i := range vs {
			if d, ok := defaults[strings.TrimPrefix(vs[i].Name, prefix)]; ok {
				vs[i].Default = d
			}
		}
		return vs
	}
	return Registration{
		Name:   name,
		Prefix: prefix,
		vars:   vars,
		load: func(environ map[string]string, deps Deps) (Provider, *Policy, bool, error) {
			for old, now := range renamed {
				if _, set := environ[prefix+old]; set {
					return nil, nil, false, fmt.Errorf("%s%s was renamed: set %s%s", prefix, old, prefix, now)
				}
			}
			if len(defaults) > 0 {
				withDefaults := maps.Clone(environ)
				for k, v := range defaults {
					if _, set := withDefaults[prefix+k]; !set {
						withDefaults[prefix+k] = v
					}
				}
				environ = withDefaults
			}
			cfg := new(C)
			if err := config.Parse(cfg, prefix, environ); err != nil {
				return nil, nil, false, fmt.Errorf("%s: %w", name, err)
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
	case p.Quota < 0:
		return bad("QUOTA", "must not be negative (0 = unmetered)")
	case p.QuotaPeriod != PeriodDay && p.QuotaPeriod != PeriodMonth:
		return bad("QUOTA_PERIOD", fmt.Sprintf("%q is not a quota period: use day or month", p.QuotaPeriod))
	case p.QuotaWarnRatio <= 0 || p.QuotaWarnRatio > 1:
		return bad("QUOTA_WARN_RATIO", "must be in (0, 1]")
	case p.TTLMalicious <= 0 || p.TTLBenign <= 0 || p.TTLNotFound <= 0:
		return bad("TTL_*", "cache lifetimes must be greater than zero")
	case p.AttemptTimeout <= 0:
		return bad("ATTEMPT_TIMEOUT", "must be greater than zero")
	case p.RetryBudget < 0:
		return bad("RETRY_BUDGET", "must not be negative")
	case p.RefreshShare < 0 || p.RefreshShare > 1:
		return bad("REFRESH_SHARE", "must be in [0, 1]")
	case p.RefreshWindow <= 0 || p.RefreshWindow >= 1:
		return bad("REFRESH_WINDOW", "must be in (0, 1)")
	case p.RefreshMinHits < 1:
		return bad("REFRESH_MIN_HITS", "must be at least 1")
	case p.QuotaReserve < 0 || p.QuotaReserve >= 1:
		return bad("QUOTA_RESERVE", "must be in [0, 1)")
	case p.SourceShare <= 0 || p.SourceShare > 1:
		return bad("SOURCE_SHARE", "must be in (0, 1]")
	case p.V6PrefixBudget < 0:
		return bad("V6_PREFIX_BUDGET", "must not be negative")
	}
	return nil
}
