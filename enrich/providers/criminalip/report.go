package criminalip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"

	fastjson "github.com/segmentio/encoding/json"
)

// section is Criminal IP's {count, data[]} list wrapper.
type section[T any] struct {
	Count flexInt `json:"count"`
	Data  []T     `json:"data"`
}

type scorePair struct {
	Inbound  Level `json:"inbound"`
	Outbound Level `json:"outbound"`
}

type whoisRow struct {
	ASName         flexString `json:"as_name"`
	ASNo           flexInt    `json:"as_no"`
	City           flexString `json:"city"`
	Region         flexString `json:"region"`
	OrgName        flexString `json:"org_name"`
	OrgCountryCode flexString `json:"org_country_code"`
	CountryCode    flexString `json:"country_code"`
	Latitude       flexFloat  `json:"latitude"`
	Longitude      flexFloat  `json:"longitude"`
}

type categoryRow struct {
	Type          flexString `json:"type"`
	ConfirmedTime flexString `json:"confirmed_time"`
}

// idsRow is an IDS (Snort) detection: only its time is read.
type idsRow struct {
	ConfirmedTime flexString `json:"confirmed_time"`
}

type portRow struct {
	OpenPortNo flexInt `json:"open_port_no"`
}

type vulnRow struct {
	CVEID  flexString `json:"cve_id"`
	CVSSv3 flexFloat  `json:"cvssv3_score"`
	CVSSv2 flexFloat  `json:"cvssv2_score"`
}

// report is the part of GET /v1/asset/ip/report (and of the legacy GET /v1/ip/data) that is
// normalised. Unknown fields are ignored.
type report struct {
	Status        flexInt                  `json:"status"`
	Message       flexString               `json:"message"`
	IP            flexString               `json:"ip"`
	Issues        flags                    `json:"issues"`
	LegacyTags    flags                    `json:"tags"` // /v1/ip/data put the is_* flags here
	Score         scorePair                `json:"score"`
	ProtectedIP   section[json.RawMessage] `json:"protected_ip"`
	Whois         section[whoisRow]        `json:"whois"`
	IPCategory    section[categoryRow]     `json:"ip_category"`
	IDS           section[idsRow]          `json:"ids"`
	Port          section[portRow]         `json:"port"`
	Vulnerability section[vulnRow]         `json:"vulnerability"`
}

// envelope is the status/message pair every Criminal IP body carries.
type envelope struct {
	Status  flexInt    `json:"status"`
	Message flexString `json:"message"`
}

// unmarshalLenient decodes JSON, tolerating values of the wrong type (encoding/json skips such a
// field and completes the rest); only syntax errors fail.
//
// segmentio/encoding decodes first (several times faster); on any error the standard library
// decodes again, because only it keeps going past a mistyped field.
func unmarshalLenient(body []byte, v any) error {
	if fastjson.Unmarshal(body, v) == nil {
		return nil
	}
	err := json.Unmarshal(body, v)
	var te *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &te) {
		return err
	}
	return nil
}

func malformed(format string, args ...any) *enrich.Error {
	return &enrich.Error{Provider: Name, Kind: enrich.KindTransient, Message: "malformed response: " + fmt.Sprintf(format, args...)}
}

// statusError maps a non-success body status like an HTTP status. The caller handles 404.
func statusError(status int64, message string) *enrich.Error {
	if status < 100 || status > 599 {
		return malformed("status %d in body", status)
	}
	return &enrich.Error{Provider: Name, Kind: enrich.ClassifyHTTPStatus(int(status)), Status: int(status), Message: message}
}

// decodeReport turns a 2xx body of /v1/asset/ip/report into a Result: body status 2xx is an
// answer, 404 is a not-found Result, anything else is an *enrich.Error classified like an HTTP
// status. A body that is not JSON, or has no status field, is a transient "malformed response"
// error. Messages are raw here; Client redacts and truncates them.
func decodeReport(body []byte) (*enrich.Result, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, malformed("empty body")
	}
	var r report
	if err := unmarshalLenient(body, &r); err != nil {
		e := malformed("not JSON")
		e.Err = err
		return nil, e
	}
	if !r.Status.OK {
		return nil, malformed("no status field")
	}
	switch st := r.Status.V; {
	case st >= 200 && st < 300:
		return normalise(&r), nil
	case st == 404:
		return notFound(string(r.Message)), nil
	default:
		return nil, statusError(st, string(r.Message))
	}
}

