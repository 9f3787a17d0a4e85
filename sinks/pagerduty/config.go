package pagerduty

import (
	"errors"
	"fmt"

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
	sinkhttp.PolicyConfig
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
	if err := sinkhttp.CheckBaseURL(EnvPrefix+"URL", c.URL); err != nil {
		errs = append(errs, err)
	}
	if err := c.PolicyConfig.Validate(EnvPrefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Configured reports whether an integration key is set.
func (c *Config) Configured() bool { return c.RoutingKey != "" }

func (c *Config) policy() sinkhttp.Policy {
	p := c.Policy()
	p.MaxBody = 64 << 10 // answers are a few hundred bytes of JSON
	return p
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
