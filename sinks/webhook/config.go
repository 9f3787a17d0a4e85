package webhook

import (
	"errors"
	"fmt"

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
	sinkhttp.PolicyConfig
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
		if err := sinkhttp.CheckURL(EnvPrefix+"URL", c.URL); err != nil {
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
	if err := c.PolicyConfig.Validate(EnvPrefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Configured reports whether a receiver URL is set.
func (c *Config) Configured() bool { return c.URL != "" }

func (c *Config) policy() sinkhttp.Policy {
	p := c.Policy()
	p.MaxBody = 64 << 10 // the answer is not used beyond its status
	return p
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
