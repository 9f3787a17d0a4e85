package geoip

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// entry is one network of a test database.
type entry struct {
	cidr string
	rec  mmdbtype.Map
}

// mmdb builds a tiny MaxMind database in memory.
func mmdb(t testing.TB, dbType string, ipVersion int, entries ...entry) []byte {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType, IPVersion: ipVersion, RecordSize: 24,
		IncludeReservedNetworks: true, // the fixtures use documentation ranges
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		_, network, err := net.ParseCIDR(e.cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(network, e.rec); err != nil {
			t.Fatalf("insert %s: %v", e.cidr, err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// install writes data to path the way geoipupdate does (a temporary file renamed over the old
// one) and gives it modification time mod, so that a poll sees a change however fast the test.
func install(t testing.TB, path string, data []byte, mod time.Time) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp.Name(), mod, mod); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

func cityRec(city, country string, lat, lon float64) mmdbtype.Map {
	m := mmdbtype.Map{
		"country":  mmdbtype.Map{"iso_code": mmdbtype.String(country), "names": mmdbtype.Map{"en": mmdbtype.String(country + "-land")}},
		"location": mmdbtype.Map{"latitude": mmdbtype.Float64(lat), "longitude": mmdbtype.Float64(lon), "accuracy_radius": mmdbtype.Uint16(20)},
	}
	if city != "" {
		m["city"] = mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2759794), "names": mmdbtype.Map{"en": mmdbtype.String(city), "de": mmdbtype.String(city + "-de")}}
	}
	return m
}

func asnRec(n uint32, org string) mmdbtype.Map {
	return mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(n), "autonomous_system_organization": mmdbtype.String(org)}
}

// cityDB and asnDB are the standard fixtures: IPv4 and IPv6 networks in documentation ranges.
func cityDB(t testing.TB) []byte {
	return mmdb(t, "GeoLite2-City", 6,
		entry{"192.0.2.0/24", cityRec("Amsterdam", "NL", 52.3759, 4.8975)},
		entry{"2001:db8:1::/48", cityRec("Berlin", "DE", 52.52, 13.405)},
		entry{"198.51.100.0/24", mmdbtype.Map{"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("FR")}}},
	)
}

func asnDB(t testing.TB, org string) []byte {
	return mmdb(t, "GeoLite2-ASN", 6,
		entry{"192.0.2.0/24", asnRec(64500, org)},
		entry{"2001:db8::/32", asnRec(64501, "EXAMPLE-V6")},
	)
}

// setup writes the databases (nil: not configured) to a temporary directory and opens them.
func setup(t testing.TB, city, asn []byte) (*Provider, *Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := &Config{ReloadInterval: time.Minute}
	if city != nil {
		cfg.CityDB = filepath.Join(dir, "City.mmdb")
		install(t, cfg.CityDB, city, time.Now().Add(-time.Hour))
	}
	if asn != nil {
		cfg.ASNDB = filepath.Join(dir, "ASN.mmdb")
		install(t, cfg.ASNDB, asn, time.Now().Add(-time.Hour))
	}
	if err := cfg.Resolve(); err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, cfg
}

func ind(ip string) event.Indicator {
	a := netip.MustParseAddr(ip)
	typ := event.IPv4
	if a.Unmap().Is6() {
		typ = event.IPv6
	}
	return event.Indicator{Type: typ, Value: ip, Addr: a}
}

func lookup(t testing.TB, p *Provider, ip string) *enrich.Result {
	t.Helper()
	res, err := p.Lookup(context.Background(), ind(ip))
	if err != nil {
		t.Fatalf("%s: %v", ip, err)
	}
	return res
}

func kindOf(err error) enrich.ErrorKind {
	var pe *enrich.Error
	if !errors.As(err, &pe) {
		return ""
	}
	return pe.Kind
}
