package edl

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/threatpipe/threatpipe/sinks"
)

const testPassword = "edl-S3cret-pa55word"

func parseConfig(t *testing.T, vars map[string]string) (*Config, error) {
	t.Helper()
	var c Config
	full := map[string]string{}
	for k, v := range vars {
		full[EnvPrefix+k] = v
	}
	if err := env.ParseWithOptions(&c, env.Options{Prefix: EnvPrefix, Environment: full}); err != nil {
		t.Fatalf("parse: %v", err)
	}
	return &c, c.Resolve()
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Path: "/edl/blocklist.txt", Format: FormatPlain, DefaultTTL: 24 * time.Hour}
	if *c != want {
		t.Fatalf("got %+v", *c)
	}
	if c.Configured() {
		t.Fatal("on without THREATPIPE_SINK_EDL_ENABLED")
	}
	c, err = parseConfig(t, map[string]string{"ENABLED": "true", "USERNAME": "paloalto", "PASSWORD": testPassword, "FORMAT": "cidr", "MAX_ENTRIES": "50000"})
	if err != nil || !c.Configured() || c.Password.Reveal() != testPassword || c.MaxEntries != 50000 {
		t.Fatalf("%v %+v", err, c)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, testPassword) {
		t.Fatalf("config prints the password: %s", s)
	}
}

func TestConfigPasswordFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(path, []byte(testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig(t, map[string]string{"USERNAME": "fortigate", "PASSWORD_FILE": path})
	if err != nil {
		t.Fatal(err)
	}
	if c.Password.Reveal() != testPassword {
		t.Fatalf("password %q", c.Password.Reveal())
	}
	if err := c.Resolve(); err != nil {
		t.Fatalf("Resolve is not idempotent: %v", err)
	}

	_, err = parseConfig(t, map[string]string{"USERNAME": "fortigate", "PASSWORD_FILE": path, "PASSWORD": "other-secret"})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_EDL_PASSWORD and THREATPIPE_SINK_EDL_PASSWORD_FILE are both set") {
		t.Fatalf("both set: %v", err)
	}
	if strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), "other-secret") {
		t.Fatalf("error shows a password: %v", err)
	}
}

