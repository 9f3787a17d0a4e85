package abuseipdb

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// checkBody is the part of a GET /api/v2/check answer that is normalised. Nullable fields
// (countryCode, usageType, isp, domain, lastReportedAt) decode to "" when null; isWhitelisted
// is null when AbuseIPDB did not look the address up in its whitelist, and totalReports is a
// pointer so that a missing count can be told from zero.
type checkBody struct {
	Data *checkData `json:"data"`
}

type checkData struct {
	IsWhitelisted        *bool    `json:"isWhitelisted"`
	AbuseConfidenceScore float64  `json:"abuseConfidenceScore"`
	CountryCode          string   `json:"countryCode"`
	UsageType            string   `json:"usageType"`
	ISP                  string   `json:"isp"`
	IsTor                bool     `json:"isTor"`
	TotalReports         *float64 `json:"totalReports"`
	NumDistinctUsers     float64  `json:"numDistinctUsers"`
	LastReportedAt       string   `json:"lastReportedAt"`
}

// usageTags maps AbuseIPDB's usageType values to tags; the other types earn none.
var usageTags = map[string]string{
	"Data Center/Web Hosting/Transit": "hosting",
	"Content Delivery Network":        "cdn",
	"Search Engine Spider":            "crawler",
}

// malformedError says why a 2xx body is not an answer; the client turns it into a transient
// "malformed response" error.
type malformedError struct {
	what string
	err  error
}

func (e *malformedError) Error() string {
	if e.err != nil {
		return e.what + ": " + e.err.Error()
	}
	return e.what
}

func (e *malformedError) Unwrap() error { return e.err }

// malformed is the client's error for a body decode rejected.
func malformed(hc *providerhttp.Client, err error) error {
	var me *malformedError
	if errors.As(err, &me) {
		return hc.Malformed(me.err, "%s", me.what)
	}
	return hc.Malformed(err, "unreadable body")
}

// decode turns a 2xx body of GET /api/v2/check into a Result; maxAgeDays is the maxAgeInDays
// the request sent (it only appears in the detail). A body that is not JSON, or has no "data"
// object, is a *malformedError. Values of the wrong JSON type are ignored field by field.
//
// Normalisation (the scoring contract, quoted by docs/scoring.md), first rule that holds:
//
//   - isWhitelisted is true: benign, Score 0 (reports against a whitelisted address are noise);
//   - totalReports is 0: unrated, Score 0 (AbuseIPDB answered, but holds no opinion). A body
//     without totalReports counts as unreported only when abuseConfidenceScore is 0 too;
//   - abuseConfidenceScore (rounded, clamped to 0-100) >= 75: malicious; >= 25: suspicious;
//     else benign. Score is the confidence.
//
// Tags, sorted: "tor" when isTor; "hosting" for usageType "Data Center/Web Hosting/Transit",
// "cdn" for "Content Delivery Network", "crawler" for "Search Engine Spider". CountryISO is
// countryCode upper-cased (dropped unless two letters); ISP is isp (cleaned, 256 runes).
//
// Detail, one line, parts absent from the answer left out:
//
//	AbuseIPDB: confidence 92%, 37 reports from 12 users, last 2024-05-01; Data Center/Web Hosting/Transit
//	AbuseIPDB: no reports in 90 days; Fixed Line ISP
//	AbuseIPDB: whitelisted, 120 reports from 40 users, last 2024-04-30; Content Delivery Network
//
// ("1 report from 1 user" in the singular; the date is lastReportedAt's, in UTC.)
//
// LastSeen, the evidence's date (old reports decay in the fused score), is lastReportedAt when
// the address was reported and the time is sane: RFC 3339 (or the same without a zone, read as
// UTC), from 2000 on and at most a day in the future; nil otherwise.
func decode(body []byte, maxAgeDays int) (*enrich.Result, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &malformedError{what: "empty body"}
	}
	var b checkBody
	if err := unmarshal(body, &b); err != nil {
		return nil, &malformedError{what: "not JSON", err: err}
	}
	if b.Data == nil {
		return nil, &malformedError{what: "no data object"}
	}
	return normalise(b.Data, maxAgeDays), nil
}

