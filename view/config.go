package view

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

// ConfigPrefix is the prefix of the view's own variables. They live here, not in pipeline/config,
// because only the view role reads them.
const ConfigPrefix = config.Prefix + "VIEW_"

// Config is the prioritised view's configuration (threatpipe view and threatpipe top): the
// THREATPIPE_VIEW_* variables. The Kafka topics, Redis and the HTTP address come from
// pipeline/config.
type Config struct {
	GroupID       string        `env:"GROUP_ID" envDefault:"threatpipe-view" desc:"Consumer group prefix of the view: it reads the scored topic as <id>-scored and the audit topic (THREATPIPE_ACT_RESULTS_TOPIC) as <id>-results; replicas share both."`
	Retention     time.Duration `env:"RETENTION" envDefault:"168h" desc:"An indicator not seen for this long leaves the view (Redis TTL plus a sweeper). Scored events observed longer ago than this are skipped."`
	History       int           `env:"HISTORY" envDefault:"100" desc:"Score history entries and actions kept per indicator (the newest)."`
	Refresh       time.Duration `env:"REFRESH" envDefault:"5s" desc:"How often the ranked page refreshes its table (JavaScript, or a meta refresh without it)."`
	DedupEvents   int           `env:"DEDUP_EVENTS" envDefault:"1000" desc:"Event ids remembered per indicator so a redelivered scored event or audit record is not counted twice. Must exceed the redeliveries one indicator can see (bounded by THREATPIPE_PIPELINE_MAX_IN_FLIGHT)."`
	ScanLimit     int           `env:"SCAN_LIMIT" envDefault:"10000" desc:"A filtered list reads at most this many indicators from the top of the ranking (within the selected severities' score range); the page says when it stopped there."`
	SweepInterval time.Duration `env:"SWEEP_INTERVAL" envDefault:"1m" desc:"How often indicators past THREATPIPE_VIEW_RETENTION are removed from the ranking."`
	HealthMaxAge  time.Duration `env:"HEALTH_MAX_AGE" envDefault:"15s" desc:"Integration health snapshots older than this are ignored (their replica is gone). Every replica rewrites its snapshots every 5s and each is valid for 15s: a longer age keeps a dead replica on the health page for longer."`
	Workers       int           `env:"WORKERS" envDefault:"32" desc:"Messages applied to Redis concurrently, per input topic."`
	MaxInFlight   int           `env:"MAX_IN_FLIGHT" envDefault:"1024" desc:"Messages fetched but not yet committed, per input topic."`
	MaxIndicators int           `env:"MAX_INDICATORS" envDefault:"50000" desc:"Most indicators the view holds; past it the lowest-ranked (lowest score, then oldest sighting) are evicted, so a spray of distinct addresses cannot grow Redis without bound. Measured: 50,000 enriched indicators took 292 MiB of Redis (about 6 KiB each with one sighting; hot ones with full histories take more, docs/view.md, Bounds)."`
	Gated         string        `env:"GATED" envDefault:"count" desc:"What becomes of gated events (private, own and allowlisted addresses, never looked up): count (counted per minute and per gate reason, shown on the ranked page, not stored) or store (stored as score-0 indicators, under THREATPIPE_VIEW_MAX_INDICATORS)."`
}

// LoadConfig parses the THREATPIPE_VIEW_* variables of environ (os.Environ form) and validates
// them; every error names its variable.
func LoadConfig(environ []string) (*Config, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var c Config
	if err := config.Parse(&c, ConfigPrefix, vars); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Vars lists the view's variables with their defaults and descriptions, for `threatpipe config`
// and docs/configuration.md.
func Vars() []config.Var { return config.VarsOf(ConfigPrefix, reflect.TypeOf(Config{})) }

// Validate checks every value and returns all problems at once.
func (c *Config) Validate() error {
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", ConfigPrefix, name, fmt.Sprintf(format, args...)))
	}
	if g := strings.TrimSpace(c.GroupID); g == "" || strings.ContainsAny(c.GroupID, " \t\r\n") {
		add("GROUP_ID", "%q must be non-empty and without spaces", c.GroupID)
	}
	if c.Retention < time.Minute {
		add("RETENTION", "%s is less than 1m", c.Retention)
	}
	if c.History < 1 || c.History > 10000 {
		add("HISTORY", "%d is not 1-10000", c.History)
	}
	if c.Refresh < time.Second || c.Refresh > time.Hour {
		add("REFRESH", "%s is not between 1s and 1h", c.Refresh)
	}
	if c.DedupEvents < 1 || c.DedupEvents > 100000 {
		add("DEDUP_EVENTS", "%d is not 1-100000", c.DedupEvents)
	}
	if c.ScanLimit < MaxLimit || c.ScanLimit > 1000000 {
		add("SCAN_LIMIT", "%d is not %d-1000000", c.ScanLimit, MaxLimit)
	}
	if c.SweepInterval < time.Second {
		add("SWEEP_INTERVAL", "%s is less than 1s", c.SweepInterval)
	}
	if c.HealthMaxAge < time.Second {
		add("HEALTH_MAX_AGE", "%s is less than 1s", c.HealthMaxAge)
	}
	if c.Workers < 1 {
		add("WORKERS", "must be greater than zero")
	}
	if c.MaxInFlight < c.Workers {
		add("MAX_IN_FLIGHT", "%d is less than THREATPIPE_VIEW_WORKERS (%d)", c.MaxInFlight, c.Workers)
	}
	if c.MaxIndicators < 100 || c.MaxIndicators > 100000000 {
		add("MAX_INDICATORS", "%d is not 100-100000000", c.MaxIndicators)
	}
	if c.Gated != GatedCount && c.Gated != GatedStore {
		add("GATED", "%q is not one of count, store", c.Gated)
	}
	return errors.Join(errs...)
}

