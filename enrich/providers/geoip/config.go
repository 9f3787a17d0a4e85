package geoip

import (
	"errors"
	"fmt"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

// EnvPrefix is the prefix the provider registry parses Config with.
const EnvPrefix = config.Prefix + "GEOIP_"

// Config is the GeoIP source's configuration, parsed by caarlos0/env with EnvPrefix. Call
// Resolve after parsing.
//
// The policy is not parsed from the environment: rate limits, quotas and retries mean nothing
// for a local file, and leaving the field unexported and untagged keeps those variables out of
// `threatpipe config`.
type Config struct {
	CityDB         string        `env:"CITY_DB" desc:"Path of a GeoLite2/GeoIP2 City or Country database (.mmdb): country, city and coordinates. Reloaded when the file changes."`
	ASNDB          string        `env:"ASN_DB" desc:"Path of a GeoLite2 ASN database (.mmdb): autonomous system number and organisation. Reloaded when the file changes."`
	ReloadInterval time.Duration `env:"RELOAD_INTERVAL" envDefault:"1m" desc:"How often the database files are checked for changes (modification time and size)."`

	policy enrich.Policy
}

// Resolve validates the values, with errors that name the variable: each set path must open as
// a MaxMind DB of the right type. It is idempotent.
func (c *Config) Resolve() error {
	var errs []error
	if c.ReloadInterval <= 0 {
		errs = append(errs, fmt.Errorf("%sRELOAD_INTERVAL: must be greater than zero", EnvPrefix))
	}
	for _, f := range c.files() {
		if err := validate(f.path, f.kind); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.env, err))
		}
	}
	return errors.Join(errs...)
}

// Configured reports whether either database is set: without one the source is not used.
func (c *Config) Configured() bool { return c.CityDB != "" || c.ASNDB != "" }

// ProviderPolicy implements enrich.ProviderConfig with the fixed policy of a local source
// (enrich.OfflinePolicy): always on, limits that never bind, no retries (a local read that
// failed fails again), one bounded attempt.
func (c *Config) ProviderPolicy() *enrich.Policy {
	if !c.policy.Enabled {
		c.policy = *enrich.OfflinePolicy()
	}
	return &c.policy
}

// file is one configured database: its variable (for messages), path and expected type.
type file struct {
	env  string
	path string
	kind kind
}

func (c *Config) files() []file {
	var out []file
	if c.CityDB != "" {
		out = append(out, file{EnvPrefix + "CITY_DB", c.CityDB, kindCity})
	}
	if c.ASNDB != "" {
		out = append(out, file{EnvPrefix + "ASN_DB", c.ASNDB, kindASN})
	}
	return out
}
