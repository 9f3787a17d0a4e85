package sim

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// AbuseIPDBCheckPath is AbuseIPDB's lookup route.
const AbuseIPDBCheckPath = "/api/v2/check"

// AbuseIPDB speaks AbuseIPDB's APIv2 (shared reference providers.md §2): GET
// /api/v2/check?ipAddress=..., key in the Key header (or the key query parameter), errors as
// {"errors":[{"detail":"...","status":N}]}. It knows every address, as AbuseIPDB answers any
// valid one. Its answers, each a function of the address's Truth (draws salted "abuseipdb:"):
//
//   - hostile: 80% reported, abuseConfidenceScore 60-100, totalReports 5-400, numDistinctUsers
//     2-60 (at most the reports); the rest unreported;
//   - suspect: 40% reported, confidence 10-60, reports 1-30, users 1-20;
//   - clean: 5% reported, confidence 0-15, reports 1-3, users 1-3;
//   - service: 50% isWhitelisted true, confidence 0, with 0-20 reports (as real resolvers and
//     CDNs collect); the rest unreported; every other address isWhitelisted false;
//   - unreported: confidence 0, no reports, lastReportedAt null; reported: lastReportedAt
//     (RFC 3339, +00:00) before now by 1 hour to 7 days for hostile addresses, except 25% of
//     them ("abuseipdb:stale") last reported 45-89 days ago (still within the default 90-day
//     maxAgeInDays), whose evidence has decayed in the fused score; 1 hour to 30 days for the
//     others;
//   - isTor: Criminal IP's is_tor flag; usageType: service "Search Engine Spider" (crawlers) or
//     "Content Delivery Network", is_hosting or is_cloud "Data Center/Web Hosting/Transit",
//     is_mobile "Mobile ISP", else "Fixed Line ISP";
//   - countryCode (upper case), isp, domain: Criminal IP's network (a drawn one where Criminal
//     IP does not know the address).
//
// Every 200 and 429 carries X-RateLimit-Limit (DailyQuota, or UnmeteredAllowance when
// unmetered), X-RateLimit-Remaining (after this request) and X-RateLimit-Reset (epoch of the
// next UTC midnight). Failures: rejected key 401 with the documented detail; rate limited or
// forced 429 "Too Many Attempts." (invented; AbuseIPDB documents only the daily message) with
// Retry-After; quota spent 429 "Daily rate limit of N requests exceeded ..." with Retry-After
// to the reset and Remaining 0; ErrorRate 500; an ipAddress that is not an address 422 with
// source.parameter; unknown route 404; wrong method 405. maxAgeInDays and verbose are not
// validated or honoured.
type AbuseIPDB struct{}

var _ Dialect = AbuseIPDB{}

// Name implements Dialect.
func (AbuseIPDB) Name() string { return "abuseipdb" }

// Route implements Dialect.
func (AbuseIPDB) Route(r *http.Request) Route {
	if r.URL.Path == AbuseIPDBCheckPath {
		return Route{Kind: RouteLookup, Method: http.MethodGet, IP: r.URL.Query().Get("ipAddress")}
	}
	return Route{}
}

// Key implements Dialect: the Key header, or the documented (discouraged) key parameter.
func (AbuseIPDB) Key(r *http.Request) (string, bool) {
	if k := r.Header.Get("Key"); k != "" {
		return k, false
	}
	return r.URL.Query().Get("key"), false
}

// Knows implements Dialect: AbuseIPDB answers every address.
func (AbuseIPDB) Knows(*Truth) bool { return true }

// abuseError is one entry of AbuseIPDB's error document.
type abuseError struct {
	Detail string            `json:"detail"`
	Status int               `json:"status"`
	Source map[string]string `json:"source,omitempty"`
}

func writeAbuseError(w http.ResponseWriter, status int, detail string, source map[string]string) {
	WriteJSON(w, status, map[string][]abuseError{"errors": {{detail, status, source}}})
}

// Write implements Dialect.
func (d AbuseIPDB) Write(w http.ResponseWriter, o *Outcome) {
	switch o.Kind {
	case OutUnknownRoute, OutAccount:
		writeAbuseError(w, http.StatusNotFound, "The requested endpoint does not exist.", nil)
	case OutMethod:
		writeAbuseError(w, http.StatusMethodNotAllowed, "The "+o.Route.Method+" method is the only one supported for this route.", nil)
	case OutRejected:
		writeAbuseError(w, http.StatusUnauthorized, "Authentication failed. Your API key is either missing, incorrect, or revoked. Note: The APIv2 key differs from the APIv1 key.", nil)
	case OutRateLimited:
		abuseRateHeaders(w, o.Quota)
		w.Header().Set("Retry-After", RetryAfterSeconds(o.RetryAfter))
		writeAbuseError(w, http.StatusTooManyRequests, "Too Many Attempts.", nil)
	case OutQuotaExceeded:
		abuseRateHeaders(w, o.Quota)
		w.Header().Set("Retry-After", RetryAfterSeconds(o.Quota.Reset.Sub(o.Now)))
		writeAbuseError(w, http.StatusTooManyRequests, fmt.Sprintf("Daily rate limit of %d requests exceeded for this endpoint. See headers for additional details.", o.Quota.Limit), nil)
	case OutServerError:
		writeAbuseError(w, http.StatusInternalServerError, "Internal server error (simulated).", nil)
	case OutBadRequest:
		detail := "The ip address must be a valid IPv4 or IPv6 address (e.g. 8.8.8.8 or 2001:4860:4860::8888)."
		if o.Route.IP == "" {
			detail = "The ip address field is required."
		}
		writeAbuseError(w, http.StatusUnprocessableEntity, detail, map[string]string{"parameter": "ipAddress"})
	default: // OutAnswer (OutNotFound never happens: Knows is always true)
		abuseRateHeaders(w, o.Quota)
		WriteJSON(w, http.StatusOK, map[string]*abuseCheck{"data": abuseIPDBCheck(o.Truth, o.Now)})
	}
}