func TestConfigErrorsNameVariables(t *testing.T) {
	tests := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"PATH": "edl.txt"}, `THREATPIPE_SINK_EDL_PATH: "edl.txt" must start with /`},
		{map[string]string{"PATH": "/edl/"}, `THREATPIPE_SINK_EDL_PATH: "/edl/" must name a file`},
		{map[string]string{"PATH": "/edl/../x"}, "THREATPIPE_SINK_EDL_PATH:"},
		{map[string]string{"PATH": "/edl//x"}, "THREATPIPE_SINK_EDL_PATH:"},
		{map[string]string{"PATH": "/edl/{id}"}, "THREATPIPE_SINK_EDL_PATH:"},
		{map[string]string{"PATH": "/edl list.txt"}, "THREATPIPE_SINK_EDL_PATH:"},
		{map[string]string{"FORMAT": "csv"}, `THREATPIPE_SINK_EDL_FORMAT: "csv" is not one of plain, cidr`},
		{map[string]string{"USERNAME": "fw"}, "THREATPIPE_SINK_EDL_USERNAME: and THREATPIPE_SINK_EDL_PASSWORD must be set together"},
		{map[string]string{"PASSWORD": testPassword}, "THREATPIPE_SINK_EDL_USERNAME: and THREATPIPE_SINK_EDL_PASSWORD must be set together"},
		{map[string]string{"USERNAME": "fw:1", "PASSWORD": testPassword}, "THREATPIPE_SINK_EDL_USERNAME: must not contain a colon"},
		{map[string]string{"USERNAME": "fw", "PASSWORD": testPassword + "\x00"}, "THREATPIPE_SINK_EDL_PASSWORD: contains control characters"},
		{map[string]string{"DEFAULT_TTL": "-1h"}, "THREATPIPE_SINK_EDL_DEFAULT_TTL: must be greater than zero"},
		{map[string]string{"MAX_ENTRIES": "-1"}, "THREATPIPE_SINK_EDL_MAX_ENTRIES: must not be negative"},
		{map[string]string{"ADDR": "8443"}, `THREATPIPE_SINK_EDL_ADDR: "8443" is not host:port`},
		{map[string]string{"TLS_CERT_FILE": "/tmp/c.pem"}, "THREATPIPE_SINK_EDL_TLS_CERT_FILE: and THREATPIPE_SINK_EDL_TLS_KEY_FILE must be set together"},
		{map[string]string{"TLS_CERT_FILE": "/tmp/c.pem", "TLS_KEY_FILE": "/tmp/k.pem"}, "THREATPIPE_SINK_EDL_ADDR: is required with THREATPIPE_SINK_EDL_TLS_CERT_FILE"},
		{map[string]string{"ADDR": ":8443", "TLS_CERT_FILE": "/nonexistent/c.pem", "TLS_KEY_FILE": "/nonexistent/k.pem"}, "THREATPIPE_SINK_EDL_TLS_CERT_FILE and THREATPIPE_SINK_EDL_TLS_KEY_FILE: open /nonexistent/c.pem"},
		{map[string]string{"TLS_CLIENT_CA_FILE": "/tmp/ca.pem"}, "THREATPIPE_SINK_EDL_TLS_CLIENT_CA_FILE: needs THREATPIPE_SINK_EDL_TLS_CERT_FILE"},
		{map[string]string{"TOKEN": "short"}, "THREATPIPE_SINK_EDL_TOKEN: must be at least 16 characters"},
		{map[string]string{"TOKEN": "0123456789abcdef 0123"}, "THREATPIPE_SINK_EDL_TOKEN: must be at least 16 characters, without spaces"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := parseConfig(t, tt.vars)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestRegistration(t *testing.T) {
	if Registration.Name != Name || Registration.Kind != sinks.KindBlock || Registration.Prefix != EnvPrefix {
		t.Fatalf("registration %+v", Registration)
	}
	vars := Registration.Vars()
	if len(vars) != 14 {
		t.Fatalf("%d variables", len(vars))
	}
	for _, v := range vars {
		if v.Description == "" || !strings.HasPrefix(v.Name, EnvPrefix) {
			t.Fatalf("variable %+v", v)
		}
		if (strings.Contains(v.Name, "PASSWORD") || strings.Contains(v.Name, "TOKEN")) != v.Secret {
			t.Fatalf("secret flag of %s", v.Name)
		}
	}

	mux := http.NewServeMux()
	deps := sinks.Deps{HTTPClient: http.DefaultClient, Mux: mux}
	got, err := sinks.Load([]sinks.Registration{Registration}, nil, deps)
	if err != nil || len(got) != 0 {
		t.Fatalf("built while disabled: %v %v", got, err)
	}
	environ := []string{EnvPrefix + "ENABLED=true", EnvPrefix + "PATH=/feeds/block.txt", EnvPrefix + "USERNAME=pan", EnvPrefix + "PASSWORD=" + testPassword}
	got, err = sinks.Load([]sinks.Registration{Registration}, environ, deps)
	if err != nil || got[Name] == nil {
		t.Fatalf("load: %v %v", got, err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/feeds/block.txt", nil)
	req.SetBasicAuth("pan", testPassword)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}

	// A second list on the same path is a configuration error, not a panic.
	_, err = sinks.Load([]sinks.Registration{Registration}, environ, deps)
	if err == nil || !strings.Contains(err.Error(), `THREATPIPE_SINK_EDL_PATH: cannot serve at "/feeds/block.txt"`) {
		t.Fatalf("conflict: %v", err)
	}
	_, err = sinks.Load([]sinks.Registration{Registration}, environ, sinks.Deps{})
	if err == nil || !strings.Contains(err.Error(), "no HTTP server") {
		t.Fatalf("no mux: %v", err)
	}
}