func notFound(message string) *enrich.Result {
	detail := "Criminal IP: no data"
	if m := clean(message, 80); m != "" {
		detail += " (" + m + ")"
	}
	return &enrich.Result{Verdict: enrich.VerdictNotFound, Detail: detail}
}

// flagTags maps issues.is_* flags to tags.
var flagTags = map[string][]string{
	"is_tor":           {"tor"},
	"is_vpn":           {"vpn"},
	"is_anonymous_vpn": {"anonymous_vpn", "vpn"},
	"is_proxy":         {"proxy"},
	"is_scanner":       {"scanner"},
	"is_hosting":       {"hosting"},
	"is_cloud":         {"cloud"},
	"is_mobile":        {"mobile"},
	"is_darkweb":       {"darkweb"},
	"is_snort":         {"ids"},
}

// categoryAliases maps ip_category.data[].type values (lower-cased) to tags; other types are
// lower-cased with spaces turned into underscores.
var categoryAliases = map[string]string{
	"cloud service": "cloud",
	"cloud_service": "cloud",
	"is_snort":      "ids",
	"snort":         "ids",
}

// suspiciousFlags make an answer at least suspicious.
var suspiciousFlags = []string{"is_tor", "is_proxy", "is_anonymous_vpn", "is_scanner", "is_darkweb", "is_snort"}

// categoryTag normalises an ip_category type into a tag, or "" if it cannot be one.
func categoryTag(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	if t == "" {
		return ""
	}
	t = strings.Join(strings.Fields(t), " ")
	if a, ok := categoryAliases[t]; ok {
		return a
	}
	t = strings.Map(func(r rune) rune {
		switch {
		case r == ' ':
			return '_'
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '.':
			return r
		}
		return -1
	}, t)
	if t == "" || len(t) > 64 {
		return ""
	}
	return t
}

// normalise maps a successful report to a Result.
//
// Scores: InboundScore/OutboundScore use OpenCTI's table (Critical 95, Dangerous 85,
// Moderate 65, Low 35, Safe 10, unknown 0) and Score is the larger of the two.
//
// Verdict, first rule that holds:
//   - malicious: inbound or outbound is Dangerous or Critical;
//   - suspicious: inbound or outbound is Moderate, or any of is_tor, is_proxy,
//     is_anonymous_vpn, is_scanner, is_darkweb, is_snort is true (under issues, or the legacy
//     top-level tags), or protected_ip lists a real IP behind the address (count > 0);
//     ip_category rows add tags but do not change the verdict;
//   - benign: everything else (Safe/Low, or no levels at all, with only neutral tags such as
//     vpn, hosting, cloud, mobile).
//
// LastSeen, the evidence's date (old evidence decays in the fused score), is the newest
// confirmed_time of the ip_category and ids rows ("YYYY-MM-DD HH:MM:SS", a date, or RFC 3339;
// no zone: UTC) that is sane: from 2000 on and at most a day in the future. None: nil.
func normalise(r *report) *enrich.Result {
	in, out := r.Score.Inbound, r.Score.Outbound
	res := &enrich.Result{
		InboundLevel: in.String(), InboundScore: in.Score(),
		OutboundLevel: out.String(), OutboundScore: out.Score(),
	}
	res.Score = max(res.InboundScore, res.OutboundScore)

	tagSet := make(map[string]bool)
	for _, fl := range []flags{r.Issues, r.LegacyTags} {
		for key, tags := range flagTags {
			if fl[key] {
				for _, t := range tags {
					tagSet[t] = true
				}
			}
		}
	}
	for _, c := range r.IPCategory.Data {
		if t := categoryTag(string(c.Type)); t != "" {
			tagSet[t] = true
		}
	}
	if len(tagSet) > 0 {
		res.Tags = make([]string, 0, len(tagSet))
		for t := range tagSet {
			res.Tags = append(res.Tags, t)
		}
		slices.Sort(res.Tags)
	}

	if len(r.Whois.Data) > 0 {
		w := r.Whois.Data[0]
		if w.ASNo.OK && w.ASNo.V > 0 && w.ASNo.V <= math.MaxUint32 {
			res.ASNumber = w.ASNo.V
		}
		res.ASOrganization = clean(string(w.ASName), 256)
		res.ISP = clean(string(w.OrgName), 256)
		res.City = clean(string(w.City), 256)
		res.CountryISO = countryISO(string(w.OrgCountryCode))
		if res.CountryISO == "" {
			res.CountryISO = countryISO(string(w.CountryCode))
		}
		lat, lon := w.Latitude, w.Longitude
		if lat.OK && lon.OK && math.Abs(lat.V) <= 90 && math.Abs(lon.V) <= 180 && (lat.V != 0 || lon.V != 0) {
			res.Location = &enrich.Geo{Lat: lat.V, Lon: lon.V}
		}
	}

	for _, p := range r.Port.Data {
		if p.OpenPortNo.OK && p.OpenPortNo.V >= 1 && p.OpenPortNo.V <= 65535 {
			res.OpenPorts = append(res.OpenPorts, int(p.OpenPortNo.V))
		}
	}
	slices.Sort(res.OpenPorts)
	res.OpenPorts = slices.Compact(res.OpenPorts)

	if c := r.Vulnerability.Count; c.OK && c.V >= 0 {
		res.CVECount = int(min(c.V, math.MaxInt32))
	} else {
		res.CVECount = len(r.Vulnerability.Data)
	}
	for _, v := range r.Vulnerability.Data {
		s := 0.0
		if v.CVSSv3.OK && v.CVSSv3.V > 0 {
			s = v.CVSSv3.V
		} else if v.CVSSv2.OK {
			s = v.CVSSv2.V
		}
		res.MaxCVSS = max(res.MaxCVSS, min(max(s, 0), 10))
	}

	protected := (r.ProtectedIP.Count.OK && r.ProtectedIP.Count.V > 0) || len(r.ProtectedIP.Data) > 0
	worst := max(in, out)
	switch {
	case worst >= LevelDangerous:
		res.Verdict = enrich.VerdictMalicious
	case worst == LevelModerate || protected || slices.ContainsFunc(suspiciousFlags, func(f string) bool { return r.Issues[f] || r.LegacyTags[f] }):
		res.Verdict = enrich.VerdictSuspicious
	default:
		res.Verdict = enrich.VerdictBenign
	}
	res.LastSeen = lastConfirmed(r)
	res.Detail = detail(res, protected)
	return res
}

