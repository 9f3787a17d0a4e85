package misp

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
	return map[string]string{EnvPrefix + "URL": "https://misp.example/misp/", EnvPrefix + "KEY": testKey}
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(t, validVars())
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://misp.example/misp" || c.EventID != "" || c.Distribution != 0 || c.ThreatLevel != 2 || c.Analysis != 1 ||
		c.TagPrefix != "threatpipe" || c.ToIDSScore != 75 || !c.Configured() {
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
	delete(vars, EnvPrefix+"KEY")
	vars[EnvPrefix+"KEY_FILE"] = path
	c, err := parseConfig(t, vars)
	if err != nil || c.Key.Reveal() != testKey {
		t.Fatalf("key file: %v", err)
	}
	if err := c.Resolve(); err != nil {
		t.Fatalf("Resolve is not idempotent: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"URL": "http://misp.example"}, "URL: must be an https URL"},
		{map[string]string{"URL": "https://u:hunter2@misp.example"}, "URL: must not contain user information"},
		{map[string]string{"KEY": ""}, "KEY: must be set"},
		{map[string]string{"KEY": "hunter2 key"}, "KEY: contains whitespace"},
		{map[string]string{"EVENT_ID": "12a"}, "EVENT_ID"},
		{map[string]string{"DISTRIBUTION": "4"}, "DISTRIBUTION: 4 is not 0 to 3"},
		{map[string]string{"THREAT_LEVEL": "0"}, "THREAT_LEVEL"},
		{map[string]string{"ANALYSIS": "3"}, "ANALYSIS"},
		{map[string]string{"TAG_PREFIX": "Threat Pipe"}, "TAG_PREFIX"},
		{map[string]string{"TO_IDS_MIN_SCORE": "-1"}, "TO_IDS_MIN_SCORE"},
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
		} else if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), testKey) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
	if _, err := parseConfig(t, map[string]string{EnvPrefix + "KEY": "k"}); err == nil || !strings.Contains(err.Error(), EnvPrefix+"URL") {
		t.Fatalf("key without URL: %v", err)
	}
}

func TestRegistration(t *testing.T) {
	if Registration.Name != Name || Registration.Prefix != EnvPrefix || Registration.Kind != sinks.KindIntel {
		t.Fatalf("registration %+v", Registration)
	}
	var environ []string
	for k, v := range validVars() {
		environ = append(environ, k+"="+v)
	}
	got, err := sinks.Load([]sinks.Registration{Registration}, environ, sinks.Deps{})
	if err != nil || got[Name] == nil || got[Name].Kind() != sinks.KindIntel {
		t.Fatalf("load: %v %v", got, err)
	}
	if none, err := sinks.Load([]sinks.Registration{Registration}, nil, sinks.Deps{}); err != nil || len(none) != 0 {
		t.Fatalf("unconfigured: %v %v", none, err)
	}
	var names []string
	for _, v := range Registration.Vars() {
		names = append(names, v.Name)
	}
	for _, want := range []string{"URL", "KEY", "KEY_FILE", "EVENT_ID", "DISTRIBUTION", "THREAT_LEVEL", "ANALYSIS", "TAG_PREFIX", "TO_IDS_MIN_SCORE", "ATTEMPT_TIMEOUT", "RETRY_BUDGET"} {
		if !slices.Contains(names, EnvPrefix+want) {
			t.Errorf("Vars() lacks %s: %v", want, names)
		}
	}
}
