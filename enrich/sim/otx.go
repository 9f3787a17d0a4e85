package sim

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// OTX's paths.
const (
	OTXIndicatorsPath = "/api/v1/indicators/"
	OTXUserPath       = "/api/v1/users/me"
)

// OTX speaks AlienVault OTX's API (shared reference providers.md §5): GET
// /api/v1/indicators/IPv4/{ip}/general (IPv6: /IPv6/) and GET /api/v1/users/me, key in
// X-OTX-API-KEY. OTX knows every address (always 200, pulse_info.count 0 when it is in no
// pulse). Pulses, by class (Truth):
//
//   - hostile: with probability 60% ("otx:listed"), 1-12 pulses ("otx:pulses");
//   - suspect: 25%, 1-2 pulses; clean: 2%, 1 pulse;
//   - service: no pulse, and a validation entry {"source":"whitelist","message":"contained in
//     whitelisted prefix","name":"Whitelisted IP"}, as for 8.8.8.8.
//
// Pulses are consecutive entries of otxPulses from a drawn start ("otx:pulse-start"), each
// modified ("2024-05-01T12:34:56.000000", UTC without a zone) 1-30 days before now
// ("otx:pulse-age:<i>"), or, for 25% of hostile addresses ("otx:stale"), 60-240 days before
// now: pulses nobody has touched for months, whose evidence has decayed in the fused score
// (created is a month before modified). Each carries its tags, ATT&CK ids and malware families (objects {"id","display_name","target"} per pulse; the
// names, e.g. ["Mirai","Gafgyt"], in pulse_info.related.alienvault.malware_families).
// base_indicator is {} for an address in no pulse. asn is "AS<number> <lower-case AS name>",
// and the geo fields (country_code upper-case, city, latitude, longitude) come from Criminal
// IP's whois row, or a drawn network ("otx:network") when Criminal IP has none.
//
// Errors, in Django REST framework's {"detail": ...} shape: rejected key 403 "Authentication
// required"; rate limited, forced window or spent quota 429 "Request was throttled. Expected
// available in N seconds." with Retry-After; 500 "A server error occurred."; an address that
// is not one of the path's type 400 "Invalid IP address"; unknown path (another section
// included: only general is simulated) 404 "Not found."; wrong method 405.
type OTX struct{}

var _ Dialect = OTX{}

// Name implements Dialect.
func (OTX) Name() string { return "otx" }

// Route implements Dialect. An address that does not match the path's type gets an empty IP,
// which the engine answers as a bad request.
func (OTX) Route(r *http.Request) Route {
	if r.URL.Path == OTXUserPath {
		return Route{Kind: RouteAccount, Method: http.MethodGet}
	}
	rest, ok := strings.CutPrefix(r.URL.Path, OTXIndicatorsPath)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 || parts[1] == "" || parts[2] != "general" || (parts[0] != "IPv4" && parts[0] != "IPv6") {
		return Route{}
	}
	ip := parts[1]
	if a, err := netip.ParseAddr(ip); err != nil || a.Is4() != (parts[0] == "IPv4") {
		ip = ""
	}
	return Route{Kind: RouteLookup, Method: http.MethodGet, IP: ip}
}

// Key implements Dialect.
func (OTX) Key(r *http.Request) (string, bool) { return r.Header.Get("X-OTX-API-KEY"), false }

// Knows implements Dialect: OTX answers every address.
func (OTX) Knows(*Truth) bool { return true }

type otxDetail struct {
	Detail string `json:"detail"`
}

// Write implements Dialect.
func (OTX) Write(w http.ResponseWriter, o *Outcome) {
	switch o.Kind {
	case OutUnknownRoute, OutNotFound:
		WriteJSON(w, http.StatusNotFound, otxDetail{"Not found."})
	case OutMethod:
		WriteJSON(w, http.StatusMethodNotAllowed, otxDetail{"Method not allowed."})
	case OutRateLimited, OutQuotaExceeded:
		wait := o.RetryAfter
		if o.Kind == OutQuotaExceeded {
			wait = o.Quota.Reset.Sub(o.Now)
		}
		secs := RetryAfterSeconds(wait)
		w.Header().Set("Retry-After", secs)
		WriteJSON(w, http.StatusTooManyRequests, otxDetail{"Request was throttled. Expected available in " + secs + " seconds."})
	case OutRejected:
		WriteJSON(w, http.StatusForbidden, otxDetail{"Authentication required"})
	case OutServerError:
		WriteJSON(w, http.StatusInternalServerError, otxDetail{"A server error occurred."})
	case OutBadRequest:
		WriteJSON(w, http.StatusBadRequest, otxDetail{"Invalid IP address"})
	case OutAccount:
		WriteJSON(w, http.StatusOK, map[string]any{"username": "threatpipe-sim", "member_since": "2024-01-01T00:00:00",
			"avatar_url": "/otxapi/users/avatar_image/media/avatars/default.png", "follower_count": 0, "pulse_count": 0,
			"subscriber_count": 0, "award_count": 0, "user_id": 1000001})
	default:
		w.Header().Set("X-OTX-ACTIVE", "1")
		WriteJSON(w, http.StatusOK, otxGeneral(o.Truth, o.Now))
	}
}

// otxPulseKind is one entry of the simulated pulse catalogue.
type otxPulseKind struct {
	name    string
	tags    []string
	malware []string
	attack  [2]string // ATT&CK id and name
}

// otxPulses is read-only.
var otxPulses = [...]otxPulseKind{
	{"Mirai botnet C2", []string{"mirai", "botnet", "iot"}, []string{"Mirai"}, [2]string{"T1071", "Application Layer Protocol"}},
	{"SSH brute force", []string{"ssh", "bruteforce", "honeypot"}, nil, [2]string{"T1110", "Brute Force"}},
	{"Gafgyt telnet scanners", []string{"gafgyt", "telnet", "iot"}, []string{"Gafgyt"}, [2]string{"T1595", "Active Scanning"}},
	{"RDP brute force", []string{"rdp", "bruteforce"}, nil, [2]string{"T1110", "Brute Force"}},
	{"Web exploitation attempts", []string{"exploit", "webserver"}, nil, [2]string{"T1190", "Exploit Public-Facing Application"}},
	{"Mozi P2P botnet nodes", []string{"mozi", "botnet", "p2p"}, []string{"Mozi"}, [2]string{"T1090", "Proxy"}},
	{"Cobalt Strike team servers", []string{"cobaltstrike", "c2"}, []string{"Cobalt Strike"}, [2]string{"T1071", "Application Layer Protocol"}},
	{"Honeypot attackers (weekly)", []string{"honeypot", "scanner"}, nil, [2]string{"T1595", "Active Scanning"}},
	{"SMTP spam sources", []string{"spam", "smtp"}, nil, [2]string{"T1566", "Phishing"}},
	{"Log4Shell exploitation", []string{"log4j", "cve-2021-44228"}, nil, [2]string{"T1190", "Exploit Public-Facing Application"}},
	{"Redis unauthorized access attempts", []string{"redis", "cryptominer"}, []string{"Kinsing"}, [2]string{"T1496", "Resource Hijacking"}},
	{"Mirai variant loaders", []string{"mirai", "loader"}, []string{"Mirai", "Gafgyt"}, [2]string{"T1105", "Ingress Tool Transfer"}},
}

// otxPulseCount applies the listing probabilities of the OTX doc comment.
func otxPulseCount(t *Truth) int {
	switch {
	case t.Class == ClassHostile && t.Chance("otx:listed", 0.6):
		return t.Between("otx:pulses", 1, 12)
	case t.Class == ClassSuspect && t.Chance("otx:listed", 0.25):
		return t.Between("otx:pulses", 1, 2)
	case t.Class == ClassClean && t.Chance("otx:listed", 0.02):
		return 1
	}
	return 0
}

type otxFamily struct {
	ID          string  `json:"id"`
	DisplayName string  `json:"display_name"`
	Target      *string `json:"target"`
}

type otxRelated struct {
	Adversary       []string `json:"adversary"`
	MalwareFamilies []string `json:"malware_families"`
	Industries      []string `json:"industries"`
}

