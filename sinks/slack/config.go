package slack

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// EnvPrefix is the prefix of the sink's variables (sinks.Register derives the same from Name).
const EnvPrefix = config.Prefix + "SINK_SLACK_"

// Config is the Slack sink's configuration, parsed by caarlos0/env with EnvPrefix.
type Config struct {
	WebhookURL         config.Secret `env:"WEBHOOK_URL" desc:"Slack incoming webhook URL (https://hooks.slack.com/services/...). The URL is the credential; without it the sink is off." secret:"true"`
	WebhookURLFromFile config.Secret `env:"WEBHOOK_URL_FILE,file" desc:"File holding the Slack incoming webhook URL (instead of THREATPIPE_SINK_SLACK_WEBHOOK_URL)." secret:"true"`
	AttemptTimeout     time.Duration `env:"ATTEMPT_TIMEOUT" envDefault:"10s" desc:"Timeout of one request to Slack."`
	RetryBudget        time.Duration `env:"RETRY_BUDGET" envDefault:"30s" desc:"Longest one message may take, retries and waits (Retry-After) included."`
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
		if err := checkWebhookURL(c.WebhookURL.Reveal()); err != nil {
			errs = append(errs, err)
		}
	}
	if c.AttemptTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%sATTEMPT_TIMEOUT: must be greater than zero", EnvPrefix))
	}
	if c.RetryBudget < c.AttemptTimeout {
		errs = append(errs, fmt.Errorf("%sRETRY_BUDGET: must be at least %sATTEMPT_TIMEOUT (%s)", EnvPrefix, EnvPrefix, c.AttemptTimeout))
	}
	return errors.Join(errs...)
}

// Configured reports whether a webhook URL is set.
func (c *Config) Configured() bool { return c.WebhookURL != "" }

func (c *Config) policy() sinkhttp.Policy {
	// Slack answers "ok" or a short error string; nothing larger is worth reading.
	return sinkhttp.Policy{AttemptTimeout: c.AttemptTimeout, RetryBudget: c.RetryBudget, MaxBody: 64 << 10}
}

// checkWebhookURL accepts https URLs, and http only to loopback (tests, simulators).
func checkWebhookURL(raw string) error {
	name := EnvPrefix + "WEBHOOK_URL"
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
