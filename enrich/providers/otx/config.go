package otx

import (
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

// EnvPrefix is the prefix the provider registry parses Config with.
const EnvPrefix = config.Prefix + "OTX_"

// DefaultBaseURL is the production API.
const DefaultBaseURL = "https://otx.alienvault.com"

// Config is the AlienVault OTX provider's configuration, parsed by caarlos0/env with
// EnvPrefix. Call Resolve after parsing.
//
// OTX's indicator endpoints answer without a key too, but throttle keyless callers within
// minutes (429s observed after about half an hour of use); the key is what the allowance is
// counted against, so threatpipe requires one.
type Config struct {
	providerhttp.Config
}

// Resolve applies THREATPIPE_OTX_API_KEY_FILE, the default base URL, and validates the values,
// with errors that name the variable. It is idempotent.
func (c *Config) Resolve() error {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	return c.Config.Resolve(EnvPrefix)
}

// Configured reports whether a key is set: without one the provider is not used.
func (c *Config) Configured() bool { return c.APIKey != "" }
