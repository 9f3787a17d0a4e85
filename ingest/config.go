package ingest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

// ConfigPrefix is the prefix of the ingest role's variables; each platform's live under
// THREATPIPE_INGEST_<NAME>_.
const ConfigPrefix = config.Prefix + "INGEST_"

// Config is the ingest role's own configuration (the Kafka topics and Redis come from
// pipeline/config).
type Config struct {
	Sources   []string      `env:"SOURCES" envSeparator:"," desc:"Comma list of the threat-intel platforms to poll (taxii, misp, threatq: those compiled in); each is configured by its THREATPIPE_INGEST_<NAME>_* variables. Required."`
	Interval  time.Duration `env:"INTERVAL" envDefault:"1m" desc:"Wait between polls once a platform has no more changes (a platform with more is polled again at once)."`
	PageSize  int           `env:"PAGE_SIZE" envDefault:"500" desc:"Indicators asked for per poll; a page is published and acknowledged before its cursor is stored, so a restart repeats at most one page."`
	AuthRetry time.Duration `env:"AUTH_RETRY" envDefault:"5m" desc:"Wait before polling again a platform that refused the credentials (logged at error level each time)."`
	Republish time.Duration `env:"REPUBLISH_AFTER" envDefault:"24h" desc:"An address a platform changes again within this long after it was published is skipped (counted as recent): writing the verdict back (an intel playbook step) changes the record, which would otherwise be enriched and written back again in a loop. 0 publishes every change."`
}

// LoadConfig parses the THREATPIPE_INGEST_* variables of environ (os.Environ form) and validates
// them against the platforms compiled in (known); every error names its variable.
func LoadConfig(environ []string, known []string) (*Config, error) {
	var c Config
	if err := config.Parse(&c, ConfigPrefix, environMap(environ)); err != nil {
		return nil, err
	}
	if err := c.Validate(known); err != nil {
		return nil, err
	}
	return &c, nil
}

// Vars lists the role's variables with their defaults and descriptions.
func Vars() []config.Var { return config.VarsOf(ConfigPrefix, reflect.TypeOf(Config{})) }

// Validate checks every value (normalising the source names) and returns all problems at once.
func (c *Config) Validate(known []string) error {
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", ConfigPrefix, name, fmt.Sprintf(format, args...)))
	}
	var names []string
	for _, s := range c.Sources {
		s = strings.ToLower(strings.TrimSpace(s))
		switch {
		case s == "":
			continue
		case !slices.Contains(known, s):
			add("SOURCES", "unknown source %q (known: %s)", s, strings.Join(known, ", "))
		case slices.Contains(names, s):
			add("SOURCES", "source %q named twice", s)
		default:
			names = append(names, s)
		}
	}
	c.Sources = names
	if len(c.Sources) == 0 && len(errs) == 0 {
		add("SOURCES", "is required: a comma list of %s", strings.Join(known, ", "))
	}
	if c.Interval < time.Second || c.Interval > 24*time.Hour {
		add("INTERVAL", "%s is not between 1s and 24h", c.Interval)
	}
	if c.PageSize < 1 || c.PageSize > 10000 {
		add("PAGE_SIZE", "%d is not 1-10000", c.PageSize)
	}
	if c.Republish < 0 {
		add("REPUBLISH_AFTER", "%s is negative", c.Republish)
	}
	if c.AuthRetry < time.Second {
		add("AUTH_RETRY", "%s is less than 1s", c.AuthRetry)
	}
	return errors.Join(errs...)
}
