package criminalip

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/config"
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
	c, err := parseConfig(t, map[string]string{"THREATPIPE_CRIMINALIP_API_KEY": testKey, "THREATPIPE_CRIMINALIP_RATE_LIMIT": "2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey.Reveal() != testKey || c.BaseURL != DefaultBaseURL || c.MaxBodyBytes != DefaultMaxBodyBytes {
		t.Fatalf("got %+v", c)
	}
	// The embedded Policy is parsed under the same prefix.
	if c.RateLimit != 2 || c.TTLBenign != 24*time.Hour || !c.Enabled {
		t.Fatalf("policy not parsed: %+v", c.Policy)
	}
	if !c.Configured() {
		t.Fatal("not configured with a key")
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, testKey) {
		t.Fatalf("config prints the key: %s", s)
	}
}

func TestConfigKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(testKey+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig(t, map[string]string{"THREATPIPE_CRIMINALIP_API_KEY_FILE": path})
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey.Reveal() != testKey {
		t.Fatalf("key %q", c.APIKey.Reveal())
	}
	if err := c.Resolve(); err != nil {
		t.Fatalf("Resolve is not idempotent: %v", err)
	}

	_, err = parseConfig(t, map[string]string{"THREATPIPE_CRIMINALIP_API_KEY_FILE": path, "THREATPIPE_CRIMINALIP_API_KEY": "other-key"})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_CRIMINALIP_API_KEY and THREATPIPE_CRIMINALIP_API_KEY_FILE") {
		t.Fatalf("both set: %v", err)
	}
	if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "other-key") {
		t.Fatalf("error shows a key: %v", err)
	}
}

func TestConfigNoKeyIsNotConfigured(t *testing.T) {
	c, err := parseConfig(t, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Configured() {
		t.Fatal("configured without a key")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"THREATPIPE_CRIMINALIP_BASE_URL": "api.criminalip.io"}, "THREATPIPE_CRIMINALIP_BASE_URL"},
		{map[string]string{"THREATPIPE_CRIMINALIP_BASE_URL": "ftp://api.criminalip.io"}, "THREATPIPE_CRIMINALIP_BASE_URL"},
		{map[string]string{"THREATPIPE_CRIMINALIP_BASE_URL": "http://"}, "THREATPIPE_CRIMINALIP_BASE_URL"},
		{map[string]string{"THREATPIPE_CRIMINALIP_BASE_URL": "http://h/?key=1"}, "THREATPIPE_CRIMINALIP_BASE_URL"},
		{map[string]string{"THREATPIPE_CRIMINALIP_BASE_URL": "https://user:hunter2@api.criminalip.io"}, "THREATPIPE_CRIMINALIP_BASE_URL"},
		{map[string]string{"THREATPIPE_CRIMINALIP_BASE_URL": "%zz"}, "THREATPIPE_CRIMINALIP_BASE_URL"},
		{map[string]string{"THREATPIPE_CRIMINALIP_MAX_BODY_BYTES": "0"}, "THREATPIPE_CRIMINALIP_MAX_BODY_BYTES"},
		{map[string]string{"THREATPIPE_CRIMINALIP_API_KEY": "hunter2 with space"}, "THREATPIPE_CRIMINALIP_API_KEY"},
	} {
		_, err := parseConfig(t, tt.vars)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error naming %s", tt.vars, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func TestConfigSecretType(t *testing.T) {
	// The key fields are config.Secret so they print redacted everywhere.
	var c Config
	var _ config.Secret = c.APIKey
	var _ config.Secret = c.APIKeyFromFile
}

func TestRegistration(t *testing.T) {
	if Registration.Name != Name || Registration.Prefix != EnvPrefix {
		t.Fatalf("registration %q %q", Registration.Name, Registration.Prefix)
	}
	configured, err := enrich.Load([]enrich.Registration{Registration}, []string{"THREATPIPE_CRIMINALIP_API_KEY=" + testKey}, enrich.Deps{})
	if err != nil || len(configured) != 1 || configured[0].Provider.Name() != Name {
		t.Fatalf("load: %v %+v", err, configured)
	}
	none, err := enrich.Load([]enrich.Registration{Registration}, nil, enrich.Deps{})
	if err != nil || len(none) != 0 {
		t.Fatalf("without a key: %v %+v", err, none)
	}
	_, err = enrich.Load([]enrich.Registration{Registration}, []string{"THREATPIPE_CRIMINALIP_API_KEY=k", "THREATPIPE_CRIMINALIP_BASE_URL=nope"}, enrich.Deps{})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_CRIMINALIP_BASE_URL") {
		t.Fatalf("bad base URL: %v", err)
	}
	var names []string
	for _, v := range Registration.Vars() {
		names = append(names, v.Name)
	}
	for _, want := range []string{"THREATPIPE_CRIMINALIP_API_KEY", "THREATPIPE_CRIMINALIP_API_KEY_FILE", "THREATPIPE_CRIMINALIP_BASE_URL", "THREATPIPE_CRIMINALIP_MAX_BODY_BYTES"} {
		if !slices.Contains(names, want) {
			t.Errorf("Vars() lacks %s: %v", want, names)
		}
	}
}