// abuseRateHeaders writes X-RateLimit-*; an unmetered simulator reports UnmeteredAllowance as
// its limit so that limit - remaining is still the count used.
func abuseRateHeaders(w http.ResponseWriter, q Allowance) {
	limit := q.Limit
	if limit <= 0 {
		limit = UnmeteredAllowance
	}
	w.Header().Set("X-RateLimit-Limit", strconv.FormatInt(limit, 10))
	w.Header().Set("X-RateLimit-Remaining", strconv.FormatInt(q.Remaining, 10))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(q.Reset.Unix(), 10))
}

// abuseCheck is the data object of GET /api/v2/check, in the documented field order.
type abuseCheck struct {
	IPAddress            string   `json:"ipAddress"`
	IsPublic             bool     `json:"isPublic"`
	IPVersion            int      `json:"ipVersion"`
	IsWhitelisted        bool     `json:"isWhitelisted"`
	AbuseConfidenceScore int      `json:"abuseConfidenceScore"`
	CountryCode          string   `json:"countryCode"`
	UsageType            string   `json:"usageType"`
	ISP                  string   `json:"isp"`
	Domain               string   `json:"domain"`
	Hostnames            []string `json:"hostnames"`
	IsTor                bool     `json:"isTor"`
	TotalReports         int      `json:"totalReports"`
	NumDistinctUsers     int      `json:"numDistinctUsers"`
	LastReportedAt       *string  `json:"lastReportedAt"`
}

// abuseIPDBCheck is the simulator's data object for the address (see AbuseIPDB); now anchors
// lastReportedAt.
func abuseIPDBCheck(t *Truth, now time.Time) *abuseCheck {
	a := netip.MustParseAddr(t.IP)
	n := networkOf(t, "abuseipdb:network")
	c := &abuseCheck{IPAddress: t.IP, IsPublic: a.IsGlobalUnicast() && !a.IsPrivate(), IPVersion: 4,
		CountryCode: strings.ToUpper(n.cc), UsageType: abuseUsage(t), ISP: n.org, Domain: strings.ToLower(n.asName) + ".example",
		Hostnames: []string{}, IsTor: t.Tagged("is_tor")}
	if a.Is6() {
		c.IPVersion = 6
	}
	abuseReports(t, c)
	if c.TotalReports > 0 {
		lo, hi := 3600, 30*86400
		if t.Class == ClassHostile {
			lo, hi = 3600, 7*86400
			if t.Chance("abuseipdb:stale", 0.25) {
				lo, hi = 45*86400, 89*86400
			}
		}
		at := now.UTC().Add(-time.Duration(t.Between("abuseipdb:last", lo, hi)) * time.Second)
		s := at.Format("2006-01-02T15:04:05-07:00")
		c.LastReportedAt = &s
	}
	if t.Class == ClassService {
		c.Hostnames = []string{"host-" + strings.NewReplacer(".", "-", ":", "-").Replace(t.IP) + "." + c.Domain}
	}
	return c
}

// abuseReports draws whether and how much the address was reported (see AbuseIPDB).
func abuseReports(t *Truth, c *abuseCheck) {
	type band struct {
		p                    float64
		conf, reports, users [2]int
	}
	var b band
	switch t.Class {
	case ClassHostile:
		b = band{0.80, [2]int{60, 100}, [2]int{5, 400}, [2]int{2, 60}}
	case ClassSuspect:
		b = band{0.40, [2]int{10, 60}, [2]int{1, 30}, [2]int{1, 20}}
	case ClassClean:
		b = band{0.05, [2]int{0, 15}, [2]int{1, 3}, [2]int{1, 3}}
	case ClassService:
		if t.Chance("abuseipdb:whitelisted", 0.5) {
			c.IsWhitelisted = true
			c.TotalReports = t.Between("abuseipdb:reports", 0, 20)
			c.NumDistinctUsers = min(t.Between("abuseipdb:users", 1, 10), c.TotalReports)
		}
		return
	}
	if !t.Chance("abuseipdb:reported", b.p) {
		return
	}
	c.AbuseConfidenceScore = t.Between("abuseipdb:confidence", b.conf[0], b.conf[1])
	c.TotalReports = t.Between("abuseipdb:reports", b.reports[0], b.reports[1])
	c.NumDistinctUsers = min(t.Between("abuseipdb:users", b.users[0], b.users[1]), c.TotalReports)
}

func abuseUsage(t *Truth) string {
	switch {
	case t.Class == ClassService && strings.Contains(t.Service, "Crawler"):
		return "Search Engine Spider"
	case t.Class == ClassService:
		return "Content Delivery Network"
	case t.Tagged("is_hosting") || t.Tagged("is_cloud"):
		return "Data Center/Web Hosting/Transit"
	case t.Tagged("is_mobile"):
		return "Mobile ISP"
	}
	return "Fixed Line ISP"
}

// networkOf is the address's network as Criminal IP reports it, so that every provider names
// the same AS, organisation and country; for an address Criminal IP does not know, one drawn
// (with salt) from the same table.
func networkOf(t *Truth, salt string) network {
	if !t.CIP.NotFound {
		p := &t.CIP
		return network{asn: p.ASNumber, asName: p.ASName, org: p.OrgName, cc: p.Country, city: p.City, lat: p.Lat, lon: p.Lon}
	}
	return networks[t.Between(salt, 0, len(networks)-1)]
}
