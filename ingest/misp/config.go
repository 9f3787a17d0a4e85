package misp

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// Name is the source's name in THREATPIPE_INGEST_SOURCES and in the events' source ("tip:misp").
const Name = "misp"

// EnvPrefix is the prefix of the source's variables (ingest.Register derives the same).
const EnvPrefix = ingest.ConfigPrefix + "MISP_"

// maxPageSize bounds PAGE_SIZE: a MISP attribute is about 1 KiB of JSON, and an answer must fit
// the client's 1 MiB body bound with room for tags.
const maxPageSize = 500

// Config is the MISP source's configuration, parsed with EnvPrefix.
type Config struct {
	URL         string        `env:"URL" desc:"MISP URL (https://misp.example.com, with its path prefix if it has one). https, or http to loopback only."`
	Key         config.Secret `env:"KEY" desc:"MISP auth key of a user allowed to read the attributes to ingest (sent in the Authorization header)." secret:"true"`
	KeyFromFile config.Secret `env:"KEY_FILE,file" desc:"File holding the MISP auth key (instead of THREATPIPE_INGEST_MISP_KEY)." secret:"true"`
	Since       time.Duration `env:"SINCE" envDefault:"24h" desc:"How far back the first poll reaches (attributes changed since then). Once a cursor is stored it is not read again."`
	PageSize    int           `env:"PAGE_SIZE" envDefault:"100" desc:"Attributes asked for per restSearch request (limit), at most 500; a poll returns at most THREATPIPE_INGEST_PAGE_SIZE."`
	Tags        []string      `env:"TAGS" envSeparator:"," desc:"Comma list of tags: only attributes with one of them are ingested (restSearch tags). Unset: every ip-src and ip-dst attribute."`
	Settle      time.Duration `env:"SETTLE" envDefault:"10s" desc:"How long the poller stays behind the clock: MISP timestamps are whole seconds, so attributes of the current second (give or take clock skew) are left for the next poll rather than risked being skipped."`
	Timeout     time.Duration `env:"TIMEOUT" envDefault:"30s" desc:"Timeout of one restSearch request, the answer included."`
}

// Resolve applies THREATPIPE_INGEST_MISP_KEY_FILE and validates, naming variables; errors never
// quote the key. It is idempotent.
func (c *Config) Resolve() error {
	var errs []error
	if err := config.ResolveSecretFile(&c.Key, c.KeyFromFile, EnvPrefix+"KEY"); err != nil {
		errs = append(errs, err)
	} else {
		c.KeyFromFile = ""
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if c.URL == "" {
		errs = append(errs, fmt.Errorf("%sURL: is required with %s in %sSOURCES", EnvPrefix, Name, ingest.ConfigPrefix))
	} else if err := sinkhttp.CheckBaseURL(EnvPrefix+"URL", c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.Key == "" {
		errs = append(errs, fmt.Errorf("%sKEY: must be set (or %sKEY_FILE)", EnvPrefix, EnvPrefix))
	} else if err := sinkhttp.CheckHeaderSecret(EnvPrefix+"KEY", c.Key.Reveal()); err != nil {
		errs = append(errs, err)
	}
	if c.Since <= 0 {
		errs = append(errs, fmt.Errorf("%sSINCE: must be greater than zero", EnvPrefix))
	}
	if c.PageSize < 1 || c.PageSize > maxPageSize {
		errs = append(errs, fmt.Errorf("%sPAGE_SIZE: %d is not 1-%d", EnvPrefix, c.PageSize, maxPageSize))
	}
	for _, t := range c.Tags {
		if strings.TrimSpace(t) == "" {
			errs = append(errs, fmt.Errorf("%sTAGS: has an empty tag", EnvPrefix))
		}
	}
	if c.Settle < 0 {
		errs = append(errs, fmt.Errorf("%sSETTLE: must not be negative", EnvPrefix))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("%sTIMEOUT: must be greater than zero", EnvPrefix))
	}
	return errors.Join(errs...)
}
