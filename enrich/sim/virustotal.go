package sim

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// VirusTotalIPPath is the prefix of VirusTotal's IP address route; the address follows it.
const VirusTotalIPPath = "/api/v3/ip_addresses/"

// vtEngineCount is how many engines analyse every address.
const vtEngineCount = 94

// vtEngines are the engines' names: invented, stable.
var vtEngines = func() []string {
	out := make([]string, vtEngineCount)
	for i := range out {
		out[i] = fmt.Sprintf("SimEngine%02d", i+1)
	}
	return out
}()

// VirusTotal speaks VirusTotal's API v3 (shared reference providers.md §3): GET
// /api/v3/ip_addresses/{ip}, key in the x-apikey header, errors as
// {"error":{"code":"...","message":"..."}}. Its answers, each a function of the address's Truth
// (draws salted "virustotal:"):
//
//   - known: 98% of addresses; the rest 404 NotFoundError;
//   - 94 engines: malicious m and suspicious s by class, harmless 60-70, undetected the rest,
//     timeout 0. hostile: 70% m 3-15 and s 0-2, else m 0-1; suspect: 40% m 1-3; clean: 3%
//     m 1; service: 10% m 1 (a false positive); m 0 otherwise, and s 0 outside hostile;
//   - last_analysis_results: every engine, its category as the stats say (results
//     "malicious", "suspicious", "clean", "unrated");
//   - reputation: hostile -50..-5, suspect -10..0, clean 0, service +1..+20; total_votes:
//     hostile malicious 0-10, suspect malicious 0-3, service harmless 1-20, else none;
//   - asn, as_owner, country (upper case): Criminal IP's network (a drawn one where Criminal
//     IP does not know the address), with its continent and RIR; network the address's /24
//     (/48 for IPv6); tags empty, as VirusTotal's IP objects mostly are;
//   - last_analysis_date 1 hour to 30 days before now ("virustotal:analysed"), except for 25%
//     of hostile addresses ("virustotal:stale"), last analysed 60-180 days ago, whose detections
//     have decayed in the fused score; last_modification_date up to an hour after it,
//     whois_date 30-365 days before now.
//
// Failures: rejected key 401 WrongCredentialsError; rate limited, forced, or quota spent 429
// QuotaExceededError with Retry-After (VirusTotal documents none; the simulator sends it);
// ErrorRate 503 TransientError; an address that is not one 400 InvalidArgumentError; unknown
// route 404 NotFoundError; wrong method 405 BadRequestError (VirusTotal documents no code for
// it). VirusTotal documents no rate-limit headers, and none are sent.
type VirusTotal struct{}

var _ Dialect = VirusTotal{}

// Name implements Dialect.
func (VirusTotal) Name() string { return "virustotal" }

// Route implements Dialect: /api/v3/ip_addresses/{ip}; sub-resources (/comments, ...) are
// unknown routes.
func (VirusTotal) Route(r *http.Request) Route {
	ip, ok := strings.CutPrefix(r.URL.Path, VirusTotalIPPath)
	if !ok || ip == "" || strings.Contains(ip, "/") {
		return Route{}
	}
	return Route{Kind: RouteLookup, Method: http.MethodGet, IP: ip}
}

// Key implements Dialect.
func (VirusTotal) Key(r *http.Request) (string, bool) { return r.Header.Get("x-apikey"), false }

// Knows implements Dialect.
func (VirusTotal) Knows(t *Truth) bool { return !t.Chance("virustotal:unknown", 0.02) }

type vtErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeVTError(w http.ResponseWriter, status int, code, message string) {
	var b vtErrorBody
	b.Error.Code, b.Error.Message = code, message
	WriteJSON(w, status, b)
}

// Write implements Dialect.
func (VirusTotal) Write(w http.ResponseWriter, o *Outcome) {
	switch o.Kind {
	case OutUnknownRoute, OutAccount:
		writeVTError(w, http.StatusNotFound, "NotFoundError", "Resource not found")
	case OutMethod:
		writeVTError(w, http.StatusMethodNotAllowed, "BadRequestError", "Method not allowed; use "+o.Route.Method)
	case OutRejected:
		writeVTError(w, http.StatusUnauthorized, "WrongCredentialsError", "Wrong API key")
	case OutRateLimited:
		w.Header().Set("Retry-After", RetryAfterSeconds(o.RetryAfter))
		writeVTError(w, http.StatusTooManyRequests, "QuotaExceededError", "Quota exceeded")
	case OutQuotaExceeded:
		w.Header().Set("Retry-After", RetryAfterSeconds(o.Quota.Reset.Sub(o.Now)))
		writeVTError(w, http.StatusTooManyRequests, "QuotaExceededError", "Daily quota exceeded")
	case OutServerError:
		writeVTError(w, http.StatusServiceUnavailable, "TransientError", "Transient error (simulated), please try again later")
	case OutBadRequest:
		writeVTError(w, http.StatusBadRequest, "InvalidArgumentError", fmt.Sprintf("%q is not a valid IP address", vtCut(o.Route.IP, 64)))
	case OutNotFound:
		writeVTError(w, http.StatusNotFound, "NotFoundError", fmt.Sprintf("IP address %q not found", o.Truth.IP))
	default:
		WriteJSON(w, http.StatusOK, map[string]*vtObject{"data": virusTotalObject(o.Truth, o.Now)})
	}
}

func vtCut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

type vtObject struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Links      map[string]string `json:"links"`
	Attributes vtAttributes      `json:"attributes"`
}

type vtAttributes struct {
	ASOwner                  string              `json:"as_owner"`
	ASN                      int64               `json:"asn"`
	Continent                string              `json:"continent"`
	Country                  string              `json:"country"`
	Network                  string              `json:"network"`
	RegionalInternetRegistry string              `json:"regional_internet_registry"`
	JARM                     string              `json:"jarm"`
	Reputation               int                 `json:"reputation"`
	Tags                     []string            `json:"tags"`
	LastAnalysisDate         int64               `json:"last_analysis_date"`
	LastModificationDate     int64               `json:"last_modification_date"`
	LastAnalysisStats        map[string]int      `json:"last_analysis_stats"`
	LastAnalysisResults      map[string]vtResult `json:"last_analysis_results"`
	TotalVotes               map[string]int      `json:"total_votes"`
	Whois                    string              `json:"whois"`
	WhoisDate                int64               `json:"whois_date"`
}

type vtResult struct {
	Category   string `json:"category"`
	EngineName string `json:"engine_name"`
	Method     string `json:"method"`
	Result     string `json:"result"`
}

// vtRegions maps the simulated networks' countries to a continent and an RIR.
var vtRegions = map[string][2]string{
	"de": {"EU", "RIPE NCC"}, "nl": {"EU", "RIPE NCC"}, "fr": {"EU", "RIPE NCC"}, "gb": {"EU", "RIPE NCC"},
	"us": {"NA", "ARIN"}, "kr": {"AS", "APNIC"}, "jp": {"AS", "APNIC"}, "br": {"SA", "LACNIC"},
}

// virusTotalObject is the simulator's IP address object (see VirusTotal); now anchors the dates.
func virusTotalObject(t *Truth, now time.Time) *vtObject {
	n := networkOf(t, "virustotal:network")
	a := netip.MustParseAddr(t.IP)
	prefix, _ := a.Prefix(24)
	if a.Is6() {
		prefix, _ = a.Prefix(48)
	}
	lo, hi := 3600, 30*86400
	if t.Class == ClassHostile && t.Chance("virustotal:stale", 0.25) {
		lo, hi = 60*86400, 180*86400
	}
	analysed := now.Unix() - int64(t.Between("virustotal:analysed", lo, hi))
	region := vtRegions[n.cc]
	attrs := vtAttributes{
		ASOwner: n.asName, ASN: n.asn, Continent: region[0], Country: strings.ToUpper(n.cc), Network: prefix.String(),
		RegionalInternetRegistry: region[1], Tags: []string{}, Reputation: vtReputation(t),
		LastAnalysisDate: analysed, LastModificationDate: analysed + int64(t.Between("virustotal:modified", 0, 3600)),
		TotalVotes: vtVotes(t), WhoisDate: now.Unix() - int64(t.Between("virustotal:whois", 30, 365))*86400,
		Whois: fmt.Sprintf("NetRange: %s\nOrgName: %s\nCountry: %s\n", prefix, n.org, strings.ToUpper(n.cc)),
	}
	attrs.LastAnalysisStats, attrs.LastAnalysisResults = vtAnalysis(t)
	return &vtObject{ID: t.IP, Type: "ip_address", Links: map[string]string{"self": "https://www.virustotal.com" + VirusTotalIPPath + t.IP}, Attributes: attrs}
}

// vtDetections draws the malicious and suspicious engine counts (see VirusTotal).
func vtDetections(t *Truth) (m, s int) {
	switch t.Class {
	case ClassHostile:
		if t.Chance("virustotal:detected", 0.70) {
			return t.Between("virustotal:malicious", 3, 15), t.Between("virustotal:suspicious", 0, 2)
		}
		return t.Between("virustotal:malicious", 0, 1), 0
	case ClassSuspect:
		if t.Chance("virustotal:detected", 0.40) {
			return t.Between("virustotal:malicious", 1, 3), 0
		}
	case ClassClean:
		if t.Chance("virustotal:detected", 0.03) {
			return 1, 0
		}
	case ClassService:
		if t.Chance("virustotal:detected", 0.10) {
			return 1, 0
		}
	}
	return 0, 0
}

// vtAnalysis spreads the engines over the categories, starting at a drawn engine so that
// different engines flag different addresses.
func vtAnalysis(t *Truth) (map[string]int, map[string]vtResult) {
	m, s := vtDetections(t)
	h := t.Between("virustotal:harmless", 60, 70)
	u := vtEngineCount - m - s - h
	stats := map[string]int{"harmless": h, "malicious": m, "suspicious": s, "undetected": u, "timeout": 0}
	results := make(map[string]vtResult, vtEngineCount)
	start := t.Between("virustotal:first-engine", 0, vtEngineCount-1)
	for i := range vtEngineCount {
		category, result := "undetected", "unrated"
		switch {
		case i < m:
			category, result = "malicious", "malicious"
		case i < m+s:
			category, result = "suspicious", "suspicious"
		case i < m+s+h:
			category, result = "harmless", "clean"
		}
		name := vtEngines[(start+i)%vtEngineCount]
		results[name] = vtResult{Category: category, EngineName: name, Method: "blacklist", Result: result}
	}
	return stats, results
}

func vtReputation(t *Truth) int {
	switch t.Class {
	case ClassHostile:
		return t.Between("virustotal:reputation", -50, -5)
	case ClassSuspect:
		return t.Between("virustotal:reputation", -10, 0)
	case ClassService:
		return t.Between("virustotal:reputation", 1, 20)
	}
	return 0
}

func vtVotes(t *Truth) map[string]int {
	v := map[string]int{"harmless": 0, "malicious": 0}
	switch t.Class {
	case ClassHostile:
		v["malicious"] = t.Between("virustotal:votes", 0, 10)
	case ClassSuspect:
		v["malicious"] = t.Between("virustotal:votes", 0, 3)
	case ClassService:
		v["harmless"] = t.Between("virustotal:votes", 1, 20)
	}
	return v
}