// lastConfirmed is the newest sane confirmed_time of the report's ip_category and ids rows.
func lastConfirmed(r *report) *time.Time {
	var newest time.Time
	seen := func(s flexString) {
		if s == "" {
			return
		}
		t := parseTime(string(s))
		if t.Year() >= 2000 && !t.After(time.Now().Add(24*time.Hour)) && t.After(newest) {
			newest = t
		}
	}
	for _, c := range r.IPCategory.Data {
		seen(c.ConfirmedTime)
	}
	for _, d := range r.IDS.Data {
		seen(d.ConfirmedTime)
	}
	if newest.IsZero() {
		return nil
	}
	return &newest
}

// detail is the one-line summary, e.g.
// "Criminal IP: inbound Dangerous, outbound Moderate; hosting, scanner, tor; AS64500 EXAMPLE-TRANSIT-AS (DE)".
func detail(res *enrich.Result, protected bool) string {
	name := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Criminal IP: inbound %s, outbound %s", name(res.InboundLevel), name(res.OutboundLevel))
	if len(res.Tags) > 0 {
		b.WriteString("; ")
		b.WriteString(strings.Join(res.Tags, ", "))
	}
	if protected {
		b.WriteString("; real IP behind it")
	}
	var network []string
	if res.ASNumber > 0 {
		network = append(network, "AS"+strconv.FormatInt(res.ASNumber, 10))
	}
	if res.ASOrganization != "" {
		network = append(network, res.ASOrganization)
	}
	if res.CountryISO != "" {
		network = append(network, "("+res.CountryISO+")")
	}
	if len(network) > 0 {
		b.WriteString("; ")
		b.WriteString(strings.Join(network, " "))
	}
	return b.String()
}

func countryISO(s string) string { return providerhttp.CountryISO(s) }

func clean(s string, maxRunes int) string { return providerhttp.Clean(s, maxRunes) }

// timeLayouts are the timestamp spellings Criminal IP uses (no zone: read as UTC).
var timeLayouts = []string{time.DateTime, time.DateOnly, time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05.999999999"}

// parseTime reads "YYYY-MM-DD HH:MM:SS", a date or RFC 3339; zero if none fits.
func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
