package abuseipdb

import (
	"errors"
	"fmt"

	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

// EnvPrefix is the prefix the provider registry parses Config with.
const EnvPrefix = config.Prefix + "ABUSEIPDB_"

// DefaultBaseURL is the production API; the client appends CheckPath.
const DefaultBaseURL = "https://api.abuseipdb.com"

// DefaultMaxAgeDays is how far back reports count when MAX_AGE_DAYS is not set. AbuseIPDB's
// own default is 30; 90 keeps slow, persistent abusers visible at the same cost per check.
const DefaultMaxAgeDays = 90

// Config is the AbuseIPDB provider's configuration, parsed by caarlos0/env with EnvPrefix.
// Call Resolve after parsing.
type Config struct {
	providerhttp.Config
	MaxAgeInDays int `env:"MAX_AGE_DAYS" envDefault:"90" desc:"Only reports from the last this many days count (AbuseIPDB's maxAgeInDays, 1-365)."`
}

// Resolve applies THREATPIPE_ABUSEIPDB_API_KEY_FILE and the default base URL, and validates
// the values, with errors that name the variable. It is idempotent.
func (c *Config) Resolve() error {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	return errors.Join(c.Config.Resolve(EnvPrefix), checkMaxAge(c.MaxAgeInDays))
}

// Configured reports whether a key is set: without one the provider is not used.
func (c *Config) Configured() bool { return c.APIKey != "" }

// checkMaxAge enforces AbuseIPDB's documented range, which it would otherwise answer with a
// 422 on every lookup.
func checkMaxAge(days int) error {
	if days < 1 || days > 365 {
		return fmt.Errorf("%sMAX_AGE_DAYS: %d is outside AbuseIPDB's range 1-365", EnvPrefix, days)
	}
	return nil
}
