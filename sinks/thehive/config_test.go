package thehive

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
		EnvPrefix + "BASE_URL": "https://thehive.example/thehive/",
		EnvPrefix + "API_KEY":  testKey,
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(t, validVars())
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "https://thehive.example/thehive" || c.TLP != 2 || c.PAP != 2 || c.Organisation != "" ||
		c.AttemptTimeout != 10*time.Second || c.RetryBudget != 30*time.Second || !c.Configured() {
		t.Fatalf("got %+v", c)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, testKey) {
		t.Fatalf("config prints the key: %s", s)
	}
}

func TestConfigKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := validVars()
	delete(vars, EnvPrefix+"API_KEY")
	vars[EnvPrefix+"API_KEY_FILE"] = path
	c, err := parseConfig(t, vars)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey.Reveal() != testKey {
		t.Fatalf("key %q", c.APIKey.Reveal())
	}
	if err := c.Resolve(); err != nil {
		t.Fatalf("Resolve is not idempotent: %v", err)
	}
	vars[EnvPrefix+"API_KEY"] = "hunter2-other"
	_, err = parseConfig(t, vars)
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_THEHIVE_API_KEY and THREATPIPE_SINK_THEHIVE_API_KEY_FILE") {
		t.Fatalf("both set: %v", err)
	}
	if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error shows a key: %v", err)
	}
}

func TestConfigNotConfigured(t *testing.T) {
	c, err := parseConfig(t, map[string]string{})
	if err != nil || c.Configured() {
		t.Fatalf("empty environment: configured=%v err=%v", c.Configured(), err)
	}
	_, err = parseConfig(t, map[string]string{EnvPrefix + "API_KEY": "hunter2"})
	if err == nil || !strings.Contains(err.Error(), EnvPrefix+"BASE_URL") {
		t.Fatalf("key without URL: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"BASE_URL": "http://thehive.example"}, "BASE_URL: must be an https URL"},
		{map[string]string{"BASE_URL": "thehive.example"}, "BASE_URL"},
		{map[string]string{"BASE_URL": "https://u:hunter2@thehive.example"}, "BASE_URL: must not contain user information"},
		{map[string]string{"BASE_URL": "https://thehive.example/?a=b"}, "BASE_URL"},
		{map[string]string{"API_KEY": ""}, "API_KEY: must be set"},
		{map[string]string{"API_KEY": "hunter2 key"}, "API_KEY: contains whitespace"},
		{map[string]string{"ORGANISATION": "a\nb"}, "ORGANISATION"},
		{map[string]string{"TLP": "5"}, "TLP: 5 is not 0 to 4"},
		{map[string]string{"TLP": "-1"}, "TLP"},
		{map[string]string{"PAP": "4"}, "PAP: 4 is not 0 to 3"},
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
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), testKey) {
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
	_, err = sinks.Load([]sinks.Registration{Registration}, append(environ, EnvPrefix+"TLP=x"), sinks.Deps{})
	if err == nil || !strings.Contains(err.Error(), "TLP") {
		t.Fatalf("bad TLP: %v", err)
	}
	var names []string
	for _, v := range Registration.Vars() {
		names = append(names, v.Name)
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
	}
	for _, want := range []string{"BASE_URL", "API_KEY", "API_KEY_FILE", "ORGANISATION", "TLP", "PAP", "ATTEMPT_TIMEOUT", "RETRY_BUDGET"} {
		if !slices.Contains(names, EnvPrefix+want) {
			t.Errorf("Vars() lacks %s: %v", want, names)
		}
	}
}
