package threatq

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caarlos0/env/v10"
)

func parseConfig(t *testing.T, vars map[string]string) (*Config, error) {
	t.Helper()
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: EnvPrefix, Environment: vars}); err != nil {
		return nil, err
	}
	return &c, c.Resolve()
}

func vars(kv ...string) map[string]string {
	m := map[string]string{EnvPrefix + "URL": "https://tq.example/", EnvPrefix + "CLIENT_ID": "id", EnvPrefix + "CLIENT_SECRET": "sec"}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "-" {
			delete(m, EnvPrefix+kv[i])
		} else {
			m[EnvPrefix+kv[i]] = kv[i+1]
		}
	}
	return m
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(t, vars())
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://tq.example" || c.Status != "Active" || c.Source != "threatpipe" || c.Grant() != GrantClientCredentials || !c.Configured() {
		t.Fatalf("%+v", c)
	}
	c, err = parseConfig(t, vars("CLIENT_SECRET", "-", "USERNAME", "a@example.com", "PASSWORD", "pw"))
	if err != nil || c.Grant() != GrantPassword {
		t.Fatalf("%v %+v", err, c)
	}
	if c, err := parseConfig(t, map[string]string{}); err != nil || c.Configured() {
		t.Fatalf("empty: %v", err)
	}
}

func TestConfigSecretFiles(t *testing.T) {
	dir := t.TempDir()
	for name, v := range map[string]string{"sec": "from-file\n", "pw": "pw-file\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := parseConfig(t, vars("CLIENT_SECRET", "-", "CLIENT_SECRET_FILE", filepath.Join(dir, "sec"),
		"USERNAME", "a@example.com", "PASSWORD_FILE", filepath.Join(dir, "pw")))
	if err != nil || c.ClientSecret.Reveal() != "from-file" || c.Password.Reveal() != "pw-file" {
		t.Fatalf("%v %+v", err, c)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"URL", "http://tq.example"}, "URL"},
		{[]string{"URL", "https://tq.example/?a=b"}, "URL"},
		{[]string{"URL", "-"}, "URL: must be set"},
		{[]string{"CLIENT_ID", "-"}, "CLIENT_ID"},
		{[]string{"CLIENT_ID", "a b"}, "CLIENT_ID"},
		{[]string{"CLIENT_SECRET", "-"}, "CLIENT_SECRET"},
		{[]string{"CLIENT_SECRET", "Xy7secret\n"}, "CLIENT_SECRET"},
		{[]string{"USERNAME", "a@example.com"}, "PASSWORD"},
		{[]string{"PASSWORD", "pw"}, "USERNAME"},
		{[]string{"CLIENT_SECRET_FILE", "/dev/null/x"}, "CLIENT_SECRET_FILE"},
		{[]string{"STATUS", " Active"}, "STATUS"},
		{[]string{"SOURCE", "a\x01b"}, "SOURCE"},
		{[]string{"ATTEMPT_TIMEOUT", "0s"}, "ATTEMPT_TIMEOUT"},
		{[]string{"RETRY_BUDGET", "1s", "ATTEMPT_TIMEOUT", "5s"}, "RETRY_BUDGET"},
	} {
		_, err := parseConfig(t, vars(tc.kv...))
		if err == nil || !strings.Contains(err.Error(), EnvPrefix+tc.want) {
			t.Errorf("%v: %v, want it to name %s%s", tc.kv, err, EnvPrefix, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "Xy7secret") {
			t.Errorf("%v: error quotes the secret: %v", tc.kv, err)
		}
	}
}
