package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// The simulator's offline data: GeoIP databases and IP lists consistent with the simulated
// reality of a set of addresses, for the embedded demo, tests and benchmarks, so the offline
// sources answer as real ones would, with nothing downloaded.

// GeoIPDatabases builds a GeoLite2-City and a GeoLite2-ASN database (MaxMind format) that place
// each address where Criminal IP's simulated whois does.
func GeoIPDatabases(ips []string) (city, asn []byte, err error) {
	cityTree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", IPVersion: 6, RecordSize: 28, IncludeReservedNetworks: true})
	if err != nil {
		return nil, nil, err
	}
	asnTree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-ASN", IPVersion: 6, RecordSize: 28, IncludeReservedNetworks: true})
	if err != nil {
		return nil, nil, err
	}
	for _, ip := range ips {
		p, ok := CriminalIPProfile(ip)
		if !ok || p.NotFound {
			continue
		}
		a := netip.MustParseAddr(p.IP)
		host := &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
		cc := strings.ToUpper(p.Country)
		rec := mmdbtype.Map{
			"country":  mmdbtype.Map{"iso_code": mmdbtype.String(cc)},
			"city":     mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(p.City)}},
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(p.Lat), "longitude": mmdbtype.Float64(p.Lon)},
		}
		if err := cityTree.Insert(host, rec); err != nil {
			return nil, nil, fmt.Errorf("geoip city %s: %w", ip, err)
		}
		as := mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(p.ASNumber), "autonomous_system_organization": mmdbtype.String(p.ASName)}
		if err := asnTree.Insert(host, as); err != nil {
			return nil, nil, fmt.Errorf("geoip asn %s: %w", ip, err)
		}
	}
	var c, s bytes.Buffer
	if _, err := cityTree.WriteTo(&c); err != nil {
		return nil, nil, err
	}
	if _, err := asnTree.WriteTo(&s); err != nil {
		return nil, nil, err
	}
	return c.Bytes(), s.Bytes(), nil
}

// ListFile is one simulated IP list and how the enrichment rules declare it.
type ListFile struct {
	Name, File, Kind, Format string
	Data                     []byte
}

// Lists builds three lists over the addresses, each in a real format:
//
//   - sim-drop (block, Spamhaus DROP text): the /28 of a tenth of the hostile addresses;
//   - sim-tor-exits (tag, the Tor Project's bulk exit list): every address Criminal IP flags is_tor;
//   - sim-benign-services (benign, a MISP warninglist): every service-class address.
func Lists(ips []string) []ListFile {
	var drop, tor, benign []string
	for _, ip := range ips {
		t, ok := TruthOf(ip)
		if !ok {
			continue
		}
		switch {
		case t.Class == ClassHostile && t.Chance("lists:drop", 0.1):
			p, _ := netip.MustParseAddr(t.IP).Prefix(28)
			if netip.MustParseAddr(t.IP).Is6() {
				p, _ = netip.MustParseAddr(t.IP).Prefix(64)
			}
			drop = append(drop, p.String()+" ; SBL"+fmt.Sprint(100000+int(t.hash%900000)))
		case t.Class == ClassService:
			benign = append(benign, t.IP+"/"+fmt.Sprint(netip.MustParseAddr(t.IP).BitLen()))
		}
		if t.Tagged("is_tor") {
			tor = append(tor, t.IP)
		}
	}
	slices.Sort(drop)
	drop = slices.Compact(drop)
	warn, _ := json.MarshalIndent(map[string]any{
		"name": "Simulated known-benign services", "type": "cidr", "version": 1,
		"description":         "Business services of the threatpipe simulator (resolvers, CDNs, crawlers).",
		"matching_attributes": []string{"ip-src", "ip-dst"}, "list": benign,
	}, "", "  ")
	return []ListFile{
		{Name: "sim-drop", File: "drop.txt", Kind: "block", Format: "spamhaus_drop",
			Data: []byte("; Simulated Spamhaus DROP list\n; Expires: never\n" + strings.Join(drop, "\n") + "\n")},
		{Name: "sim-tor-exits", File: "torbulkexitlist", Kind: "tag", Format: "tor_exit", Data: []byte(strings.Join(tor, "\n") + "\n")},
		{Name: "sim-benign-services", File: "benign-services.json", Kind: "benign", Format: "misp_warninglist", Data: warn},
	}
}
