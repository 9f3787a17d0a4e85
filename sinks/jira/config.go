package jira

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// EnvPrefix is the prefix of the sink's variables (sinks.Register derives the same from Name).
const EnvPrefix = config.Prefix + "SINK_JIRA_"

// Config is the Jira sink's configuration, parsed by caarlos0/env with EnvPrefix.
type Config struct {
	BaseURL          string        `env:"BASE_URL" desc:"Jira Cloud site URL (https://your-domain.atlassian.net). Without it the sink is off."`
	Email            string        `env:"EMAIL" desc:"Atlassian account email the API token belongs to (Basic auth user)."`
	APIToken         config.Secret `env:"API_TOKEN" desc:"Atlassian API token of THREATPIPE_SINK_JIRA_EMAIL." secret:"true"`
	APITokenFromFile config.Secret `env:"API_TOKEN_FILE,file" desc:"File holding the Atlassian API token (instead of THREATPIPE_SINK_JIRA_API_TOKEN)." secret:"true"`
	ProjectKey       string        `env:"PROJECT_KEY" desc:"Key of the project issues are created in (SOC); a playbook step's project param overrides it."`
	IssueType        string        `env:"ISSUE_TYPE" envDefault:"Task" desc:"Issue type name of created issues; a playbook step's issue_type param overrides it."`
	Priority         string        `env:"PRIORITY" desc:"Priority name of created issues (High); empty leaves the project's default. A step's priority param overrides it."`
	sinkhttp.PolicyConfig
}

// Resolve applies THREATPIPE_SINK_JIRA_API_TOKEN_FILE and validates, naming variables. It is
// idempotent. Errors never quote the token.
func (c *Config) Resolve() error {
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", EnvPrefix, name, fmt.Sprintf(format, args...)))
	}
	if err := config.ResolveSecretFile(&c.APIToken, c.APITokenFromFile, EnvPrefix+"API_TOKEN"); err != nil {
		errs = append(errs, err)
	} else {
		c.APITokenFromFile = ""
	}
	if !c.Configured() {
		if c.Email != "" || c.APIToken != "" || c.ProjectKey != "" {
			add("BASE_URL", "must be set when THREATPIPE_SINK_JIRA_EMAIL, _API_TOKEN or _PROJECT_KEY are")
		}
		return errors.Join(errs...)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if err := sinkhttp.CheckBaseURL(EnvPrefix+"BASE_URL", c.BaseURL); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.Email == "":
		add("EMAIL", "must be set")
	case strings.ContainsAny(c.Email, ":\r\n") || !strings.Contains(c.Email, "@"):
		add("EMAIL", "%q is not an account email", c.Email)
	}
	switch {
	case c.APIToken == "":
		add("API_TOKEN", "must be set (or THREATPIPE_SINK_JIRA_API_TOKEN_FILE)")
	default:
		if err := sinkhttp.CheckHeaderSecret(EnvPrefix+"API_TOKEN", c.APIToken.Reveal()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkProjectKey(c.ProjectKey); err != nil {
		add("PROJECT_KEY", "%v", err)
	}
	if err := checkName(c.IssueType); err != nil {
		add("ISSUE_TYPE", "%v", err)
	}
	if c.Priority != "" {
		if err := checkName(c.Priority); err != nil {
			add("PRIORITY", "%v", err)
		}
	}
	if err := c.PolicyConfig.Validate(EnvPrefix); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Configured reports whether a site URL is set.
func (c *Config) Configured() bool { return c.BaseURL != "" }

// Jira Cloud project keys: an upper-case letter, then upper-case letters, digits or
// underscores, ten characters at most.
var projectKeyRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,9}$`)

func checkProjectKey(k string) error {
	if k == "" {
		return errors.New("must be set")
	}
	if !projectKeyRE.MatchString(k) {
		return fmt.Errorf("%q is not a project key (an upper-case letter, then 1-9 of A-Z 0-9 _)", k)
	}
	return nil
}

// checkName accepts issue type and priority names: non-empty, one line, bounded.
func checkName(s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return errors.New("must not be empty")
	case len(s) > 255:
		return errors.New("is longer than 255 bytes")
	case strings.ContainsFunc(s, isControl):
		return fmt.Errorf("%q contains control characters", s)
	}
	return nil
}

// isControl reports control characters and invalid UTF-8, which a name must not hold.
func isControl(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }
