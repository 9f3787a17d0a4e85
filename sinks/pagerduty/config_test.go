package pagerduty

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

func parseConfig(t *testing.T, vars map[string]string) (*Config, error) {
	t.Helper()
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: EnvPrefix, Environment: vars}); err != nil {
		t.Fatalf("parse: %v", err)
	}
	return &c, c.Resolve()
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(t, map[string]string{EnvPrefix + "ROUTING_KEY": testKey})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Configured() || c.URL != DefaultURL || c.AttemptTimeout != 10*time.Second || c.RetryBudget != 30*time.Second {
		t.Fatalf("got %+v", c)
	}
	none, err := parseConfig(t, nil)
	if err != nil || none.Configured() {
		t.Fatalf("unset: configured=%v err=%v", none.Configured(), err)
	}
}

func TestConfigKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(testKey+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig(t, map[string]string{EnvPrefix + "ROUTING_KEY_FILE": path})
	if err != nil {
		t.Fatal(err)
	}
	if c.RoutingKey.Reveal() != testKey {
		t.Fatalf("key %q", c.RoutingKey.Reveal())
	}
	if err := c.Resolve(); err != nil {
		t.Fatalf("Resolve is not idempotent: %v", err)
	}
	_, err = parseConfig(t, map[string]string{EnvPrefix + "ROUTING_KEY_FILE": path, EnvPrefix + "ROUTING_KEY": testKey})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY and THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY_FILE") {
		t.Fatalf("both set: %v", err)
	}
	assertNoKey(t, err)
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"ROUTING_KEY": testKey[:31]}, "THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY: must be 32 characters, is 31"},
		{map[string]string{"ROUTING_KEY": testKey[:31] + " "}, "THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY: must be letters and digits"},
		{map[string]string{"ROUTING_KEY": testKey, "URL": "http://events.pagerduty.com/v2/enqueue"}, "THREATPIPE_SINK_PAGERDUTY_URL"},
		{map[string]string{"ROUTING_KEY": testKey, "URL": "events.pagerduty.com/v2/enqueue"}, "THREATPIPE_SINK_PAGERDUTY_URL"},
		{map[string]string{"ROUTING_KEY": testKey, "URL": "https://events.pagerduty.com/v2/enqueue?x=1"}, "THREATPIPE_SINK_PAGERDUTY_URL"},
		{map[string]string{"ROUTING_KEY": testKey, "URL": "https://u:p@events.pagerduty.com/v2/enqueue"}, "THREATPIPE_SINK_PAGERDUTY_URL"},
		{map[string]string{"ROUTING_KEY": testKey, "URL": "%zz"}, "THREATPIPE_SINK_PAGERDUTY_URL"},
		{map[string]string{"ROUTING_KEY": testKey, "ATTEMPT_TIMEOUT": "-1s"}, "THREATPIPE_SINK_PAGERDUTY_ATTEMPT_TIMEOUT"},
		{map[string]string{"ROUTING_KEY": testKey, "RETRY_BUDGET": "1s"}, "THREATPIPE_SINK_PAGERDUTY_RETRY_BUDGET"},
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
		assertNoKey(t, err)
	}
	for _, u := range []string{"https://events.eu.pagerduty.com/v2/enqueue", "http://127.0.0.1:9999/v2/enqueue", "http://localhost/v2/enqueue"} {
		if _, err := parseConfig(t, map[string]string{EnvPrefix + "ROUTING_KEY": testKey, EnvPrefix + "URL": u}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	// Event orchestration routing keys are letters and digits, not hex.
	if _, err := parseConfig(t, map[string]string{EnvPrefix + "ROUTING_KEY": "R02ABCDEFGHIJKLMNOPQRSTUVWXYZ012"}); err != nil {
		t.Errorf("orchestration key: %v", err)
	}
}

func TestRegistration(t *testing.T) {
	if Registration.Name != Name || Registration.Prefix != EnvPrefix || Registration.Kind != sinks.KindAlert {
		t.Fatalf("registration %+v", Registration)
	}
	got, err := sinks.Load([]sinks.Registration{Registration}, []string{EnvPrefix + "ROUTING_KEY=" + testKey}, sinks.Deps{})
	if err != nil || got[Name] == nil {
		t.Fatalf("load: %v %v", err, got)
	}
	if _, ok := got[Name].(sinks.Undoer); !ok {
		t.Fatal("the built sink is not an Undoer")
	}
	got, err = sinks.Load([]sinks.Registration{Registration}, nil, sinks.Deps{})
	if err != nil || len(got) != 0 {
		t.Fatalf("unset: %v %v", err, got)
	}
	_, err = sinks.Load([]sinks.Registration{Registration}, []string{EnvPrefix + "ROUTING_KEY=short"}, sinks.Deps{})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY") || strings.Contains(err.Error(), "short") {
		t.Fatalf("bad key: %v", err)
	}
	var names []string
	for _, v := range Registration.Vars() {
		names = append(names, v.Name)
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
		if strings.HasPrefix(v.Name, EnvPrefix+"ROUTING_KEY") != v.Secret {
			t.Errorf("%s: secret=%v", v.Name, v.Secret)
		}
	}
	for _, want := range []string{"ROUTING_KEY", "ROUTING_KEY_FILE", "URL", "ATTEMPT_TIMEOUT", "RETRY_BUDGET"} {
		if !slices.Contains(names, EnvPrefix+want) {
			t.Errorf("Vars() lacks %s%s: %v", EnvPrefix, want, names)
		}
	}
}
