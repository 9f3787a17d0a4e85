package jira

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/threatpipe/threatpipe/sinks"
)

func parseConfig(t *testing.T, vars map[string]string) (*Config, error) {
	t.Helper()
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: EnvPrefix, Environment: vars}); err != nil {
		t.Fatalf("parse: %v", err)
	}
	return &c, c.Resolve()
}

func validVars() map[string]string {
	return map[string]string{
		EnvPrefix + "BASE_URL":    "https://example.atlassian.net/",
		EnvPrefix + "EMAIL":       testEmail,
		EnvPrefix + "API_TOKEN":   testToken,
		EnvPrefix + "PROJECT_KEY": "SOC",
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(t, validVars())
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "https://example.atlassian.net" || c.IssueType != "Task" || c.Priority != "" ||
		c.AttemptTimeout != 10*time.Second || c.RetryBudget != 30*time.Second || !c.Configured() {
		t.Fatalf("got %+v", c)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, testToken) {
		t.Fatalf("config prints the token: %s", s)
	}
}

func TestConfigTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := validVars()
	delete(vars, EnvPrefix+"API_TOKEN")
	vars[EnvPrefix+"API_TOKEN_FILE"] = path
	c, err := parseConfig(t, vars)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIToken.Reveal() != testToken {
		t.Fatalf("token %q", c.APIToken.Reveal())
	}
	if err := c.Resolve(); err != nil {
		t.Fatalf("Resolve is not idempotent: %v", err)
	}

	vars[EnvPrefix+"API_TOKEN"] = "hunter2-other"
	_, err = parseConfig(t, vars)
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_JIRA_API_TOKEN and THREATPIPE_SINK_JIRA_API_TOKEN_FILE") {
		t.Fatalf("both set: %v", err)
	}
	if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error shows a token: %v", err)
	}
}

func TestConfigNotConfigured(t *testing.T) {
	c, err := parseConfig(t, map[string]string{})
	if err != nil || c.Configured() {
		t.Fatalf("empty environment: configured=%v err=%v", c.Configured(), err)
	}
	_, err = parseConfig(t, map[string]string{EnvPrefix + "API_TOKEN": "hunter2"})
	if err == nil || !strings.Contains(err.Error(), EnvPrefix+"BASE_URL") {
		t.Fatalf("token without URL: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"BASE_URL": "http://example.atlassian.net"}, "BASE_URL: must be an https URL"},
		{map[string]string{"BASE_URL": "example.atlassian.net"}, "BASE_URL"},
		{map[string]string{"BASE_URL": "https://bob:hunter2@example.atlassian.net"}, "BASE_URL: must not contain user information"},
		{map[string]string{"BASE_URL": "https://example.atlassian.net/?x=1"}, "BASE_URL"},
		{map[string]string{"BASE_URL": "%zz"}, "BASE_URL"},
		{map[string]string{"EMAIL": ""}, "EMAIL: must be set"},
		{map[string]string{"EMAIL": "bob:x@example.com"}, "EMAIL"},
		{map[string]string{"API_TOKEN": ""}, "API_TOKEN: must be set"},
		{map[string]string{"API_TOKEN": "hunter2 with space"}, "API_TOKEN: contains whitespace"},
		{map[string]string{"PROJECT_KEY": ""}, "PROJECT_KEY: must be set"},
		{map[string]string{"PROJECT_KEY": "soc"}, "PROJECT_KEY"},
		{map[string]string{"ISSUE_TYPE": " "}, "ISSUE_TYPE"},
		{map[string]string{"PRIORITY": "High\tx"}, "PRIORITY"},
		{map[string]string{"ATTEMPT_TIMEOUT": "0s"}, "ATTEMPT_TIMEOUT"},
		{map[string]string{"RETRY_BUDGET": "1s"}, "RETRY_BUDGET"},
	}
	for _, tt := range tests {
		vars := validVars()
		for k, v := range tt.set {
			vars[EnvPrefix+k] = v
		}
		_, err := parseConfig(t, vars)
		if err == nil || !strings.Contains(err.Error(), EnvPrefix+tt.want) {
			t.Errorf("%v: got %v, want an error naming %s", tt.set, err, EnvPrefix+tt.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), testToken) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestConfigLoopbackHTTP(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:80"} {
		vars := validVars()
		vars[EnvPrefix+"BASE_URL"] = u
		if _, err := parseConfig(t, vars); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestRegistration(t *testing.T) {
	if Registration.Name != Name || Registration.Prefix != EnvPrefix || Registration.Kind != sinks.KindTicket {
		t.Fatalf("registration %+v", Registration)
	}
	var environ []string
	for k, v := range validVars() {
		environ = append(environ, k+"="+v)
	}
	got, err := sinks.Load([]sinks.Registration{Registration}, environ, sinks.Deps{})
	if err != nil || got[Name] == nil || got[Name].Name() != Name {
		t.Fatalf("load: %v %v", got, err)
	}
	none, err := sinks.Load([]sinks.Registration{Registration}, nil, sinks.Deps{})
	if err != nil || len(none) != 0 {
		t.Fatalf("unconfigured: %v %v", none, err)
	}
	_, err = sinks.Load([]sinks.Registration{Registration}, append(environ, EnvPrefix+"PROJECT_KEY=bad key"), sinks.Deps{})
	if err == nil || !strings.Contains(err.Error(), EnvPrefix+"PROJECT_KEY") {
		t.Fatalf("bad project key: %v", err)
	}
	var names []string
	for _, v := range Registration.Vars() {
		names = append(names, v.Name)
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
	}
	for _, want := range []string{"BASE_URL", "EMAIL", "API_TOKEN", "API_TOKEN_FILE", "PROJECT_KEY", "ISSUE_TYPE", "PRIORITY", "ATTEMPT_TIMEOUT", "RETRY_BUDGET"} {
		if !slices.Contains(names, EnvPrefix+want) {
			t.Errorf("Vars() lacks %s: %v", want, names)
		}
	}
}
