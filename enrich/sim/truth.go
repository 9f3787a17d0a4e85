package sim

import (
	"math"
	"slices"
)

// Class is what an address really is in the simulation. Every simulated provider sees the same
// reality through its own coverage and noise, so sources agree on some addresses and disagree
// on others, as real ones do.
type Class int

// Classes.
const (
	// ClassClean is an ordinary address: providers mostly know nothing bad of it.
	ClassClean Class = iota
	// ClassSuspect scans, anonymises or abuses a little: some providers flag it.
	ClassSuspect
	// ClassHostile attacks: most providers that see it rate it malicious.
	ClassHostile
	// ClassService is a known-benign business service (a public resolver, a CDN, a crawler):
	// GreyNoise marks it RIOT, and a vendor may still flag it (a false positive).
	ClassService
)

func (c Class) String() string {
	return [...]string{"clean", "suspect", "hostile", "service"}[c]
}

// Truth is an address's simulated reality; it is a pure function of the address.
type Truth struct {
	IP string
	// CIP is what Criminal IP says of it (CriminalIPProfile).
	CIP   Profile
	Class Class
	// Service names the business service of a ClassService address.
	Service string
	hash    uint64
}

var services = [...]string{"Simulated Public DNS", "Simulated CDN", "Simulated Search Crawler", "Simulated Mail Relay"}

// TruthOf is the reality of ip; false for a string that is not an IP address. The class,
// first rule that holds, with draws independent of Criminal IP's:
//
//   - service: 3% of addresses, whatever Criminal IP says of them;
//   - Criminal IP rates it Dangerous or Critical (inbound or outbound): hostile, except 25% of
//     them which are clean (Criminal IP's false positives, which other sources contradict);
//   - Criminal IP rates it Moderate, or flags it tor, proxy, anonymous VPN, scanner, darkweb or
//     IDS: suspect;
//   - otherwise clean, except 3% hostile (threats Criminal IP has not seen yet).
func TruthOf(ip string) (*Truth, bool) {
	p, ok := CriminalIPProfile(ip)
	if !ok {
		return nil, false
	}
	t := &Truth{IP: p.IP, CIP: p, hash: hashIP(p.IP)}
	worst := max(levelRank(p.Inbound), levelRank(p.Outbound))
	suspicious := slices.ContainsFunc(p.Flags, func(f string) bool {
		switch f {
		case "is_tor", "is_proxy", "is_anonymous_vpn", "is_scanner", "is_darkweb", "is_snort":
			return true
		}
		return false
	})
	switch {
	case t.Draw("class:service") < 0.03:
		t.Class = ClassService
		t.Service = services[int(t.Draw("class:service-name")*float64(len(services)))%len(services)]
	case worst >= levelRank(LevelDangerous):
		t.Class = ClassHostile
		if t.Draw("class:criminalip-false-positive") < 0.25 {
			t.Class = ClassClean
		}
	case worst == levelRank(LevelModerate) || suspicious:
		t.Class = ClassSuspect
	case t.Draw("class:unseen-threat") < 0.03:
		t.Class = ClassHostile
	}
	return t, true
}

func levelRank(l string) int {
	return slices.Index([]string{LevelSafe, LevelLow, LevelModerate, LevelDangerous, LevelCritical}, l) + 1
}

// Draw is a deterministic number in [0, 1) for this address and salt: independent draws for
// each provider and question ("abuseipdb:reported", say), the same every run.
func (t *Truth) Draw(salt string) float64 {
	h := t.hash
	for i := 0; i < len(salt); i++ {
		h = (h ^ uint64(salt[i])) * 0x100000001b3
	}
	return float64(mix(h)>>11) / (1 << 53)
}

// Between maps a draw onto the integers lo..hi.
func (t *Truth) Between(salt string, lo, hi int) int {
	return lo + int(math.Floor(t.Draw(salt)*float64(hi-lo+1)))
}

// Chance reports whether a draw falls under p.
func (t *Truth) Chance(salt string, p float64) bool { return t.Draw(salt) < p }

// Tagged reports whether Criminal IP flags the address with f ("is_tor", say): the other
// providers' tags follow the same facts.
func (t *Truth) Tagged(f string) bool { return slices.Contains(t.CIP.Flags, f) }