// facts are the answer's values, clamped.
type facts struct {
	confidence  int
	reports     int64 // -1: not in the answer
	users       int64
	whitelisted bool
	lastAt      *time.Time // lastReportedAt, when present and sane
	last        string     // lastAt as YYYY-MM-DD, or ""
	usage       string
}

// reportLayouts are the spellings of lastReportedAt read: RFC 3339 as documented, and the same
// without a zone (read as UTC) or with a space for the T.
var reportLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"}

// parseReported reads lastReportedAt; nil when it is absent, unreadable or not sane (before
// 2000, or more than a day in the future).
func parseReported(s string) *time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	for _, l := range reportLayouts {
		if t, err := time.Parse(l, s); err == nil {
			t = t.UTC()
			if t.Year() < 2000 || t.After(time.Now().Add(24*time.Hour)) {
				return nil
			}
			return &t
		}
	}
	return nil
}

func factsOf(d *checkData) facts {
	f := facts{confidence: int(clamp(d.AbuseConfidenceScore, 0, 100)), reports: -1,
		users: int64(clamp(d.NumDistinctUsers, 0, math.MaxInt32)), whitelisted: d.IsWhitelisted != nil && *d.IsWhitelisted,
		usage: providerhttp.Clean(d.UsageType, 64)}
	if d.TotalReports != nil {
		f.reports = int64(clamp(*d.TotalReports, 0, math.MaxInt32))
	}
	if f.lastAt = parseReported(d.LastReportedAt); f.lastAt != nil {
		f.last = f.lastAt.Format(time.DateOnly)
	}
	return f
}

// clamp rounds v into lo..hi.
func clamp(v, lo, hi float64) float64 { return min(max(math.Round(v), lo), hi) }

func normalise(d *checkData, maxAgeDays int) *enrich.Result {
	f := factsOf(d)
	res := &enrich.Result{
		CountryISO: providerhttp.CountryISO(d.CountryCode),
		ISP:        providerhttp.Clean(d.ISP, 256),
	}
	reported := f.reports > 0 || (f.reports < 0 && f.confidence > 0)
	switch {
	case f.whitelisted:
		res.Verdict = enrich.VerdictBenign
	case !reported:
		res.Verdict = event.VerdictUnrated
	case f.confidence >= 75:
		res.Verdict, res.Score = enrich.VerdictMalicious, f.confidence
	case f.confidence >= 25:
		res.Verdict, res.Score = enrich.VerdictSuspicious, f.confidence
	default:
		res.Verdict, res.Score = enrich.VerdictBenign, f.confidence
	}
	if d.IsTor {
		res.Tags = append(res.Tags, "tor")
	}
	if t, ok := usageTags[strings.TrimSpace(d.UsageType)]; ok {
		res.Tags = append(res.Tags, t)
	}
	slices.Sort(res.Tags)
	res.Tags = slices.Compact(res.Tags)
	if reported {
		res.LastSeen = f.lastAt
	}
	res.Detail = detail(f, reported, maxAgeDays)
	return res
}

func detail(f facts, reported bool, maxAgeDays int) string {
	var b strings.Builder
	b.WriteString("AbuseIPDB: ")
	switch {
	case f.whitelisted:
		b.WriteString("whitelisted")
	case !reported && maxAgeDays > 0:
		fmt.Fprintf(&b, "no reports in %d days", maxAgeDays)
	case !reported:
		b.WriteString("no reports")
	default:
		fmt.Fprintf(&b, "confidence %d%%", f.confidence)
	}
	if f.reports > 0 {
		fmt.Fprintf(&b, ", %s", plural(f.reports, "report"))
		if f.users > 0 {
			fmt.Fprintf(&b, " from %s", plural(f.users, "user"))
		}
	}
	if f.last != "" && reported {
		b.WriteString(", last " + f.last)
	}
	if f.usage != "" {
		b.WriteString("; " + f.usage)
	}
	return b.String()
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
