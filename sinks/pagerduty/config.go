package pagerduty

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
const EnvPrefix = config.Prefix + "SINK_PAGERDUTY_"

// DefaultURL is the Events API v2 enqueue endpoint (US service region).
const DefaultURL = "https://events.pagerduty.com/v2/enqueue"

// routingKeyLen is the length of an Events API v2 integration key (the API answers 400
// "Length of 'routing_key' is incorrect (should be 32 characters)" otherwise).
const routingKeyLen = 32

// Config is the PagerDuty sink's configuration, parsed by caarlos0/env with EnvPrefix.
type Config struct {
	RoutingKey         config.Secret `env:"ROUTING_KEY" desc:"Integration key (32 characters) of the PagerDuty service's Events API v2 integration. Without it the sink is off." secret:"true"`
	RoutingKeyFromFile config.Secret `env:"ROUTING_KEY_FILE,file" desc:"File holding the PagerDuty integration key (instead of THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY)." secret:"true"`
	URL                string        `env:"URL" envDefault:"https://events.pagerduty.com/v2/enqueue" desc:"Events API v2 enqueue URL: https://events.eu.pagerduty.com/v2/enqueue for the EU service region; http is accepted only for loopback (tests, simulators)."`
	AttemptTimeout     time.Duration `env:"ATTEMPT_TIMEOUT" envDefault:"10s" desc:"Timeout of one request to PagerDuty."`
	RetryBudget        time.Duration `env:"RETRY_BUDGET" envDefault:"30s" desc:"Longest one event may take, retries and waits (Retry-After) included."`
}

// Resolve applies THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY_FILE and validates, naming variables.
// It is idempotent. Errors never quote the key.
func (c *Config) Resolve() error {
	var errs []error
	if err := config.ResolveSecretFile(&c.RoutingKey, c.RoutingKeyFromFile, EnvPrefix+"ROUTING_KEY"); err != nil {
		errs = append(errs, err)
	} else {
		c.RoutingKeyFromFile = ""
	}
	if c.RoutingKey != "" {
		if err := checkRoutingKey(c.RoutingKey.Reveal()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkURL(c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.AttemptTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%sATTEMPT_TIMEOUT: must be greater than zero", EnvPrefix))
	}
	if c.RetryBudget < c.AttemptTimeout {
		errs = append(errs, fmt.Errorf("%sRETRY_BUDGET: must be at least %sATTEMPT_TIMEOUT (%s)", EnvPrefix, EnvPrefix, c.AttemptTimeout))
	}
	return errors.Join(errs...)
}

// Configured reports whether an integration key is set.
func (c *Config) Configured() bool { return c.RoutingKey != "" }

func (c *Config) policy() sinkhttp.Policy {
	// Answers are a few hundred bytes of JSON.
	return sinkhttp.Policy{AttemptTimeout: c.AttemptTimeout, RetryBudget: c.RetryBudget, MaxBody: 64 << 10}
}

// checkRoutingKey accepts 32 letters and digits: integration keys are hex, event orchestration
// routing keys start with "R0".
func checkRoutingKey(k string) error {
	if len(k) != routingKeyLen {
		return fmt.Errorf("%sROUTING_KEY: must be %d characters, is %d (use the Events API v2 integration key, not a REST API key)", EnvPrefix, routingKeyLen, len(k))
	}
	for _, r := range k {
		if (r < '0' || r > '9') && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return fmt.Errorf("%sROUTING_KEY: must be letters and digits only (check for stray characters)", EnvPrefix)
		}
	}
	return nil
}

func checkURL(raw string) error {
	name := EnvPrefix + "URL"
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return fmt.Errorf("%s: must not be empty", name)
	case err != nil:
		return fmt.Errorf("%s: %q is not a URL", name, raw)
	case u.User != nil:
		return fmt.Errorf("%s: must not contain user information", name)
	case u.Host == "":
		return fmt.Errorf("%s: %q must be an absolute https URL", name, raw)
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return fmt.Errorf("%s: %q must be an https URL (http is allowed only to loopback addresses)", name, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s: %q must not have a query or fragment", name, raw)
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
