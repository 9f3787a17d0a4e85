package internetdb

import (
	"strings"
	"testing"

	"github.com/caarlos0/env/v10"

	"github.com/threatpipe/threatpipe/enrich"
)

func TestConfig(t *testing.T) {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: EnvPrefix, Environment: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(); err != nil || c.BaseURL != DefaultBaseURL || !c.Configured() {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	bad := Config{}
	bad.BaseURL = "ftp://internetdb.shodan.io"
	bad.MaxBodyBytes = 1
	if err := bad.Resolve(); err == nil || !strings.Contains(err.Error(), "THREATPIPE_INTERNETDB_BASE_URL") {
		t.Fatalf("bad base URL: %v", err)
	}
}

func TestRegistration(t *testing.T) {
	if Registration.Name != Name || Registration.Prefix != EnvPrefix {
		t.Fatalf("registration %q %q", Registration.Name, Registration.Prefix)
	}
	regs := []enrich.Registration{Registration}
	off, err := enrich.Load(regs, nil, enrich.Deps{})
	if err != nil || len(off) != 0 {
		t.Fatalf("on by default: %v %+v", err, off)
	}
	// A key does not switch it on: it takes none.
	off, err = enrich.Load(regs, []string{"THREATPIPE_INTERNETDB_API_KEY=whatever"}, enrich.Deps{})
	if err != nil || len(off) != 0 {
		t.Fatalf("on with a key: %v %+v", err, off)
	}
	on, err := enrich.Load(regs, []string{"THREATPIPE_INTERNETDB_ENABLED=true"}, enrich.Deps{})
	if err != nil || len(on) != 1 || on[0].Provider.Name() != Name {
		t.Fatalf("ENABLED=true: %v %+v", err, on)
	}
	if p := on[0].Policy; p.RateLimit != 1 || p.RateBurst != 5 || !p.Enabled {
		t.Fatalf("policy: %+v", p)
	}
	defaults := map[string]string{}
	for _, v := range Registration.Vars() {
		defaults[v.Name] = v.Default
	}
	if defaults["THREATPIPE_INTERNETDB_ENABLED"] != "false" || defaults["THREATPIPE_INTERNETDB_BASE_URL"] != DefaultBaseURL {
		t.Fatalf("documented defaults: %v", defaults)
	}
}
