package criminalip

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

// EnvPrefix is the prefix the provider registry parses Config with.
const EnvPrefix = config.Prefix + "CRIMINALIP_"

// DefaultBaseURL is the production API.
const DefaultBaseURL = "https://api.criminalip.io"

// DefaultMaxBodyBytes bounds what one response may weigh.
const DefaultMaxBodyBytes = 4 << 20

// Config is the Criminal IP provider's configuration, parsed by caarlos0/env with EnvPrefix.
// Call Resolve after parsing.
type Config struct {
	APIKey         config.Secret `env:"API_KEY" desc:"Criminal IP API key, sent in the x-api-key header. Without a key the provider is off." secret:"true"`
	APIKeyFromFile config.Secret `env:"API_KEY_FILE,file" desc:"File holding the Criminal IP API key (instead of THREATPIPE_CRIMINALIP_API_KEY)." secret:"true"`
	BaseURL        string        `env:"BASE_URL" envDefault:"https://api.criminalip.io" desc:"Criminal IP API base URL (point it at 'threatpipe sim' for demos and tests)."`
	MaxBodyBytes   int64         `env:"MAX_BODY_BYTES" envDefault:"4194304" desc:"Largest Criminal IP response read, in bytes; larger answers are treated as transient errors."`
	enrich.Policy
}

// Resolve applies THREATPIPE_CRIMINALIP_API_KEY_FILE and validates the values, with errors that
// name the variable. It is idempotent.
func (c *Config) Resolve() error {
	var errs []error
	if c.APIKeyFromFile != "" {
		if c.APIKey != "" {
			errs = append(errs, fmt.Errorf("%sAPI_KEY and %sAPI_KEY_FILE are both set: set one", EnvPrefix, EnvPrefix))
		} else {
			c.APIKey = config.Secret(strings.TrimRight(c.APIKeyFromFile.Reveal(), "\r\n"))
			c.APIKeyFromFile = ""
		}
	}
	if err := checkKey(c.APIKey); err != nil {
		errs = append(errs, err)
	}
	if err := checkBaseURL(c.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("%sMAX_BODY_BYTES: must be greater than zero", EnvPrefix))
	}
	return errors.Join(errs...)
}

// Configured reports whether a key is set: without one the provider is not used.
func (c *Config) Configured() bool { return c.APIKey != "" }

// checkKey rejects keys that cannot travel in a header. The key itself is never quoted.
func checkKey(k config.Secret) error {
	for _, r := range k.Reveal() {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%sAPI_KEY: contains whitespace or control characters (check the file or variable for stray characters)", EnvPrefix)
		}
	}
	return nil
}

func checkBaseURL(raw string) error {
	name := EnvPrefix + "BASE_URL"
	if raw == "" {
		return fmt.Errorf("%s: must not be empty", name)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %q is not a URL", name, raw)
	}
	if u.User != nil {
		return fmt.Errorf("%s: must not contain user information (the key goes in THREATPIPE_CRIMINALIP_API_KEY)", name)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s: %q must be an absolute http:// or https:// URL", name, raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%s: %q has no host", name, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s: %q must not have a query or fragment", name, raw)
	}
	return nil
}
