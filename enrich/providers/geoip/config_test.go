package geoip

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
)

// loadEnv runs the registry the way main does.
func loadEnv(t *testing.T, vars map[string]string) ([]enrich.Configured, error) {
	t.Helper()
	var environ []string
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	got, err := enrich.Load([]enrich.Registration{Registration}, environ, enrich.Deps{})
	for _, c := range got {
		t.Cleanup(func() { c.Provider.(*Provider).Close() })
	}
	return got, err
}

func TestRegistrationVars(t *testing.T) {
	if Registration.Name != "geoip" || Registration.Prefix != "THREATPIPE_GEOIP_" {
		t.Fatalf("%q %q", Registration.Name, Registration.Prefix)
	}
	var names []string
	for _, v := range Registration.Vars() {
		names = append(names, v.Name)
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
		if v.Name == "THREATPIPE_GEOIP_RELOAD_INTERVAL" && v.Default != "1m" {
			t.Errorf("RELOAD_INTERVAL default %q", v.Default)
		}
	}
	// No rate, quota or TTL variables: they mean nothing for a local file.
	want := []string{"THREATPIPE_GEOIP_CITY_DB", "THREATPIPE_GEOIP_ASN_DB", "THREATPIPE_GEOIP_RELOAD_INTERVAL"}
	if !slices.Equal(names, want) {
		t.Fatalf("vars %v, want %v", names, want)
	}
}

func TestRegistrationLoads(t *testing.T) {
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "City.mmdb"), filepath.Join(dir, "ASN.mmdb")
	install(t, city, cityDB(t), time.Now())
	install(t, asn, asnDB(t, "EXAMPLE-NET"), time.Now())

	got, err := loadEnv(t, map[string]string{"THREATPIPE_GEOIP_CITY_DB": city, "THREATPIPE_GEOIP_ASN_DB": asn,
		"THREATPIPE_GEOIP_RELOAD_INTERVAL": "30s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Provider.Name() != "geoip" {
		t.Fatalf("%+v", got)
	}
	pol := got[0].Policy
	if !pol.Enabled || pol.Quota != 0 || pol.RetryBudget != 0 || pol.AttemptTimeout != time.Second || pol.RateLimit < 1e6 {
		t.Fatalf("policy %+v", pol)
	}
	p := got[0].Provider.(*Provider)
	if p.interval != 30*time.Second || p.city == nil || p.asn == nil {
		t.Fatalf("%+v", p)
	}

	none, err := loadEnv(t, map[string]string{"THREATPIPE_GEOIP_RELOAD_INTERVAL": "30s"})
	if err != nil || len(none) != 0 {
		t.Fatalf("unconfigured: %v %+v", err, none)
	}
}

func TestRegistrationErrors(t *testing.T) {
	dir := t.TempDir()
	city, asn, text := filepath.Join(dir, "City.mmdb"), filepath.Join(dir, "ASN.mmdb"), filepath.Join(dir, "notes.mmdb")
	install(t, city, cityDB(t), time.Now())
	install(t, asn, asnDB(t, "EXAMPLE-NET"), time.Now())
	if err := os.WriteFile(text, []byte("not a database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"city is an ASN db", map[string]string{"THREATPIPE_GEOIP_CITY_DB": asn}, []string{"THREATPIPE_GEOIP_CITY_DB", "GeoLite2-ASN"}},
		{"asn is a City db", map[string]string{"THREATPIPE_GEOIP_ASN_DB": city}, []string{"THREATPIPE_GEOIP_ASN_DB", "GeoLite2-City"}},
		{"missing", map[string]string{"THREATPIPE_GEOIP_ASN_DB": filepath.Join(dir, "nope.mmdb")}, []string{"THREATPIPE_GEOIP_ASN_DB", "nope.mmdb"}},
		{"directory", map[string]string{"THREATPIPE_GEOIP_CITY_DB": dir}, []string{"THREATPIPE_GEOIP_CITY_DB"}},
		{"not an mmdb", map[string]string{"THREATPIPE_GEOIP_CITY_DB": text}, []string{"THREATPIPE_GEOIP_CITY_DB", "notes.mmdb"}},
		{"zero interval", map[string]string{"THREATPIPE_GEOIP_CITY_DB": city, "THREATPIPE_GEOIP_RELOAD_INTERVAL": "0s"}, []string{"THREATPIPE_GEOIP_RELOAD_INTERVAL"}},
		{"bad interval", map[string]string{"THREATPIPE_GEOIP_CITY_DB": city, "THREATPIPE_GEOIP_RELOAD_INTERVAL": "soon"}, []string{"THREATPIPE_GEOIP_RELOAD_INTERVAL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadEnv(t, tc.vars)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestProviderPolicyIsStable(t *testing.T) {
	var c Config
	p1 := c.ProviderPolicy()
	p2 := c.ProviderPolicy()
	if p1 != p2 || *p1 != *enrich.OfflinePolicy() || !p1.Enabled || p1.Quota != 0 || p1.RetryBudget != 0 {
		t.Fatalf("%+v %+v", p1, p2)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(&Config{}, nil); err == nil || !strings.Contains(err.Error(), "CITY_DB") {
		t.Fatalf("unconfigured: %v", err)
	}
	cfg := &Config{ASNDB: filepath.Join(t.TempDir(), "gone.mmdb")}
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "THREATPIPE_GEOIP_ASN_DB") {
		t.Fatalf("missing file: %v", err)
	}
}
