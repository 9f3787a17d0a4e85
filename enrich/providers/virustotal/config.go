package virustotal

import (
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

// EnvPrefix is the prefix the provider registry parses Config with.
const EnvPrefix = config.Prefix + "VIRUSTOTAL_"

// DefaultBaseURL is the production API; the client appends /api/v3/ip_addresses/{ip}.
const DefaultBaseURL = "https://www.virustotal.com"

// Config is the VirusTotal provider's configuration, parsed by caarlos0/env with EnvPrefix.
// Call Resolve after parsing.
type Config struct {
	providerhttp.Config
}

// Resolve applies THREATPIPE_VIRUSTOTAL_API_KEY_FILE and the default base URL, and validates
// the values, with errors that name the variable. It is idempotent.
func (c *Config) Resolve() error {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	return c.Config.Resolve(EnvPrefix)
}

// Configured reports whether a key is set: without one the provider is not used.
func (c *Config) Configured() bool { return c.APIKey != "" }
