package nftables

import (
	"net/http"
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
	c, err := parseConfig(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{NFTPath: "nft", Family: "inet", Table: "threatpipe", SetV4: "blocklist_v4", SetV6: "blocklist_v6",
		Create: true, DefaultTTL: 24 * time.Hour, CommandTimeout: 10 * time.Second}
	if *c != want {
		t.Fatalf("got %+v\nwant %+v", *c, want)
	}
	if c.Configured() {
		t.Fatal("on without THREATPIPE_SINK_NFTABLES_ENABLED")
	}
	c, err = parseConfig(t, map[string]string{EnvPrefix + "ENABLED": "true", EnvPrefix + "NETNS": "tp-test.1"})
	if err != nil || !c.Configured() || c.NetNS != "tp-test.1" {
		t.Fatalf("enabled: %v %+v", err, c)
	}
}

func TestConfigErrorsNameVariables(t *testing.T) {
	tests := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"FAMILY": "bridge"}, "THREATPIPE_SINK_NFTABLES_FAMILY: \"bridge\" is not one of inet, ip, ip6"},
		{map[string]string{"TABLE": "my table"}, "THREATPIPE_SINK_NFTABLES_TABLE:"},
		{map[string]string{"TABLE": "1abc"}, "THREATPIPE_SINK_NFTABLES_TABLE:"},
		{map[string]string{"SET_V4": "a;flush ruleset"}, "THREATPIPE_SINK_NFTABLES_SET_V4:"},
		{map[string]string{"SET_V6": strings.Repeat("s", 65)}, "THREATPIPE_SINK_NFTABLES_SET_V6:"},
		{map[string]string{"SET_V6": "blocklist_v4"}, "THREATPIPE_SINK_NFTABLES_SET_V6: must differ"},
		{map[string]string{"NETNS": "../etc"}, "THREATPIPE_SINK_NFTABLES_NETNS:"},
		{map[string]string{"NETNS": "-n"}, "THREATPIPE_SINK_NFTABLES_NETNS:"},
		{map[string]string{"DEFAULT_TTL": "0s"}, "THREATPIPE_SINK_NFTABLES_DEFAULT_TTL: must be greater than zero"},
		{map[string]string{"DEFAULT_TTL": "9000h"}, "THREATPIPE_SINK_NFTABLES_DEFAULT_TTL:"},
		{map[string]string{"COMMAND_TIMEOUT": "-1s"}, "THREATPIPE_SINK_NFTABLES_COMMAND_TIMEOUT: must be greater than zero"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range tt.vars {
				vars[EnvPrefix+k] = v
			}
			_, err := parseConfig(t, vars)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	// An empty value takes the default, so only a Config built in code can have no nft path.
	c := testConfig("inet")
	c.NFTPath = ""
	if err := c.Resolve(); err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_NFTABLES_NFT_PATH: must not be empty") {
		t.Fatalf("empty NFT_PATH: %v", err)
	}
	// One set per family is enough when the table holds only one.
	if _, err := parseConfig(t, map[string]string{EnvPrefix + "FAMILY": "ip", EnvPrefix + "SET_V6": "blocklist_v4"}); err != nil {
		t.Fatal(err)
	}
}

func TestRegistration(t *testing.T) {
	if Registration.Name != Name || Registration.Kind != sinks.KindBlock || Registration.Prefix != EnvPrefix {
		t.Fatalf("registration %+v", Registration)
	}
	vars := Registration.Vars()
	if len(vars) != 10 {
		t.Fatalf("%d variables", len(vars))
	}
	for _, v := range vars {
		if v.Description == "" || !strings.HasPrefix(v.Name, EnvPrefix) {
			t.Fatalf("variable %+v", v)
		}
	}
	deps := sinks.Deps{HTTPClient: http.DefaultClient, Mux: http.NewServeMux()}
	got, err := sinks.Load([]sinks.Registration{Registration}, nil, deps)
	if err != nil || len(got) != 0 {
		t.Fatalf("built while disabled: %v %v", got, err)
	}
	_, err = sinks.Load([]sinks.Registration{Registration}, []string{
		EnvPrefix + "ENABLED=true", EnvPrefix + "NFT_PATH=/nonexistent/nft",
	}, deps)
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_NFTABLES_NFT_PATH: \"/nonexistent/nft\" not found") {
		t.Fatalf("missing nft: %v", err)
	}
	_, err = sinks.Load([]sinks.Registration{Registration}, []string{EnvPrefix + "ENABLED=true", EnvPrefix + "FAMILY=arp"}, deps)
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_NFTABLES_FAMILY") {
		t.Fatalf("bad family: %v", err)
	}
}
