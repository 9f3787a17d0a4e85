package virustotal

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
	c, err := parseConfig(t, map[string]string{"THREATPIPE_VIRUSTOTAL_API_KEY": testKey})
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey.Reveal() != testKey || c.BaseURL != DefaultBaseURL || !c.Configured() || !c.Enabled {
		t.Fatalf("got %+v", c)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, testKey) {
		t.Fatalf("config prints the key: %s", s)
	}
	if err := c.Resolve(); err != nil {
		t.Fatalf("Resolve is not idempotent: %v", err)
	}
}

func TestConfigKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(testKey+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig(t, map[string]string{"THREATPIPE_VIRUSTOTAL_API_KEY_FILE": path})
	if err != nil || c.APIKey.Reveal() != testKey {
		t.Fatalf("got %+v, %v", c, err)
	}
	_, err = parseConfig(t, map[string]string{"THREATPIPE_VIRUSTOTAL_API_KEY_FILE": path, "THREATPIPE_VIRUSTOTAL_API_KEY": "other"})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_VIRUSTOTAL_API_KEY_FILE") || strings.Contains(err.Error(), testKey) {
		t.Fatalf("both set: %v", err)
	}
	c, err = parseConfig(t, map[string]string{})
	if err != nil || c.Configured() {
		t.Fatalf("no key: configured %v, %v", c.Configured(), err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"THREATPIPE_VIRUSTOTAL_BASE_URL": "www.virustotal.com"}, "THREATPIPE_VIRUSTOTAL_BASE_URL"},
		{map[string]string{"THREATPIPE_VIRUSTOTAL_BASE_URL": "https://u:hunter2@www.virustotal.com"}, "THREATPIPE_VIRUSTOTAL_BASE_URL"},
		{map[string]string{"THREATPIPE_VIRUSTOTAL_BASE_URL": "https://www.virustotal.com/?x=1"}, "THREATPIPE_VIRUSTOTAL_BASE_URL"},
		{map[string]string{"THREATPIPE_VIRUSTOTAL_MAX_BODY_BYTES": "-1"}, "THREATPIPE_VIRUSTOTAL_MAX_BODY_BYTES"},
		{map[string]string{"THREATPIPE_VIRUSTOTAL_API_KEY": "hunter2 with space"}, "THREATPIPE_VIRUSTOTAL_API_KEY"},
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
	configured, err := enrich.Load([]enrich.Registration{Registration}, []string{"THREATPIPE_VIRUSTOTAL_API_KEY=" + testKey}, enrich.Deps{})
	if err != nil || len(configured) != 1 || configured[0].Provider.Name() != Name {
		t.Fatalf("load: %v %+v", err, configured)
	}
	p := configured[0].Policy
	if p.Quota != 500 || p.QuotaPeriod != enrich.PeriodDay || p.RateLimit != 0.066 || p.RateBurst != 4 {
		t.Fatalf("public-API defaults not applied: %+v", p)
	}
	if none, err := enrich.Load([]enrich.Registration{Registration}, nil, enrich.Deps{}); err != nil || len(none) != 0 {
		t.Fatalf("without a key: %v %+v", err, none)
	}
	vars := map[string]string{}
	for _, v := range Registration.Vars() {
		vars[v.Name] = v.Default
	}
	for name, def := range map[string]string{"THREATPIPE_VIRUSTOTAL_BASE_URL": DefaultBaseURL, "THREATPIPE_VIRUSTOTAL_QUOTA": "500",
		"THREATPIPE_VIRUSTOTAL_RATE_LIMIT": "0.066", "THREATPIPE_VIRUSTOTAL_RATE_BURST": "4", "THREATPIPE_VIRUSTOTAL_API_KEY_FILE": ""} {
		if got, ok := vars[name]; !ok || got != def {
			t.Errorf("Vars(): %s default %q (listed %v), want %q", name, got, ok, def)
		}
	}
}
