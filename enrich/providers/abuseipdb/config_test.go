package abuseipdb

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caarlos0/env/v10"

	"github.com/threatpipe/threatpipe/enrich"
)

func parseConfig(t *testing.T, vars map[string]string) (*Config, error) {
	t.Helper()
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: EnvPrefix, Environment: vars}); err != nil {
		t.Fatalf("parse: %v", err)
	}
	return &c, c.Resolve()
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(t, map[string]string{"THREATPIPE_ABUSEIPDB_API_KEY": testKey})
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey.Reveal() != testKey || c.BaseURL != DefaultBaseURL || c.MaxAgeInDays != 90 || !c.Configured() || !c.Enabled {
		t.Fatalf("got %+v", c)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, testKey) {
		t.Fatalf("config prints the key: %s", s)
	}
	if err := c.Resolve(); err != nil {
		t.Fatalf("Resolve is not idempotent: %v", err)
	}
}

func TestConfigKeyFileAndMaxAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig(t, map[string]string{"THREATPIPE_ABUSEIPDB_API_KEY_FILE": path, "THREATPIPE_ABUSEIPDB_MAX_AGE_DAYS": "365"})
	if err != nil || c.APIKey.Reveal() != testKey || c.MaxAgeInDays != 365 {
		t.Fatalf("got %+v, %v", c, err)
	}
	c, err = parseConfig(t, map[string]string{})
	if err != nil || c.Configured() {
		t.Fatalf("no key: configured %v, %v", c.Configured(), err)
	}
}

func TestConfigErrors(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("hunter2"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"THREATPIPE_ABUSEIPDB_MAX_AGE_DAYS": "0"}, "THREATPIPE_ABUSEIPDB_MAX_AGE_DAYS"},
		{map[string]string{"THREATPIPE_ABUSEIPDB_MAX_AGE_DAYS": "366"}, "THREATPIPE_ABUSEIPDB_MAX_AGE_DAYS"},
		{map[string]string{"THREATPIPE_ABUSEIPDB_BASE_URL": "api.abuseipdb.com"}, "THREATPIPE_ABUSEIPDB_BASE_URL"},
		{map[string]string{"THREATPIPE_ABUSEIPDB_BASE_URL": "https://u:hunter2@api.abuseipdb.com"}, "THREATPIPE_ABUSEIPDB_BASE_URL"},
		{map[string]string{"THREATPIPE_ABUSEIPDB_MAX_BODY_BYTES": "0"}, "THREATPIPE_ABUSEIPDB_MAX_BODY_BYTES"},
		{map[string]string{"THREATPIPE_ABUSEIPDB_API_KEY": "hunter2 with space"}, "THREATPIPE_ABUSEIPDB_API_KEY"},
		{map[string]string{"THREATPIPE_ABUSEIPDB_API_KEY": "a", "THREATPIPE_ABUSEIPDB_API_KEY_FILE": keyFile}, "THREATPIPE_ABUSEIPDB_API_KEY_FILE"},
	} {
		_, err := parseConfig(t, tt.vars)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error naming %s", tt.vars, err, tt.want)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestRegistration(t *testing.T) {
	if Registration.Name != Name || Registration.Prefix != EnvPrefix {
		t.Fatalf("registration %q %q", Registration.Name, Registration.Prefix)
	}
	configured, err := enrich.Load([]enrich.Registration{Registration}, []string{"THREATPIPE_ABUSEIPDB_API_KEY=" + testKey}, enrich.Deps{})
	if err != nil || len(configured) != 1 || configured[0].Provider.Name() != Name {
		t.Fatalf("load: %v %+v", err, configured)
	}
	p := configured[0].Policy
	if p.Quota != 1000 || p.QuotaPeriod != enrich.PeriodDay || p.RateLimit != 1 || p.RateBurst != 5 {
		t.Fatalf("free-plan defaults not applied: %+v", p)
	}
	if none, err := enrich.Load([]enrich.Registration{Registration}, nil, enrich.Deps{}); err != nil || len(none) != 0 {
		t.Fatalf("without a key: %v %+v", err, none)
	}
	_, err = enrich.Load([]enrich.Registration{Registration}, []string{"THREATPIPE_ABUSEIPDB_API_KEY=k", "THREATPIPE_ABUSEIPDB_MAX_AGE_DAYS=400"}, enrich.Deps{})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_ABUSEIPDB_MAX_AGE_DAYS") {
		t.Fatalf("bad max age: %v", err)
	}
	vars := map[string]string{}
	for _, v := range Registration.Vars() {
		vars[v.Name] = v.Default
	}
	for name, def := range map[string]string{"THREATPIPE_ABUSEIPDB_BASE_URL": DefaultBaseURL, "THREATPIPE_ABUSEIPDB_MAX_AGE_DAYS": "90",
		"THREATPIPE_ABUSEIPDB_QUOTA": "1000", "THREATPIPE_ABUSEIPDB_RATE_LIMIT": "1", "THREATPIPE_ABUSEIPDB_API_KEY": ""} {
		if got, ok := vars[name]; !ok || got != def {
			t.Errorf("Vars(): %s default %q (listed %v), want %q", name, got, ok, def)
		}
	}
}
