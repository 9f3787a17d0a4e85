package slack

import (
	"errors"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// EnvPrefix is the prefix of the sink's variables (sinks.Register derives the same from Name).
const EnvPrefix = config.Prefix + "SINK_SLACK_"

// Config is the Slack sink's configuration, parsed by caarlos0/env with EnvPrefix.
type Config struct {
	WebhookURL         config.Secret `env:"WEBHOOK_URL" desc:"Slack incoming webhook URL (https://hooks.slack.com/services/...). The URL is the credential; without it the sink is off." secret:"true"`
	WebhookURLFromFile config.Secret `env:"WEBHOOK_URL_FILE,file" desc:"File holding the Slack incoming webhook URL (instead of THREATPIPE_SINK_SLACK_WEBHOOK_URL)." secret:"true"`
	sinkhttp.PolicyConfig
}

// Resolve applies THREATPIPE_SINK_SLACK_WEBHOOK_URL_FILE and validates, naming variables. It
// is idempotent. Errors never quote the URL: it is the credential.
func (c *Config) Resolve() error {
	var errs []error
	if err := config.ResolveSecretFile(&c.WebhookURL, c.WebhookURLFromFile, EnvPrefix+"WEBHOOK_URL"); err != nil {
		errs = append(errs, err)
	} else {
		c.WebhookURLFromFile = ""
	}
	if c.WebhookURL != "" {
		if err := sinkhttp.CheckURL(EnvPrefix+"WEBHOOK_URL", c.WebhookURL.Reveal()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.PolicyConfig.Validate(EnvPrefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Configured reports whether a webhook URL is set.
func (c *Config) Configured() bool { return c.WebhookURL != "" }

func (c *Config) policy() sinkhttp.Policy {
	p := c.Policy()
	p.MaxBody = 64 << 10 // Slack answers "ok" or a short error string; nothing larger is worth reading.
	return p
}
