package servicenow

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// EnvPrefix is the prefix of the sink's variables (sinks.Register derives the same from Name).
const EnvPrefix = config.Prefix + "SINK_SERVICENOW_"

// Config is the ServiceNow sink's configuration, parsed by caarlos0/env with EnvPrefix.
type Config struct {
	InstanceURL      string        `env:"INSTANCE_URL" desc:"ServiceNow instance URL (https://your-instance.service-now.com). Without it the sink is off."`
	Username         string        `env:"USERNAME" desc:"Integration user for Basic auth (with THREATPIPE_SINK_SERVICENOW_PASSWORD); leave empty to use THREATPIPE_SINK_SERVICENOW_TOKEN."`
	Password         config.Secret `env:"PASSWORD" desc:"Password of THREATPIPE_SINK_SERVICENOW_USERNAME." secret:"true"`
	PasswordFromFile config.Secret `env:"PASSWORD_FILE,file" desc:"File holding the password (instead of THREATPIPE_SINK_SERVICENOW_PASSWORD)." secret:"true"`
	Token            config.Secret `env:"TOKEN" desc:"OAuth access token sent as a Bearer token, instead of a username and password." secret:"true"`
	TokenFromFile    config.Secret `env:"TOKEN_FILE,file" desc:"File holding the OAuth access token (instead of THREATPIPE_SINK_SERVICENOW_TOKEN)." secret:"true"`
	Category         string        `env:"CATEGORY" envDefault:"security" desc:"Incident category (a choice value of incident.category); a step's category param overrides it."`
	AssignmentGroup  string        `env:"ASSIGNMENT_GROUP" desc:"Default assignment group (sys_user_group sys_id) of created incidents; a step's assignment_group param overrides it."`
	CallerID         string        `env:"CALLER_ID" desc:"Caller (sys_user sys_id) of created incidents; empty leaves it unset."`
	sinkhttp.PolicyConfig
}

// Resolve applies the _FILE secrets and validates, naming variables. It is idempotent. Errors
// never quote a password or token.
func (c *Config) Resolve() error {
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", EnvPrefix, name, fmt.Sprintf(format, args...)))
	}
	if err := config.ResolveSecretFile(&c.Password, c.PasswordFromFile, EnvPrefix+"PASSWORD"); err != nil {
		errs = append(errs, err)
	} else {
		c.PasswordFromFile = ""
	}
	if err := config.ResolveSecretFile(&c.Token, c.TokenFromFile, EnvPrefix+"TOKEN"); err != nil {
		errs = append(errs, err)
	} else {
		c.TokenFromFile = ""
	}
	if !c.Configured() {
		if c.Username != "" || c.Password != "" || c.Token != "" {
			add("INSTANCE_URL", "must be set when credentials are")
		}
		return errors.Join(errs...)
	}
	c.InstanceURL = strings.TrimRight(c.InstanceURL, "/")
	if err := sinkhttp.CheckBaseURL(EnvPrefix+"INSTANCE_URL", c.InstanceURL); err != nil {
		errs = append(errs, err)
	}
	basic := c.Username != "" || c.Password != ""
	switch {
	case basic && c.Token != "":
		add("TOKEN", "and THREATPIPE_SINK_SERVICENOW_USERNAME/_PASSWORD are both set: set one way to authenticate")
	case c.Token != "":
		if err := sinkhttp.CheckHeaderSecret(EnvPrefix+"TOKEN", c.Token.Reveal()); err != nil {
			errs = append(errs, err)
		}
	case !basic:
		add("USERNAME", "set it and THREATPIPE_SINK_SERVICENOW_PASSWORD, or THREATPIPE_SINK_SERVICENOW_TOKEN")
	case c.Username == "":
		add("USERNAME", "must be set with THREATPIPE_SINK_SERVICENOW_PASSWORD")
	case c.Password == "":
		add("PASSWORD", "must be set with THREATPIPE_SINK_SERVICENOW_USERNAME (or THREATPIPE_SINK_SERVICENOW_PASSWORD_FILE)")
	}
	if basic && c.Username != "" && (strings.Contains(c.Username, ":") || strings.ContainsFunc(c.Username, unicode.IsControl)) {
		add("USERNAME", "%q cannot contain ':' or control characters", c.Username)
	}
	if basic && strings.ContainsFunc(c.Password.Reveal(), unicode.IsControl) {
		add("PASSWORD", "contains control characters (check the file or variable for a stray line break)")
	}
	if err := checkValue(c.Category, maxChoice); err != nil {
		add("CATEGORY", "%v", err)
	}
	if c.AssignmentGroup != "" {
		if err := checkValue(c.AssignmentGroup, maxReference); err != nil {
			add("ASSIGNMENT_GROUP", "%v", err)
		}
	}
	if c.CallerID != "" {
		if err := checkValue(c.CallerID, maxReference); err != nil {
			add("CALLER_ID", "%v", err)
		}
	}
	if err := c.PolicyConfig.Validate(EnvPrefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Configured reports whether an instance URL is set.
func (c *Config) Configured() bool { return c.InstanceURL != "" }

// Bounds of the values set through configuration or params: a choice value, and a reference
// (a sys_id, or a display value the instance looks up).
const (
	maxChoice    = 40
	maxReference = 100
)

func checkValue(s string, max int) error {
	switch {
	case strings.TrimSpace(s) == "":
		return errors.New("must not be empty")
	case len(s) > max:
		return fmt.Errorf("is longer than %d bytes", max)
	case strings.ContainsFunc(s, unicode.IsControl):
		return fmt.Errorf("%q contains control characters", s)
	}
	return nil
}
