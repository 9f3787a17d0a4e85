package servicenow

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
		EnvPrefix + "INSTANCE_URL": "https://instance.service-now.com/",
		EnvPrefix + "USERNAME":     testUser,
		EnvPrefix + "PASSWORD":     testPassword,
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(t, validVars())
	if err != nil {
		t.Fatal(err)
	}
	if c.InstanceURL != "https://instance.service-now.com" || c.Category != "security" || c.AssignmentGroup != "" ||
		c.AttemptTimeout != 10*time.Second || c.RetryBudget != 30*time.Second || !c.Configured() {
		t.Fatalf("got %+v", c)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, testPassword) {
		t.Fatalf("config prints the password: %s", s)
	}
}

func TestConfigSecretFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, value string }{{"PASSWORD", testPassword}, {"TOKEN", testToken}} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			if err := os.WriteFile(path, []byte(tt.value+"\r\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{EnvPrefix + "INSTANCE_URL": "https://instance.service-now.com", EnvPrefix + tt.name + "_FILE": path}
			if tt.name == "PASSWORD" {
				vars[EnvPrefix+"USERNAME"] = testUser
			}
			c, err := parseConfig(t, vars)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Password
			if tt.name == "TOKEN" {
				got = c.Token
			}
			if got.Reveal() != tt.value {
				t.Fatalf("%s %q", tt.name, got.Reveal())
			}
			if err := c.Resolve(); err != nil {
				t.Fatalf("Resolve is not idempotent: %v", err)
			}
			vars[EnvPrefix+tt.name] = "hunter2-other"
			_, err = parseConfig(t, vars)
			if err == nil || !strings.Contains(err.Error(), EnvPrefix+tt.name+" and "+EnvPrefix+tt.name+"_FILE") {
				t.Fatalf("both set: %v", err)
			}
			if strings.Contains(err.Error(), tt.value) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error shows a secret: %v", err)
			}
		})
	}
}

func TestConfigNotConfigured(t *testing.T) {
	c, err := parseConfig(t, map[string]string{})
	if err != nil || c.Configured() {
		t.Fatalf("empty environment: configured=%v err=%v", c.Configured(), err)
	}
	_, err = parseConfig(t, map[string]string{EnvPrefix + "TOKEN": "hunter2"})
	if err == nil || !strings.Contains(err.Error(), EnvPrefix+"INSTANCE_URL") {
		t.Fatalf("token without URL: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"INSTANCE_URL": "http://instance.service-now.com"}, "INSTANCE_URL: must be an https URL"},
		{map[string]string{"INSTANCE_URL": "instance.service-now.com"}, "INSTANCE_URL"},
		{map[string]string{"INSTANCE_URL": "https://admin:hunter2@instance.service-now.com"}, "INSTANCE_URL: must not contain user information"},
		{map[string]string{"INSTANCE_URL": "https://instance.service-now.com/#x"}, "INSTANCE_URL"},
		{map[string]string{"USERNAME": "", "PASSWORD": ""}, "USERNAME: set it and"},
		{map[string]string{"USERNAME": ""}, "USERNAME: must be set"},
		{map[string]string{"PASSWORD": ""}, "PASSWORD: must be set"},
		{map[string]string{"TOKEN": "hunter2-token"}, "TOKEN: and THREATPIPE_SINK_SERVICENOW_USERNAME/_PASSWORD are both set"},
		{map[string]string{"USERNAME": "", "PASSWORD": "", "TOKEN": "hunter2 token"}, "TOKEN: contains whitespace"},
		{map[string]string{"USERNAME": "a:b"}, "USERNAME"},
		{map[string]string{"PASSWORD": "hunter2\n"}, "PASSWORD: contains control characters"},
		{map[string]string{"CATEGORY": " "}, "CATEGORY"},
		{map[string]string{"ASSIGNMENT_GROUP": strings.Repeat("g", 101)}, "ASSIGNMENT_GROUP"},
		{map[string]string{"CALLER_ID": "a\tb"}, "CALLER_ID"},
		{map[string]string{"ATTEMPT_TIMEOUT": "0s"}, "ATTEMPT_TIMEOUT"},
		{map[string]string{"RETRY_BUDGET": "1s"}, "RETRY_BUDGET"},
	}
	for _, tt := range tests {
		vars := validVars()
		for k, v := range tt.set {
			if v == "" {
				delete(vars, EnvPrefix+k)
			} else {
				vars[EnvPrefix+k] = v
			}
		}
		_, err := parseConfig(t, vars)
		if err == nil || !strings.Contains(err.Error(), EnvPrefix+tt.want) {
			t.Errorf("%v: got %v, want an error naming %s", tt.set, err, EnvPrefix+tt.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows a secret: %v", err)
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
	_, err = sinks.Load([]sinks.Registration{Registration}, append(environ, EnvPrefix+"TOKEN=t"), sinks.Deps{})
	if err == nil || !strings.Contains(err.Error(), EnvPrefix+"TOKEN") {
		t.Fatalf("two ways to authenticate: %v", err)
	}
	var names []string
	for _, v := range Registration.Vars() {
		names = append(names, v.Name)
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
	}
	for _, want := range []string{"INSTANCE_URL", "USERNAME", "PASSWORD", "PASSWORD_FILE", "TOKEN", "TOKEN_FILE", "CATEGORY",
		"ASSIGNMENT_GROUP", "CALLER_ID", "ATTEMPT_TIMEOUT", "RETRY_BUDGET"} {
		if !slices.Contains(names, EnvPrefix+want) {
			t.Errorf("Vars() lacks %s: %v", want, names)
		}
	}
}
