package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// EnvPrefix is the prefix of the sink's variables (sinks.Register derives the same from Name).
const EnvPrefix = config.Prefix + "SINK_WEBHOOK_"

// minSecretLen is the shortest signing key accepted: 32 characters, as from
// `openssl rand -hex 16` or longer.
const minSecretLen = 32

// Config is the webhook sink's configuration, parsed by caarlos0/env with EnvPrefix.
type Config struct {
	URL            string        `env:"URL" desc:"Receiver URL that signed JSON actions are POSTed to. Without it the sink is off. https, or http to loopback addresses only."`
	Secret         config.Secret `env:"SECRET" desc:"HMAC-SHA256 key (at least 32 characters) that signs every request in X-Threatpipe-Signature; the receiver verifies with the same key. Required with THREATPIPE_SINK_WEBHOOK_URL." secret:"true"`
	SecretFromFile config.Secret `env:"SECRET_FILE,file" desc:"File holding the webhook signing key (instead of THREATPIPE_SINK_WEBHOOK_SECRET)." secret:"true"`
	Kind           string        `env:"KIND" envDefault:"alert" desc:"What the receiver does: alert (notifications) or block (a firewall integration; expired blocks are lifted with an unblock request)."`
	AttemptTimeout time.Duration `env:"ATTEMPT_TIMEOUT" envDefault:"10s" desc:"Timeout of one request to the receiver."`
	RetryBudget    time.Duration `env:"RETRY_BUDGET" envDefault:"30s" desc:"Longest one action may take, retries and waits (Retry-After) included."`
}

// Resolve applies THREATPIPE_SINK_WEBHOOK_SECRET_FILE and validates, naming variables. It is
// idempotent. Errors never quote the URL, whose path or query may hold a token.
func (c *Config) Resolve() error {
	var errs []error
	if err := config.ResolveSecretFile(&c.Secret, c.SecretFromFile, EnvPrefix+"SECRET"); err != nil {
		errs = append(errs, err)
	} else {
		c.SecretFromFile = ""
	}
	if c.URL != "" {
		if err := checkURL(c.URL); err != nil {
			errs = append(errs, err)
		}
		if err := checkSecret(c.Secret); err != nil {
			errs = append(errs, err)
		}
	}
	switch sinks.Kind(c.Kind) {
	case sinks.KindAlert, sinks.KindBlock:
	default:
		errs = append(errs, fmt.Errorf("%sKIND: %q is not one of alert, block", EnvPrefix, c.Kind))
	}
	if c.AttemptTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%sATTEMPT_TIMEOUT: must be greater than zero", EnvPrefix))
	}
	if c.RetryBudget < c.AttemptTimeout {
		errs = append(errs, fmt.Errorf("%sRETRY_BUDGET: must be at least %sATTEMPT_TIMEOUT (%s)", EnvPrefix, EnvPrefix, c.AttemptTimeout))
	}
	return errors.Join(errs...)
}

// Configured reports whether a receiver URL is set.
func (c *Config) Configured() bool { return c.URL != "" }

func (c *Config) policy() sinkhttp.Policy {
	// The answer is not used beyond its status; a small bound keeps error bodies short.
	return sinkhttp.Policy{AttemptTimeout: c.AttemptTimeout, RetryBudget: c.RetryBudget, MaxBody: 64 << 10}
}

func checkSecret(s config.Secret) error {
	switch {
	case s == "":
		return fmt.Errorf("%sSECRET: is required with %sURL (or set %sSECRET_FILE): requests are always signed", EnvPrefix, EnvPrefix, EnvPrefix)
	case len(s.Reveal()) < minSecretLen:
		return fmt.Errorf("%sSECRET: must be at least %d characters (e.g. openssl rand -hex 32)", EnvPrefix, minSecretLen)
	}
	return nil
}

func checkURL(raw string) error {
	name := EnvPrefix + "URL"
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%s: is not a URL", name)
	case u.User != nil:
		return fmt.Errorf("%s: must not contain user information", name)
	case u.Host == "":
		return fmt.Errorf("%s: must be an absolute https URL", name)
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return fmt.Errorf("%s: must be an https URL (http is allowed only to loopback addresses)", name)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%s: must not have a fragment", name)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
