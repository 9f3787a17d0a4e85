package misp

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// EnvPrefix is the prefix of the sink's variables (sinks.Register derives the same from Name).
const EnvPrefix = config.Prefix + "SINK_MISP_"

// Ranges of MISP's event settings (OpenAPI DistributionLevelId, ThreatLevelId,
// AnalysisLevelId). Distribution 4 (sharing group) needs a sharing group id this sink does not
// take, and 5 (inherit) is for attributes only, so events get 0 to 3.
const (
	maxDistribution = 3
	minThreatLevel  = 1
	maxThreatLevel  = 4
	maxAnalysis     = 2
)

// tagPrefixRE bounds TAG_PREFIX to a taxonomy namespace: it becomes the machine tags'
// namespace (threatpipe:score="92").
var tagPrefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// eventIDRE matches MISP's numeric ids (OpenAPI EventId: digits, at most 10).
var eventIDRE = regexp.MustCompile(`^[0-9]{1,10}$`)

// Config is the MISP sink's configuration, parsed by caarlos0/env with EnvPrefix.
type Config struct {
	URL         string        `env:"URL" desc:"MISP URL (https://misp.example.com, with its path prefix if it has one). Without it the sink is off."`
	Key         config.Secret `env:"KEY" desc:"MISP auth key of the user attributes are written as (sent in the Authorization header, as PyMISP does)." secret:"true"`
	KeyFromFile config.Secret `env:"KEY_FILE,file" desc:"File holding the MISP auth key (instead of THREATPIPE_SINK_MISP_KEY)." secret:"true"`
	EventID     string        `env:"EVENT_ID" desc:"Id of one existing MISP event every attribute is written to; empty: one event per playbook and UTC day, info \"threatpipe: <playbook> <YYYY-MM-DD>\", created when absent."`
	// The settings of the events the sink creates; an existing event keeps its own.
	Distribution int    `env:"DISTRIBUTION" envDefault:"0" desc:"Distribution of created events: 0 your organisation only, 1 this community, 2 connected communities, 3 all communities."`
	ThreatLevel  int    `env:"THREAT_LEVEL" envDefault:"2" desc:"Threat level of created events: 1 high, 2 medium, 3 low, 4 undefined."`
	Analysis     int    `env:"ANALYSIS" envDefault:"1" desc:"Analysis state of created events: 0 initial, 1 ongoing, 2 completed."`
	TagPrefix    string `env:"TAG_PREFIX" envDefault:"threatpipe" desc:"Namespace of the machine tags put on attributes (<prefix>:score=\"92\", <prefix>:severity=\"critical\", <prefix>:validated-by=\"criminalip\")."`
	ToIDSScore   int    `env:"TO_IDS_MIN_SCORE" envDefault:"75" desc:"Lowest score whose attribute gets to_ids (exported to IDS/blocklists); a step's to_ids param overrides it."`
	sinkhttp.PolicyConfig
}

// Resolve applies THREATPIPE_SINK_MISP_KEY_FILE and validates, naming variables. It is
// idempotent. Errors never quote the key.
func (c *Config) Resolve() error {
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", EnvPrefix, name, fmt.Sprintf(format, args...)))
	}
	if err := config.ResolveSecretFile(&c.Key, c.KeyFromFile, EnvPrefix+"KEY"); err != nil {
		errs = append(errs, err)
	} else {
		c.KeyFromFile = ""
	}
	if !c.Configured() {
		if c.Key != "" {
			add("URL", "must be set when %sKEY is", EnvPrefix)
		}
		return errors.Join(errs...)
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if err := sinkhttp.CheckBaseURL(EnvPrefix+"URL", c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.Key == "" {
		add("KEY", "must be set (or %sKEY_FILE)", EnvPrefix)
	} else if err := sinkhttp.CheckHeaderSecret(EnvPrefix+"KEY", c.Key.Reveal()); err != nil {
		errs = append(errs, err)
	}
	if c.EventID != "" && !eventIDRE.MatchString(c.EventID) {
		add("EVENT_ID", "%q is not a MISP event id (digits)", c.EventID)
	}
	if c.Distribution < 0 || c.Distribution > maxDistribution {
		add("DISTRIBUTION", "%d is not 0 to %d", c.Distribution, maxDistribution)
	}
	if c.ThreatLevel < minThreatLevel || c.ThreatLevel > maxThreatLevel {
		add("THREAT_LEVEL", "%d is not %d to %d", c.ThreatLevel, minThreatLevel, maxThreatLevel)
	}
	if c.Analysis < 0 || c.Analysis > maxAnalysis {
		add("ANALYSIS", "%d is not 0 to %d", c.Analysis, maxAnalysis)
	}
	if !tagPrefixRE.MatchString(c.TagPrefix) {
		add("TAG_PREFIX", "%q is not a taxonomy namespace (lower-case letters, digits, _ . -)", c.TagPrefix)
	}
	if c.ToIDSScore < 0 || c.ToIDSScore > 101 {
		add("TO_IDS_MIN_SCORE", "%d is not 0 to 101 (101: never)", c.ToIDSScore)
	}
	if err := c.PolicyConfig.Validate(EnvPrefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Configured reports whether a MISP URL is set.
func (c *Config) Configured() bool { return c.URL != "" }
