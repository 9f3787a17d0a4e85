package slack

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

const testWebhook = "https://hooks.slack.com/services/T0TEST000/B0TEST000/s3cretT0kenXYZ"

func parseConfig(t *testing.T, vars map[string]string) (*Config, error) {
	t.Helper()
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: EnvPrefix, Environment: vars}); err != nil {
		t.Fatalf("parse: %v", err)
	}
	return &c, c.Resolve()
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(t, map[string]string{EnvPrefix + "WEBHOOK_URL": testWebhook})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Configured() || c.AttemptTimeout != 10*time.Second || c.RetryBudget != 30*time.Second {
		t.Fatalf("got %+v", c)
	}
	if p := c.policy(); p.AttemptTimeout != 10*time.Second || p.RetryBudget != 30*time.Second {
		t.Fatalf("policy %+v", p)
	}
	none, err := parseConfig(t, nil)
	if err != nil || none.Configured() {
		t.Fatalf("unset: configured=%v err=%v", none.Configured(), err)
	}
}

func TestConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(path, []byte(testWebhook+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig(t, map[string]string{EnvPrefix + "WEBHOOK_URL_FILE": path})
	if err != nil {
		t.Fatal(err)
	}
	if c.WebhookURL.Reveal() != testWebhook {
		t.Fatalf("url %q", c.WebhookURL.Reveal())
	}
	if err := c.Resolve(); err != nil {
		t.Fatalf("Resolve is not idempotent: %v", err)
	}
	_, err = parseConfig(t, map[string]string{EnvPrefix + "WEBHOOK_URL_FILE": path, EnvPrefix + "WEBHOOK_URL": testWebhook})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_SLACK_WEBHOOK_URL and THREATPIPE_SINK_SLACK_WEBHOOK_URL_FILE") {
		t.Fatalf("both set: %v", err)
	}
	assertNoSecret(t, err)
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"WEBHOOK_URL": "http://hooks.slack.com/services/T0TEST000/B0TEST000/s3cretT0kenXYZ"}, "THREATPIPE_SINK_SLACK_WEBHOOK_URL: must be an https URL"},
		{map[string]string{"WEBHOOK_URL": "hooks.slack.com/services/T0TEST000/B0TEST000/s3cretT0kenXYZ"}, "THREATPIPE_SINK_SLACK_WEBHOOK_URL: must be an absolute"},
		{map[string]string{"WEBHOOK_URL": "https://u:s3cretT0ken@hooks.slack.com/services/x"}, "THREATPIPE_SINK_SLACK_WEBHOOK_URL: must not contain user"},
		{map[string]string{"WEBHOOK_URL": "https://hooks.slack.com/services/%zzs3cretT0ken"}, "THREATPIPE_SINK_SLACK_WEBHOOK_URL: is not a URL"},
		{map[string]string{"WEBHOOK_URL": testWebhook + "#s3cretT0ken"}, "THREATPIPE_SINK_SLACK_WEBHOOK_URL: must not have a fragment"},
		{map[string]string{"WEBHOOK_URL": testWebhook, "ATTEMPT_TIMEOUT": "0s"}, "THREATPIPE_SINK_SLACK_ATTEMPT_TIMEOUT"},
		{map[string]string{"WEBHOOK_URL": testWebhook, "RETRY_BUDGET": "5s"}, "THREATPIPE_SINK_SLACK_RETRY_BUDGET"},
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
		assertNoSecret(t, err)
	}
}

func TestConfigLoopbackHTTP(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/services/x", "http://localhost/x", "http://[::1]:9/x"} {
		if _, err := parseConfig(t, map[string]string{EnvPrefix + "WEBHOOK_URL": u}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestRegistration(t *testing.T) {
	if Registration.Name != Name || Registration.Prefix != EnvPrefix || Registration.Kind != sinks.KindAlert {
		t.Fatalf("registration %+v", Registration)
	}
	got, err := sinks.Load([]sinks.Registration{Registration}, []string{EnvPrefix + "WEBHOOK_URL=" + testWebhook}, sinks.Deps{})
	if err != nil || got[Name] == nil || got[Name].Name() != Name {
		t.Fatalf("load: %v %v", err, got)
	}
	got, err = sinks.Load([]sinks.Registration{Registration}, nil, sinks.Deps{})
	if err != nil || len(got) != 0 {
		t.Fatalf("unset: %v %v", err, got)
	}
	_, err = sinks.Load([]sinks.Registration{Registration}, []string{EnvPrefix + "WEBHOOK_URL=http://example.com/s3cretT0ken"}, sinks.Deps{})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_SLACK_WEBHOOK_URL") {
		t.Fatalf("bad URL: %v", err)
	}
	assertNoSecret(t, err)
	var names []string
	for _, v := range Registration.Vars() {
		names = append(names, v.Name)
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
		if strings.HasPrefix(v.Name, EnvPrefix+"WEBHOOK_URL") && !v.Secret {
			t.Errorf("%s is not marked secret", v.Name)
		}
	}
	for _, want := range []string{"WEBHOOK_URL", "WEBHOOK_URL_FILE", "ATTEMPT_TIMEOUT", "RETRY_BUDGET"} {
		if !slices.Contains(names, EnvPrefix+want) {
			t.Errorf("Vars() lacks %s%s: %v", EnvPrefix, want, names)
		}
	}
}
