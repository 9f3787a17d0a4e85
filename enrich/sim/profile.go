package sim

import (
	"hash/fnv"
	"net/netip"
	"slices"
)

// Levels, in the spelling Criminal IP uses.
const (
	LevelSafe      = "Safe"
	LevelLow       = "Low"
	LevelModerate  = "Moderate"
	LevelDangerous = "Dangerous"
	LevelCritical  = "Critical"
)

// Profile is what the simulator says about one IP. It is a pure function of the address.
type Profile struct {
	IP       string // canonical spelling
	NotFound bool   // answered with body status 404
	Inbound  string
	Outbound string
	// Flags are the issues.is_* values set to true (e.g. "is_tor").
	Flags []string
	// Categories are the ip_category.data[].type values.
	Categories []string
	// Tags is what threatpipe's criminalip client derives from Flags and Categories: sorted,
	// lower-case (is_anonymous_vpn gives anonymous_vpn and vpn, is_snort gives ids, ...).
	Tags     []string
	ASNumber int64
	ASName   string
	OrgName  string
	Country  string // lower-case, as Criminal IP sends it
	City     string
	Lat, Lon float64
	Ports    []int
	CVEs     []CVE
}

// CVE is one vulnerability row.
type CVE struct {
	ID     string
	CVSSv3 float64
	Port   int
}

type network struct {
	asn                   int64
	asName, org, cc, city string
	lat, lon              float64
}

// networks is read-only: AS numbers from the documentation range (RFC 5398), invented names.
var networks = [...]network{
	{64496, "SIM-TRANSIT-AS", "Simulated Transit GmbH", "de", "Frankfurt am Main", 50.1109, 8.6821},
	{64497, "SIM-CLOUD", "Simulated Cloud LLC", "us", "Ashburn", 39.0438, -77.4875},
	{64498, "SIM-TELECOM", "Simulated Telecom Co", "kr", "Seoul", 37.5665, 126.978},
	{64499, "SIM-MOBILE", "Simulated Mobile SA", "br", "Sao Paulo", -23.5505, -46.6333},
	{64500, "SIM-HOSTING", "Simulated Hosting BV", "nl", "Amsterdam", 52.3676, 4.9041},
	{64501, "SIM-ISP", "Simulated ISP SAS", "fr", "Paris", 48.8566, 2.3522},
	{64502, "SIM-BROADBAND", "Simulated Broadband KK", "jp", "Tokyo", 35.6762, 139.6503},
	{64503, "SIM-ACADEMIC", "Simulated University", "gb", "London", 51.5072, -0.1276},
}

var candidatePorts = [...]int{22, 80, 443, 3389, 8080}

// hashIP is FNV-1a (64-bit) of the canonical spelling.
func hashIP(ip string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(ip))
	return h.Sum64()
}

// mix is splitmix64's finaliser: more independent bits for the flags.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func level(pct uint64, cuts [4]uint64) string {
	switch {
	case pct < cuts[0]:
		return LevelSafe
	case pct < cuts[1]:
		return LevelLow
	case pct < cuts[2]:
		return LevelModerate
	case pct < cuts[3]:
		return LevelDangerous
	}
	return LevelCritical
}

// Canonical returns the canonical spelling of an IP address (netip, IPv4-mapped unmapped), and
// false if s is not one.
func Canonical(s string) (string, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", false
	}
	return a.Unmap().String(), true
}

