package providerhttp

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

// DefaultMaxBodyBytes bounds what one response may weigh.
const DefaultMaxBodyBytes = 4 << 20

// Config is the configuration every HTTP provider shares; a provider's own Config embeds it and
// registers its base URL (and any vendor limits) as defaults with enrich.Register. Parsed by
// caarlos0/env under the provider's prefix (THREATPIPE_<NAME>_).
type Config struct {
	APIKey         config.Secret `env:"API_KEY" desc:"API key. Without a key the provider is off (except keyless providers, switched on with ENABLED)." secret:"true"`
	APIKeyFromFile config.Secret `env:"API_KEY_FILE,file" desc:"File holding the API key (instead of API_KEY)." secret:"true"`
	BaseURL        string        `env:"BASE_URL" desc:"API base URL (point it at 'threatpipe sim' for demos and tests)."`
	MaxBodyBytes   int64         `env:"MAX_BODY_BYTES" envDefault:"4194304" desc:"Largest response read, in bytes; larger answers are treated as transient errors."`
	enrich.Policy
}

// Resolve applies API_KEY_FILE and validates the values, with errors that name the variable
// (prefix is the provider's, THREATPIPE_<NAME>_). It is idempotent.
func (c *Config) Resolve(prefix string) error {
	var errs []error
	if c.APIKeyFromFile != "" {
		if c.APIKey != "" {
			errs = append(errs, fmt.Errorf("%sAPI_KEY and %sAPI_KEY_FILE are both set: set one", prefix, prefix))
		} else {
			c.APIKey = config.Secret(strings.TrimRight(c.APIKeyFromFile.Reveal(), "\r\n"))
			c.APIKeyFromFile = ""
		}
	}
	if err := CheckKey(prefix, c.APIKey); err != nil {
		errs = append(errs, err)
	}
	if err := CheckBaseURL(prefix, c.BaseURL); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("%sMAX_BODY_BYTES: must be greater than zero", prefix))
	}
	return errors.Join(errs...)
}

// CheckKey rejects keys that cannot travel in a header. The key itself is never quoted.
func CheckKey(prefix string, k config.Secret) error {
	for _, r := range k.Reveal() {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%sAPI_KEY: contains whitespace or control characters (check the file or variable for stray characters)", prefix)
		}
	}
	return nil
}

// CheckBaseURL accepts an absolute http(s) URL without credentials, query or fragment.
func CheckBaseURL(prefix, raw string) error {
	name := prefix + "BASE_URL"
	if raw == "" {
		return fmt.Errorf("%s: must not be empty", name)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %q is not a URL", name, raw)
	}
	if u.User != nil {
		return fmt.Errorf("%s: must not contain user information (the key goes in %sAPI_KEY)", name, prefix)
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
