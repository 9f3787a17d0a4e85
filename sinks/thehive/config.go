package thehive

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// EnvPrefix is the prefix of the sink's variables (sinks.Register derives the same from Name).
const EnvPrefix = config.Prefix + "SINK_THEHIVE_"

// TLP and PAP ranges of TheHive 5: TLP 0 clear, 1 green, 2 amber, 3 amber+strict, 4 red; PAP
// 0 clear, 1 green, 2 amber, 3 red.
const (
	maxTLP = 4
	maxPAP = 3
)

// Config is the TheHive sink's configuration, parsed by caarlos0/env with EnvPrefix.
type Config struct {
	BaseURL        string        `env:"BASE_URL" desc:"TheHive 5 URL (https://thehive.example.com, with its path prefix if it has one). Without it the sink is off."`
	APIKey         config.Secret `env:"API_KEY" desc:"TheHive API key of the user alerts are created as (sent as a Bearer token)." secret:"true"`
	APIKeyFromFile config.Secret `env:"API_KEY_FILE,file" desc:"File holding the TheHive API key (instead of THREATPIPE_SINK_THEHIVE_API_KEY)." secret:"true"`
	Organisation   string        `env:"ORGANISATION" desc:"Organisation alerts are created in (X-Organisation header); empty uses the user's default organisation."`
	TLP            int           `env:"TLP" envDefault:"2" desc:"TLP of created alerts: 0 clear, 1 green, 2 amber, 3 amber+strict, 4 red; a step's tlp param overrides it."`
	PAP            int           `env:"PAP" envDefault:"2" desc:"PAP of created alerts: 0 clear, 1 green, 2 amber, 3 red; a step's pap param overrides it."`
	sinkhttp.PolicyConfig
}

// Resolve applies THREATPIPE_SINK_THEHIVE_API_KEY_FILE and validates, naming variables. It is
// idempotent. Errors never quote the key.
func (c *Config) Resolve() error {
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", EnvPrefix, name, fmt.Sprintf(format, args...)))
	}
	if err := config.ResolveSecretFile(&c.APIKey, c.APIKeyFromFile, EnvPrefix+"API_KEY"); err != nil {
		errs = append(errs, err)
	} else {
		c.APIKeyFromFile = ""
	}
	if !c.Configured() {
		if c.APIKey != "" {
			add("BASE_URL", "must be set when THREATPIPE_SINK_THEHIVE_API_KEY is")
		}
		return errors.Join(errs...)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if err := sinkhttp.CheckBaseURL(EnvPrefix+"BASE_URL", c.BaseURL); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.APIKey == "":
		add("API_KEY", "must be set (or THREATPIPE_SINK_THEHIVE_API_KEY_FILE)")
	default:
		if err := sinkhttp.CheckHeaderSecret(EnvPrefix+"API_KEY", c.APIKey.Reveal()); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Organisation != "" && (len(c.Organisation) > 128 || strings.ContainsFunc(c.Organisation, unicode.IsControl)) {
		add("ORGANISATION", "%q is not an organisation name", c.Organisation)
	}
	if c.TLP < 0 || c.TLP > maxTLP {
		add("TLP", "%d is not 0 to %d", c.TLP, maxTLP)
	}
	if c.PAP < 0 || c.PAP > maxPAP {
		add("PAP", "%d is not 0 to %d", c.PAP, maxPAP)
	}
	if err := c.PolicyConfig.Validate(EnvPrefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Configured reports whether a TheHive URL is set.
func (c *Config) Configured() bool { return c.BaseURL != "" }
