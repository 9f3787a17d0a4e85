package internetdb

import (
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

// EnvPrefix is the prefix the provider registry parses Config with.
const EnvPrefix = config.Prefix + "INTERNETDB_"

// DefaultBaseURL is the production API.
const DefaultBaseURL = "https://internetdb.shodan.io"

// Config is the Shodan InternetDB provider's configuration, parsed by caarlos0/env with
// EnvPrefix. Call Resolve after parsing.
//
// InternetDB takes no key: THREATPIPE_INTERNETDB_API_KEY (and _FILE) are accepted, because
// every HTTP provider shares the variables, but ignored and never sent. Without a key to tell
// that an operator wants it, the provider is switched on by THREATPIPE_INTERNETDB_ENABLED=true
// (its registration defaults ENABLED to false): InternetDB is free for non-commercial use only,
// which an operator has to decide.
type Config struct {
	providerhttp.Config
}

// Resolve applies the default base URL and validates the values, with errors that name the
// variable. It is idempotent.
func (c *Config) Resolve() error {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	return c.Config.Resolve(EnvPrefix)
}

// Configured is always true: there is no key to wait for, and ENABLED decides.
func (c *Config) Configured() bool { return true }
