package threatq

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// EnvPrefix is the prefix of the sink's variables (sinks.Register derives the same from Name).
const EnvPrefix = config.Prefix + "SINK_THREATQ_"

// Auth is how to reach one ThreatQ instance: its URL and the OAuth2 client that gets tokens
// from POST /api/token. The sink and the ingest poller embed it under their own prefixes.
//
// With Username set the grant is "password" (a ThreatQ user and the API client id of its My
// Account page, as Cortex XSOAR's ThreatQ v2 integration logs in); without it the grant is
// "client_credentials" (an OAuth client made with `artisan threatq:oauth2-client`, as
// Elastic's ti_threatq package logs in).
type Auth struct {
	URL              string        `env:"URL" desc:"ThreatQ URL (https://threatq.example.com); the API is under its /api. Without it this ThreatQ integration is off."`
	ClientID         string        `env:"CLIENT_ID" desc:"OAuth2 client id of the ThreatQ API client (My Account > API Credentials, or an artisan threatq:oauth2-client)."`
	ClientSecret     config.Secret `env:"CLIENT_SECRET" desc:"OAuth2 client secret; required for the client_credentials grant (no USERNAME)." secret:"true"`
	ClientSecretFile config.Secret `env:"CLIENT_SECRET_FILE,file" desc:"File holding the OAuth2 client secret (instead of CLIENT_SECRET)." secret:"true"`
	Username         string        `env:"USERNAME" desc:"ThreatQ user (e-mail) for the password grant; empty uses the client_credentials grant."`
	Password         config.Secret `env:"PASSWORD" desc:"Password of USERNAME." secret:"true"`
	PasswordFile     config.Secret `env:"PASSWORD_FILE,file" desc:"File holding the password of USERNAME (instead of PASSWORD)." secret:"true"`
}

// Grant types of POST /api/token.
const (
	GrantPassword          = "password"
	GrantClientCredentials = "client_credentials"
)

// Grant is the OAuth2 grant the settings select.
func (a *Auth) Grant() string {
	if a.Username != "" {
		return GrantPassword
	}
	return GrantClientCredentials
}

// Configured reports whether a ThreatQ URL is set.
func (a *Auth) Configured() bool { return a.URL != "" }

// Resolve applies the _FILE secrets and validates; errors name the variables under prefix and
// never quote a secret. It is idempotent.
func (a *Auth) Resolve(prefix string) error {
	var errs []error
	add := func(name, msg string) { errs = append(errs, fmt.Errorf("%s%s: %s", prefix, name, msg)) }
	for _, s := range []struct {
		value *config.Secret
		file  *config.Secret
		name  string
	}{{&a.ClientSecret, &a.ClientSecretFile, "CLIENT_SECRET"}, {&a.Password, &a.PasswordFile, "PASSWORD"}} {
		if err := config.ResolveSecretFile(s.value, *s.file, prefix+s.name); err != nil {
			errs = append(errs, err)
		} else {
			*s.file = ""
		}
	}
	if !a.Configured() {
		if a.ClientID != "" || a.ClientSecret != "" || a.Username != "" || a.Password != "" {
			add("URL", "must be set when the other ThreatQ credentials are")
		}
		return errors.Join(errs...)
	}
	a.URL = strings.TrimRight(a.URL, "/")
	if err := sinkhttp.CheckBaseURL(prefix+"URL", a.URL); err != nil {
		errs = append(errs, err)
	}
	if a.ClientID == "" {
		add("CLIENT_ID", "must be set")
	} else if !printable(a.ClientID) {
		add("CLIENT_ID", "has whitespace or control characters")
	}
	switch a.Grant() {
	case GrantPassword:
		if !printable(a.Username) {
			add("USERNAME", "has whitespace or control characters")
		}
		if a.Password == "" {
			add("PASSWORD", "must be set when USERNAME is (or "+prefix+"PASSWORD_FILE)")
		}
	default:
		if a.Password != "" {
			add("USERNAME", "must be set when PASSWORD is")
		}
		if a.ClientSecret == "" {
			add("CLIENT_SECRET", "must be set for the client_credentials grant (or set USERNAME and PASSWORD)")
		}
	}
	if a.ClientSecret != "" {
		if err := sinkhttp.CheckHeaderSecret(prefix+"CLIENT_SECRET", a.ClientSecret.Reveal()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func printable(s string) bool {
	return len(s) <= 256 && !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// Config is the ThreatQ sink's configuration, parsed by caarlos0/env with EnvPrefix.
type Config struct {
	Auth
	Status string `env:"STATUS" envDefault:"Active" desc:"ThreatQ status of the indicators the sink creates (a status name of the instance: Active, Review, ...); a step's status param overrides it."`
	Source string `env:"SOURCE" envDefault:"threatpipe" desc:"ThreatQ source the sink's indicators and attributes are credited to."`
	sinkhttp.PolicyConfig
}

// maxName bounds status, source, attribute and tag names: ThreatQ's own are short labels.
const maxName = 255

// Resolve applies the _FILE secrets and validates, naming variables.
func (c *Config) Resolve() error {
	errs := []error{c.Auth.Resolve(EnvPrefix)}
	if !c.Configured() {
		return errors.Join(errs...)
	}
	if err := checkLabel(c.Status); err != nil {
		errs = append(errs, fmt.Errorf("%sSTATUS: %w", EnvPrefix, err))
	}
	if err := checkLabel(c.Source); err != nil {
		errs = append(errs, fmt.Errorf("%sSOURCE: %w", EnvPrefix, err))
	}
	errs = append(errs, c.PolicyConfig.Validate(EnvPrefix))
	return errors.Join(errs...)
}

// checkLabel checks a status, source or tag name.
func checkLabel(s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return errors.New("must not be empty")
	case len(s) > maxName || strings.ContainsFunc(s, unicode.IsControl) || strings.TrimSpace(s) != s:
		return fmt.Errorf("%q is not a name (at most %d characters, no control characters or outer spaces)", s, maxName)
	}
	return nil
}