func otxPulseBody(t *Truth, i int, k otxPulseKind, now time.Time) map[string]any {
	families := []otxFamily{}
	for _, m := range k.malware {
		families = append(families, otxFamily{ID: m, DisplayName: m})
	}
	lo, hi := 1, 30
	if t.Class == ClassHostile && t.Chance("otx:stale", 0.25) {
		lo, hi = 60, 240
	}
	modified := now.UTC().AddDate(0, 0, -t.Between(fmt.Sprintf("otx:pulse-age:%d", i), lo, hi))
	const layout = "2006-01-02T15:04:05.000000"
	return map[string]any{
		"id": fmt.Sprintf("65%06x%016x", i, hashIP(t.IP)), "name": k.name, "description": "Simulated pulse.",
		"modified": modified.Format(layout), "created": modified.AddDate(0, -1, 0).Format(layout),
		"tags": k.tags, "references": []string{}, "public": 1, "adversary": "", "targeted_countries": []string{},
		"malware_families": families, "industries": []string{}, "TLP": "white",
		"attack_ids":      []map[string]string{{"id": k.attack[0], "name": k.attack[1], "display_name": k.attack[0] + " - " + k.attack[1]}},
		"author":          map[string]any{"username": "threatpipe_sim", "id": "1000001", "is_subscribed": false, "is_following": false},
		"indicator_count": 100 + t.Between(fmt.Sprintf("otx:pulse-size:%d", i), 0, 20000), "export_count": 0,
		"upvotes_count": 0, "downvotes_count": 0, "votes_count": 0, "locked": false, "pulse_source": "web",
		"validator_count": 0, "comment_count": 0, "follower_count": 0, "vote": 0, "is_author": false,
		"related_indicator_type": "IPv4", "related_indicator_is_active": 1,
	}
}

// otxCountries is read-only: code3, name and continent of the simulated networks' countries.
var otxCountries = map[string][3]string{
	"de": {"DEU", "Germany", "EU"}, "us": {"USA", "United States of America", "NA"}, "kr": {"KOR", "Korea, Republic of", "AS"},
	"br": {"BRA", "Brazil", "SA"}, "nl": {"NLD", "Netherlands", "EU"}, "fr": {"FRA", "France", "EU"},
	"jp": {"JPN", "Japan", "AS"}, "gb": {"GBR", "United Kingdom", "EU"},
}

func otxGeneral(t *Truth, now time.Time) map[string]any {
	typ := "IPv4"
	if a, _ := netip.ParseAddr(t.IP); a.Is6() {
		typ = "IPv6"
	}
	n := otxPulseCount(t)
	start := t.Between("otx:pulse-start", 0, len(otxPulses)-1)
	pulses := make([]map[string]any, 0, n)
	malware := []string{}
	for i := range n {
		k := otxPulses[(start+i)%len(otxPulses)]
		pulses = append(pulses, otxPulseBody(t, i, k, now))
		for _, m := range k.malware {
			if !slices.Contains(malware, m) {
				malware = append(malware, m)
			}
		}
		pulses[i]["related_indicator_type"] = typ
	}
	base := map[string]any{}
	if n > 0 {
		base = map[string]any{"id": hashIP(t.IP) >> 33, "indicator": t.IP, "type": typ, "title": "", "description": "",
			"content": "", "access_type": "public", "access_reason": ""}
	}
	validation := []map[string]string{}
	if t.Class == ClassService {
		validation = append(validation, map[string]string{"source": "whitelist", "message": "contained in whitelisted prefix", "name": "Whitelisted IP"})
	}
	empty := otxRelated{[]string{}, []string{}, []string{}}
	body := map[string]any{
		"whois": "http://whois.domaintools.com/" + t.IP, "reputation": 0, "indicator": t.IP, "type": typ, "type_title": typ,
		"base_indicator": base,
		"pulse_info": map[string]any{"count": n, "pulses": pulses, "references": []string{},
			"related": map[string]otxRelated{"alienvault": {[]string{}, malware, []string{}}, "other": empty}},
		"false_positive": []any{}, "validation": validation,
		"sections": []string{"general", "geo", "reputation", "url_list", "passive_dns", "malware", "nids_list", "http_scans"},
	}
	for k, v := range otxGeo(t) {
		body[k] = v
	}
	return body
}

// otxGeo is the asn and geo part of the general section.
func otxGeo(t *Truth) map[string]any {
	nw := network{t.CIP.ASNumber, t.CIP.ASName, t.CIP.OrgName, t.CIP.Country, t.CIP.City, t.CIP.Lat, t.CIP.Lon}
	if nw.asn == 0 {
		nw = networks[t.Between("otx:network", 0, len(networks)-1)]
	}
	c := otxCountries[nw.cc]
	cc := strings.ToUpper(nw.cc)
	return map[string]any{
		"asn": fmt.Sprintf("AS%d %s", nw.asn, strings.ToLower(nw.asName)), "city_data": true, "city": nw.city,
		"region": nil, "continent_code": c[2], "country_code3": c[0], "country_code2": cc, "subdivision": nil,
		"latitude": nw.lat, "postal_code": nil, "longitude": nw.lon, "accuracy_radius": 100, "country_code": cc,
		"country_name": c[1], "dma_code": 0, "charset": 0, "area_code": 0,
		"flag_url": "/assets/images/flags/" + nw.cc + ".png", "flag_title": c[1],
	}
}
