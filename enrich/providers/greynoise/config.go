package greynoise

import (
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

// EnvPrefix is the prefix the provider registry parses Config with.
const EnvPrefix = config.Prefix + "GREYNOISE_"

// DefaultBaseURL is the production API.
const DefaultBaseURL = "https://api.greynoise.io"

// Config is the GreyNoise provider's configuration, parsed by caarlos0/env with EnvPrefix.
// Call Resolve after parsing.
//
// The Community API answers requests without a key too, at a lower allowance shared by
// everyone behind the same address (100 lookups a day in GreyNoise's own 429 example).
// threatpipe still asks for a key: a provider that nobody configured must not quietly spend
// that allowance, and a key's allowance is the operator's own.
type Config struct {
	providerhttp.Config
}

// Resolve applies THREATPIPE_GREYNOISE_API_KEY_FILE, the default base URL, and validates the
// values, with errors that name the variable. It is idempotent.
func (c *Config) Resolve() error {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	return c.Config.Resolve(EnvPrefix)
}

// Configured reports whether a key is set: without one the provider is not used.
func (c *Config) Configured() bool { return c.APIKey != "" }