// CriminalIPProfile is the simulator's deterministic answer for ip; ok is false for a string
// that is not an IP address. The rules, with h = FNV-1a 64 of the canonical spelling and
// m = splitmix64(h):
//
//   - not found (HTTP 200, body {"status":404,...}) when h % 17 == 0 (about 5.9%);
//   - inbound from (h>>8) % 100: <50 Safe, <70 Low, <85 Moderate, <95 Dangerous, else Critical
//     (50/20/15/10/5%);
//   - outbound from (h>>16) % 100: <60 Safe, <80 Low, <90 Moderate, <97 Dangerous, else
//     Critical (60/20/10/7/3%);
//   - flags: is_tor m%20==0 (5%), is_proxy (m>>5)%20==0 (5%), is_vpn (m>>10)%12==0 (8.3%), of
//     which is_anonymous_vpn when (m>>15)%2==0, is_scanner (m>>20)%10==0 (10%), is_hosting
//     (m>>25)%4==0 (25%), is_cloud (m>>30)%10==0 (10%), is_mobile (m>>35)%20==0 (5%),
//     is_darkweb (m>>40)%50==0 (2%), is_snort (m>>45)%20==0 (5%);
//   - ip_category rows "tor", "proxy", "scanner", "cloud service", "hosting" for the matching
//     flags (so they add no tag the flags did not);
//   - whois row networks[(m>>50) % 8]; open ports: candidatePorts picked by the bits of
//     (m>>53) & 31, always at least one; CVEs: one for Dangerous inbound, two for Critical.
func CriminalIPProfile(ip string) (p Profile, ok bool) {
	c, ok := Canonical(ip)
	if !ok {
		return Profile{}, false
	}
	h := hashIP(c)
	p.IP = c
	if h%17 == 0 {
		p.NotFound = true
		return p, true
	}
	p.Inbound = level((h>>8)%100, [4]uint64{50, 70, 85, 95})
	p.Outbound = level((h>>16)%100, [4]uint64{60, 80, 90, 97})

	m := mix(h)
	tags := map[string]bool{}
	flag := func(on bool, name string, tagNames ...string) {
		if !on {
			return
		}
		p.Flags = append(p.Flags, name)
		for _, t := range tagNames {
			tags[t] = true
		}
	}
	vpn := (m>>10)%12 == 0
	flag(m%20 == 0, "is_tor", "tor")
	flag((m>>5)%20 == 0, "is_proxy", "proxy")
	flag(vpn, "is_vpn", "vpn")
	flag(vpn && (m>>15)%2 == 0, "is_anonymous_vpn", "anonymous_vpn", "vpn")
	flag((m>>20)%10 == 0, "is_scanner", "scanner")
	flag((m>>25)%4 == 0, "is_hosting", "hosting")
	flag((m>>30)%10 == 0, "is_cloud", "cloud")
	flag((m>>35)%20 == 0, "is_mobile", "mobile")
	flag((m>>40)%50 == 0, "is_darkweb", "darkweb")
	flag((m>>45)%20 == 0, "is_snort", "ids")
	for _, c := range []struct{ flag, typ string }{
		{"is_tor", "tor"}, {"is_proxy", "proxy"}, {"is_scanner", "scanner"}, {"is_cloud", "cloud service"}, {"is_hosting", "hosting"},
	} {
		if slices.Contains(p.Flags, c.flag) {
			p.Categories = append(p.Categories, c.typ)
		}
	}
	for t := range tags {
		p.Tags = append(p.Tags, t)
	}
	slices.Sort(p.Tags)

	n := networks[(m>>50)%uint64(len(networks))]
	p.ASNumber, p.ASName, p.OrgName, p.Country, p.City, p.Lat, p.Lon = n.asn, n.asName, n.org, n.cc, n.city, n.lat, n.lon

	bits := (m >> 53) & 31
	if bits == 0 {
		bits = 1
	}
	for i, port := range candidatePorts {
		if bits&(1<<i) != 0 {
			p.Ports = append(p.Ports, port)
		}
	}
	switch p.Inbound {
	case LevelCritical:
		p.CVEs = append(p.CVEs, CVE{"CVE-2021-44228", 10.0, p.Ports[0]})
		fallthrough
	case LevelDangerous:
		p.CVEs = append(p.CVEs, CVE{"CVE-2023-38408", 9.8, p.Ports[0]})
	}
	return p, true
}

// CriminalIPVerdict is the simulator's answer for ip in the form threatpipe's client reports
// it: the inbound and outbound levels and the normalised tags. Levels are "" (and tags nil)
// when the simulator answers not found, or ip is not an address (body status 400).
func CriminalIPVerdict(ip string) (inbound, outbound string, tags []string) {
	p, ok := CriminalIPProfile(ip)
	if !ok || p.NotFound {
		return "", "", nil
	}
	return p.Inbound, p.Outbound, p.Tags
}
