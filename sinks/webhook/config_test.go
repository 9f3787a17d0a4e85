package webhook

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/threatpipe/threatpipe/sinks"
)

const testURL = "https://soc.example.com/hooks/threatpipe?token=" + receiverToken

func parseConfig(t *testing.T, vars map[string]string) (*Config, error) {
	t.Helper()
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: EnvPrefix, Environment: vars}); err != nil {
		t.Fatalf("parse: %v", err)
	}
	return &c, c.Resolve()
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(t, map[string]string{EnvPrefix + "URL": testURL, EnvPrefix + "SECRET": testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Configured() || c.Kind != "alert" || c.AttemptTimeout != 10*time.Second || c.RetryBudget != 30*time.Second {
		t.Fatalf("got %+v", c)
	}
	none, err := parseConfig(t, nil)
	if err != nil || none.Configured() {
		t.Fatalf("unset: configured=%v err=%v", none.Configured(), err)
	}
}

func TestConfigSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig(t, map[string]string{EnvPrefix + "URL": testURL, EnvPrefix + "SECRET_FILE": path})
	if err != nil {
		t.Fatal(err)
	}
	if c.Secret.Reveal() != testSecret {
		t.Fatalf("secret %q", c.Secret.Reveal())
	}
	if err := c.Resolve(); err != nil {
		t.Fatalf("Resolve is not idempotent: %v", err)
	}
	_, err = parseConfig(t, map[string]string{EnvPrefix + "URL": testURL, EnvPrefix + "SECRET_FILE": path, EnvPrefix + "SECRET": testSecret})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_WEBHOOK_SECRET and THREATPIPE_SINK_WEBHOOK_SECRET_FILE") {
		t.Fatalf("both set: %v", err)
	}
	assertNoSecrets(t, err)
}

func TestConfigErrors(t *testing.T) {
	ok := map[string]string{"URL": testURL, "SECRET": testSecret}
	with := func(k, v string) map[string]string {
		m := make(map[string]string)
		for a, b := range ok {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for _, tt := range []struct {
		vars map[string]string
		want string
	}{
		{with("URL", "http://soc.example.com/hooks/threatpipe?token="+receiverToken), "THREATPIPE_SINK_WEBHOOK_URL: must be an https URL"},
		{with("URL", "soc.example.com/hooks/threatpipe"), "THREATPIPE_SINK_WEBHOOK_URL: must be an absolute"},
		{with("URL", "https://u:"+receiverToken+"@soc.example.com/"), "THREATPIPE_SINK_WEBHOOK_URL: must not contain user"},
		{with("URL", "https://soc.example.com/%zz"+receiverToken), "THREATPIPE_SINK_WEBHOOK_URL: is not a URL"},
		{with("SECRET", ""), "THREATPIPE_SINK_WEBHOOK_SECRET: is required"},
		{with("SECRET", "short-"+receiverToken), "THREATPIPE_SINK_WEBHOOK_SECRET: must be at least 32"},
		{with("KIND", "ticket"), `THREATPIPE_SINK_WEBHOOK_KIND: "ticket" is not one of alert, block`},
		{with("KIND", "Block"), "THREATPIPE_SINK_WEBHOOK_KIND"},
		{with("ATTEMPT_TIMEOUT", "0s"), "THREATPIPE_SINK_WEBHOOK_ATTEMPT_TIMEOUT"},
		{with("RETRY_BUDGET", "1s"), "THREATPIPE_SINK_WEBHOOK_RETRY_BUDGET"},
	} {
		vars := make(map[string]string)
		for k, v := range tt.vars {
			vars[EnvPrefix+k] = v
		}
		_, err := parseConfig(t, vars)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want %q", tt.vars, err, tt.want)
			continue
		}
		assertNoSecrets(t, err)
	}
	for _, u := range []string{"http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/hook"} {
		if _, err := parseConfig(t, map[string]string{EnvPrefix + "URL": u, EnvPrefix + "SECRET": testSecret}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestRegistration(t *testing.T) {
	if Registration.Name != Name || Registration.Prefix != EnvPrefix {
		t.Fatalf("registration %+v", Registration)
	}
	env := []string{EnvPrefix + "URL=" + testURL, EnvPrefix + "SECRET=" + testSecret}
	got, err := sinks.Load([]sinks.Registration{Registration}, env, sinks.Deps{})
	if err != nil || got[Name] == nil || got[Name].Kind() != sinks.KindAlert {
		t.Fatalf("load: %v %v", err, got)
	}
	got, err = sinks.Load([]sinks.Registration{Registration}, append(env, EnvPrefix+"KIND=block"), sinks.Deps{})
	if err != nil || got[Name] == nil || got[Name].Kind() != sinks.KindBlock {
		t.Fatalf("load block: %v %v", err, got)
	}
	if _, ok := got[Name].(sinks.Undoer); !ok {
		t.Fatal("block webhook is not an Undoer")
	}
	got, err = sinks.Load([]sinks.Registration{Registration}, nil, sinks.Deps{})
	if err != nil || len(got) != 0 {
		t.Fatalf("unset: %v %v", err, got)
	}
	var names []string
	for _, v := range Registration.Vars() {
		names = append(names, v.Name)
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
		if strings.HasPrefix(v.Name, EnvPrefix+"SECRET") != v.Secret {
			t.Errorf("%s: secret=%v", v.Name, v.Secret)
		}
	}
	for _, want := range []string{"URL", "SECRET", "SECRET_FILE", "KIND", "ATTEMPT_TIMEOUT", "RETRY_BUDGET"} {
		if !slices.Contains(names, EnvPrefix+want) {
			t.Errorf("Vars() lacks %s%s: %v", EnvPrefix, want, names)
		}
	}
}
