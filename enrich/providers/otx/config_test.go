package otx

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
	c, err := parseConfig(t, map[string]string{"THREATPIPE_OTX_API_KEY": testKey})
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey.Reveal() != testKey || c.BaseURL != DefaultBaseURL || !c.Configured() || !c.Enabled {
		t.Fatalf("got %+v", c)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, testKey) {
		t.Fatalf("config prints the key: %s", s)
	}
	none, err := parseConfig(t, map[string]string{})
	if err != nil || none.Configured() {
		t.Fatalf("without a key: %+v %v", none, err)
	}
}

func TestConfigKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig(t, map[string]string{"THREATPIPE_OTX_API_KEY_FILE": path})
	if err != nil || c.APIKey.Reveal() != testKey {
		t.Fatalf("key file: %v", err)
	}
	_, err = parseConfig(t, map[string]string{"THREATPIPE_OTX_BASE_URL": "otx.alienvault.com"})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_OTX_BASE_URL") {
		t.Fatalf("bad base URL: %v", err)
	}
}

func TestRegistration(t *testing.T) {
	if Registration.Name != Name || Registration.Prefix != EnvPrefix {
		t.Fatalf("registration %q %q", Registration.Name, Registration.Prefix)
	}
	regs := []enrich.Registration{Registration}
	none, err := enrich.Load(regs, nil, enrich.Deps{})
	if err != nil || len(none) != 0 {
		t.Fatalf("without a key: %v %+v", err, none)
	}
	on, err := enrich.Load(regs, []string{"THREATPIPE_OTX_API_KEY=" + testKey}, enrich.Deps{})
	if err != nil || len(on) != 1 || on[0].Provider.Name() != Name {
		t.Fatalf("with a key: %v %+v", err, on)
	}
	if p := on[0].Policy; p.RateLimit != 2 || p.RateBurst != 5 || p.Quota != 0 {
		t.Fatalf("policy defaults: %+v", p)
	}
	off, err := enrich.Load(regs, []string{"THREATPIPE_OTX_API_KEY=" + testKey, "THREATPIPE_OTX_ENABLED=false"}, enrich.Deps{})
	if err != nil || len(off) != 0 {
		t.Fatalf("disabled: %v %+v", err, off)
	}
	defaults := map[string]string{}
	for _, v := range Registration.Vars() {
		defaults[v.Name] = v.Default
	}
	if defaults["THREATPIPE_OTX_BASE_URL"] != DefaultBaseURL || defaults["THREATPIPE_OTX_RATE_LIMIT"] != "2" {
		t.Fatalf("documented defaults: %v", defaults)
	}
}
