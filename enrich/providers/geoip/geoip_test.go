package geoip

import (
	"context"
	"testing"

	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

func TestLookupCityAndASN(t *testing.T) {
	p, _ := setup(t, cityDB(t), asnDB(t, "EXAMPLE-NET"))
	if p.Name() != "geoip" || p.Cost() != enrich.CostOffline {
		t.Fatalf("name %q cost %q", p.Name(), p.Cost())
	}
	for _, ip := range []string{"192.0.2.10", "::ffff:192.0.2.10"} {
		res := lookup(t, p, ip)
		want := "GeoIP: AS64500 EXAMPLE-NET, Amsterdam, NL"
		if res.Verdict != event.VerdictUnrated || res.Score != 0 || res.Detail != want {
			t.Fatalf("%s: %+v, want unrated %q", ip, res, want)
		}
		if res.ASNumber != 64500 || res.ASOrganization != "EXAMPLE-NET" || res.ISP != "EXAMPLE-NET" ||
			res.CountryISO != "NL" || res.City != "Amsterdam" || res.Location == nil ||
			res.Location.Lat != 52.3759 || res.Location.Lon != 4.8975 {
			t.Fatalf("%s: %+v", ip, res)
		}
	}
	res := lookup(t, p, "2001:db8:1::7")
	if res.Detail != "GeoIP: AS64501 EXAMPLE-V6, Berlin, DE" || res.Location == nil || res.Location.Lon != 13.405 {
		t.Fatalf("IPv6: %+v", res)
	}
	// In the ASN database only.
	res = lookup(t, p, "2001:db8:ffff::1")
	if res.Detail != "GeoIP: AS64501 EXAMPLE-V6" || res.CountryISO != "" || res.Location != nil {
		t.Fatalf("ASN only: %+v", res)
	}
	// registered_country stands in for a missing country; no location in the record.
	res = lookup(t, p, "198.51.100.1")
	if res.Detail != "GeoIP: FR" || res.CountryISO != "FR" || res.Location != nil || res.ASNumber != 0 {
		t.Fatalf("registered country: %+v", res)
	}
}

func TestLookupNotFound(t *testing.T) {
	p, _ := setup(t, cityDB(t), asnDB(t, "EXAMPLE-NET"))
	for _, ip := range []string{"203.0.113.9", "2001:db9::1"} {
		res := lookup(t, p, ip)
		if res.Verdict != event.VerdictNotFound || res.Detail != "GeoIP: not in the databases" || res.Score != 0 {
			t.Fatalf("%s: %+v", ip, res)
		}
	}
}

func TestCountryOnlyDatabase(t *testing.T) {
	country := mmdb(t, "GeoLite2-Country", 6,
		entry{"203.0.113.0/24", mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String("JP")}}},
		entry{"2001:db8:2::/48", mmdbtype.Map{"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("BR")}}},
	)
	p, _ := setup(t, country, nil)
	if res := lookup(t, p, "203.0.113.5"); res.Detail != "GeoIP: JP" || res.City != "" || res.Location != nil {
		t.Fatalf("%+v", res)
	}
	if res := lookup(t, p, "2001:db8:2::5"); res.Detail != "GeoIP: BR" || res.CountryISO != "BR" {
		t.Fatalf("%+v", res)
	}
	if res := lookup(t, p, "192.0.2.1"); res.Verdict != event.VerdictNotFound {
		t.Fatalf("%+v", res)
	}
}

func TestASNOnlyConfig(t *testing.T) {
	p, _ := setup(t, nil, asnDB(t, "EXAMPLE-NET"))
	res := lookup(t, p, "192.0.2.200")
	if res.Detail != "GeoIP: AS64500 EXAMPLE-NET" || res.ASNumber != 64500 || res.CountryISO != "" {
		t.Fatalf("%+v", res)
	}
	if res := lookup(t, p, "198.51.100.1"); res.Verdict != event.VerdictNotFound {
		t.Fatalf("%+v", res)
	}
}

func TestIPv4OnlyDatabase(t *testing.T) {
	asn := mmdb(t, "GeoLite2-ASN", 4, entry{"192.0.2.0/24", asnRec(64500, "EXAMPLE-NET")})
	p, _ := setup(t, nil, asn)
	if res := lookup(t, p, "192.0.2.1"); res.ASNumber != 64500 {
		t.Fatalf("%+v", res)
	}
	// An IPv6 address in an IPv4-only database is not there, not an error.
	if res := lookup(t, p, "2001:db8::1"); res.Verdict != event.VerdictNotFound {
		t.Fatalf("%+v", res)
	}
}

func TestNotAnAddress(t *testing.T) {
	p, _ := setup(t, cityDB(t), nil)
	for _, in := range []event.Indicator{{Type: "domain-name", Value: "example.com"}, {Type: event.IPv4, Value: "not-an-ip"}} {
		if _, err := p.Lookup(context.Background(), in); kindOf(err) != enrich.KindPermanent {
			t.Errorf("%+v: %v, want a permanent error", in, err)
		}
	}
}

func TestCancelledContext(t *testing.T) {
	p, _ := setup(t, cityDB(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Lookup(ctx, ind("192.0.2.1")); err == nil {
		t.Fatal("no error with a cancelled context")
	}
}

func TestClose(t *testing.T) {
	p, cfg := setup(t, cityDB(t), asnDB(t, "EXAMPLE-NET"))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Lookup(context.Background(), ind("192.0.2.1")); kindOf(err) != enrich.KindUnavailable {
		t.Fatalf("after Close: %v, want unavailable", err)
	}
	install(t, cfg.CityDB, cityDB(t), timeAfter(1))
	p.poll() // no reopening after Close
	if _, err := p.Lookup(context.Background(), ind("192.0.2.1")); kindOf(err) != enrich.KindUnavailable {
		t.Fatalf("after a poll: %v", err)
	}
}

func TestDecodeErrorIsTransient(t *testing.T) {
	// A number where the organisation string belongs: a file of an unexpected shape.
	asn := mmdb(t, "GeoLite2-ASN", 6, entry{"192.0.2.0/24", mmdbtype.Map{
		"autonomous_system_number": mmdbtype.String("AS64500"), "autonomous_system_organization": mmdbtype.String("X")}})
	p, _ := setup(t, nil, asn)
	if _, err := p.Lookup(context.Background(), ind("192.0.2.1")); kindOf(err) != enrich.KindTransient {
		t.Fatalf("%v, want transient", err)
	}
}
