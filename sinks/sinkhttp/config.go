package sinkhttp

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// PolicyConfig is the retry policy every HTTP sink reads from its environment. Embed it in a
// sink's Config (without an env tag) to get THREATPIPE_SINK_<NAME>_ATTEMPT_TIMEOUT and
// _RETRY_BUDGET, and call Validate from Resolve.
type PolicyConfig struct {
	AttemptTimeout time.Duration `env:"ATTEMPT_TIMEOUT" envDefault:"10s" desc:"Timeout of one request to the sink's API, the answer included."`
	RetryBudget    time.Duration `env:"RETRY_BUDGET" envDefault:"30s" desc:"Longest one action may take, retries and waits (Retry-After) included."`
}

// Policy is the client policy the settings give; the other fields keep their defaults.
func (p PolicyConfig) Policy() Policy {
	return Policy{AttemptTimeout: p.AttemptTimeout, RetryBudget: p.RetryBudget}
}

// Validate checks the settings; errors name the variables under prefix
// (THREATPIPE_SINK_JIRA_, say).
func (p PolicyConfig) Validate(prefix string) error {
	var errs []error
	if p.AttemptTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%sATTEMPT_TIMEOUT: must be greater than zero", prefix))
	}
	if p.RetryBudget < p.AttemptTimeout {
		errs = append(errs, fmt.Errorf("%sRETRY_BUDGET: must be at least %sATTEMPT_TIMEOUT (%s)", prefix, prefix, p.AttemptTimeout))
	}
	return errors.Join(errs...)
}

// CheckURL checks the endpoint URL set in variable varName: absolute, https (http only to a
// loopback host: tests, simulators), without user information or a fragment. Errors name
// varName and never quote the URL, whose path or query may be the credential (a Slack
// webhook's is).
func CheckURL(varName, raw string) error {
	_, err := parseURL(varName, raw)
	return err
}

// CheckBaseURL is CheckURL for a URL the sink adds to (API paths, its own query): it must not
// have a query either.
func CheckBaseURL(varName, raw string) error {
	u, err := parseURL(varName, raw)
	if err == nil && (u.RawQuery != "" || u.ForceQuery) {
		err = fmt.Errorf("%s: must not have a query", varName)
	}
	return err
}

// CheckHeaderSecret checks a credential sent in a header (a token, an API key) set in variable
// varName: whitespace or control characters, most often a line break a secret file ended in,
// would corrupt the header. The error never quotes the value.
func CheckHeaderSecret(varName, value string) error {
	if strings.ContainsFunc(value, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%s: contains whitespace or control characters (check the file or variable for stray characters)", varName)
	}
	return nil
}

func parseURL(varName, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s: must not be empty", varName)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: is not a URL", varName)
	case u.User != nil:
		return nil, fmt.Errorf("%s: must not contain user information (credentials have variables of their own)", varName)
	case u.Scheme == "" || u.Host == "":
		return nil, fmt.Errorf("%s: must be an absolute https URL", varName)
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return nil, fmt.Errorf("%s: must be an https URL (http is allowed only to loopback hosts)", varName)
	}
	if strings.Contains(raw, "#") {
		return nil, fmt.Errorf("%s: must not have a fragment", varName)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