// StoreOptions derives the store's settings from the configuration.
func (c *Config) StoreOptions() StoreOptions {
	return StoreOptions{
		Retention: c.Retention, History: c.History, DedupEvents: c.DedupEvents,
		ScanLimit: c.ScanLimit, HealthMaxAge: c.HealthMaxAge,
		MaxIndicators: c.MaxIndicators, Gated: c.Gated,
	}
}

// TAXIIPrefix is the prefix of the TAXII server's variables.
const TAXIIPrefix = ConfigPrefix + "TAXII_"

// TAXIIConfig is the TAXII 2.1 server's configuration (view/taxii, mounted by `threatpipe view`
// under /taxii2/): the THREATPIPE_VIEW_TAXII_* variables. It is a struct of its own so that the
// server's credentials files are only read, and only validated, where the server runs.
type TAXIIConfig struct {
	Enabled    bool   `env:"ENABLED" envDefault:"false" desc:"Serve the view's indicators as a read-only TAXII 2.1 server (STIX 2.1 indicators, sightings and notes; collections all, critical, high, medium, low) under /taxii2/ on THREATPIPE_HTTP_ADDR."`
	UsersFile  string `env:"USERS_FILE" desc:"HTTP basic users of the TAXII server, one <name>:sha256:<hex sha256 of the password>[:<collection aliases>] a line (a mounted Kubernetes Secret). Read at startup."`
	TokensFile string `env:"TOKENS_FILE" desc:"Bearer tokens of the TAXII server, one <name>:<hex sha256 of the token>[:<collection aliases>] a line (a mounted Kubernetes Secret). Read at startup."`
	// AllowAnonymousLoopback is for a single host's demo or a sidecar: requests from anywhere
	// else still need credentials.
	AllowAnonymousLoopback bool `env:"ALLOW_ANONYMOUS_LOOPBACK" envDefault:"false" desc:"Let requests without credentials from loopback addresses (127.0.0.0/8, ::1) read every collection; others still get 401. Logged as a warning at startup."`
}

// LoadTAXIIConfig parses and validates the THREATPIPE_VIEW_TAXII_* variables of environ; every
// error names its variable.
func LoadTAXIIConfig(environ []string) (*TAXIIConfig, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var c TAXIIConfig
	if err := config.Parse(&c, TAXIIPrefix, vars); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// TAXIIVars lists the TAXII server's variables, for --help and docs/configuration.md.
func TAXIIVars() []config.Var { return config.VarsOf(TAXIIPrefix, reflect.TypeOf(TAXIIConfig{})) }

// Validate checks that an enabled server has a way in and that its files are readable regular
// files; their content is checked by the server as it loads them.
func (c *TAXIIConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	for _, f := range [][2]string{{"USERS_FILE", c.UsersFile}, {"TOKENS_FILE", c.TokensFile}} {
		name, path := f[0], f[1]
		if path == "" {
			continue
		}
		if fi, err := os.Stat(path); err != nil {
			errs = append(errs, fmt.Errorf("%s%s: %w", TAXIIPrefix, name, err))
		} else if !fi.Mode().IsRegular() && fi.Mode()&os.ModeSymlink == 0 {
			errs = append(errs, fmt.Errorf("%s%s: %s is not a file", TAXIIPrefix, name, path))
		}
	}
	if c.UsersFile == "" && c.TokensFile == "" && !c.AllowAnonymousLoopback {
		errs = append(errs, fmt.Errorf("%sUSERS_FILE: the TAXII server is enabled without users, tokens (%sTOKENS_FILE) or anonymous loopback access (%sALLOW_ANONYMOUS_LOOPBACK): nobody could read it",
			TAXIIPrefix, TAXIIPrefix, TAXIIPrefix))
	}
	return errors.Join(errs...)
}
