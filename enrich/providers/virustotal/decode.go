package virustotal

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// maxTags bounds the tags kept from one answer.
const maxTags = 16

// ipBody is the part of an IP address object that is normalised. Numbers are float64 so that
// 4.0 or an out-of-range value is clamped rather than rejected; null decodes to zero.
type ipBody struct {
	Data *struct {
		Attributes *attributes `json:"attributes"`
	} `json:"data"`
}

type attributes struct {
	ASN        float64  `json:"asn"`
	ASOwner    string   `json:"as_owner"`
	Country    string   `json:"country"`
	Reputation *float64 `json:"reputation"`
	Tags       []string `json:"tags"`
	// LastAnalysisDate is the Unix time of the analysis the stats are from.
	LastAnalysisDate epoch `json:"last_analysis_date"`
	Stats            struct {
		Harmless   float64 `json:"harmless"`
		Malicious  float64 `json:"malicious"`
		Suspicious float64 `json:"suspicious"`
		Undetected float64 `json:"undetected"`
	} `json:"last_analysis_stats"`
}

// epoch is a Unix time in seconds, sent as a number (or, leniently, a numeric string); anything
// else is zero, never an error.
type epoch float64

func (e *epoch) UnmarshalJSON(b []byte) error {
	*e = 0
	b = bytes.TrimSpace(b)
	if len(b) > 1 && b[0] == '"' && b[len(b)-1] == '"' {
		b = bytes.TrimSpace(b[1 : len(b)-1])
	}
	if f, err := strconv.ParseFloat(string(b), 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		*e = epoch(f)
	}
	return nil
}

// at is e as a time, nil unless it is sane: from 2000 on and at most a day in the future.
func (e epoch) at() *time.Time {
	lo, hi := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Now().Add(24*time.Hour)
	if float64(e) < float64(lo.Unix()) || float64(e) > float64(hi.Unix()) {
		return nil
	}
	t := time.Unix(int64(e), 0).UTC()
	return &t
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

// decode turns a 2xx body of GET /api/v3/ip_addresses/{ip} into a Result. A body that is not
// JSON, or has no data.attributes object, is a *malformedError. Values of the wrong JSON type
// are ignored field by field.
//
// Normalisation (the scoring contract, quoted by docs/scoring.md), with m, s, h and u the
// last_analysis_stats malicious, suspicious, harmless and undetected counts (negative ones read
// as 0) and total = m+s+h+u:
//
//   - Score = round(100 × (1 − 0.75^(m + 0.5·s))), clamped to 0-100: each flagging engine
//     removes a quarter of the remaining doubt, a suspicious one half as much (1 engine 25,
//     3 engines 58, 5 engines 76, 10 engines 94);
//   - verdict, first rule that holds: m >= 3 malicious; m >= 1 or s >= 2 suspicious;
//     total == 0 unrated (no engine has looked at it; Score 0); else benign;
//   - ASNumber = asn when within 1..2^32-1, ASOrganization = as_owner (cleaned, 256 runes),
//     CountryISO = country upper-cased (dropped unless two letters);
//   - Tags = tags through providerhttp.Tag, sorted, deduplicated, at most 16;
//   - LastSeen, the evidence's date (old detections decay in the fused score), is
//     last_analysis_date (Unix seconds, whole) when an engine flags the address (m + s >= 1)
//     and the date is sane: from 2000 on and at most a day in the future; nil otherwise.
//
// Detail, one line, absent parts left out (", N suspicious" when N is 0, the reputation when
// VirusTotal sends none, the network when it is unknown):
//
//	VirusTotal: 4/94 engines malicious, 1 suspicious; reputation -12; AS64501 EXAMPLE-NET (NL)
//	VirusTotal: not analysed by any engine; reputation 0
func decode(body []byte) (*enrich.Result, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &malformedError{what: "empty body"}
	}
	var b ipBody
	if err := unmarshal(body, &b); err != nil {
		return nil, &malformedError{what: "not JSON", err: err}
	}
	if b.Data == nil {
		return nil, &malformedError{what: "no data object"}
	}
	if b.Data.Attributes == nil {
		return nil, &malformedError{what: "no data.attributes object"}
	}
	return normalise(b.Data.Attributes), nil
}

// engines are the analysis counts, clamped.
type engines struct{ m, s, h, u int64 }

func (e engines) total() int64 { return e.m + e.s + e.h + e.u }

// count reads an engine count: rounded, at least 0, at most a million (no more engines exist).
func count(v float64) int64 { return int64(min(max(math.Round(v), 0), 1e6)) }

// score is the score rule of decode's contract.
func (e engines) score() int {
	s := math.Round(100 * (1 - math.Pow(0.75, float64(e.m)+0.5*float64(e.s))))
	return int(min(max(s, 0), 100))
}

func normalise(a *attributes) *enrich.Result {
	e := engines{count(a.Stats.Malicious), count(a.Stats.Suspicious), count(a.Stats.Harmless), count(a.Stats.Undetected)}
	res := &enrich.Result{
		Score:          e.score(),
		ASOrganization: providerhttp.Clean(a.ASOwner, 256),
		CountryISO:     providerhttp.CountryISO(a.Country),
	}
	if a.ASN >= 1 && a.ASN <= math.MaxUint32 && a.ASN == math.Trunc(a.ASN) {
		res.ASNumber = int64(a.ASN)
	}
	switch {
	case e.m >= 3:
		res.Verdict = enrich.VerdictMalicious
	case e.m >= 1 || e.s >= 2:
		res.Verdict = enrich.VerdictSuspicious
	case e.total() == 0:
		res.Verdict, res.Score = event.VerdictUnrated, 0
	default:
		res.Verdict = enrich.VerdictBenign
	}
	res.Tags = tags(a.Tags)
	if e.m+e.s > 0 {
		res.LastSeen = a.LastAnalysisDate.at()
	}
	res.Detail = detail(res, e, a.Reputation)
	return res
}

func tags(in []string) []string {
	var out []string
	for _, t := range in {
		if t = providerhttp.Tag(t); t != "" {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxTags {
		out = out[:maxTags]
	}
	return out
}

func detail(res *enrich.Result, e engines, reputation *float64) string {
	var b strings.Builder
	b.WriteString("VirusTotal: ")
	if e.total() == 0 {
		b.WriteString("not analysed by any engine")
	} else {
		fmt.Fprintf(&b, "%d/%d engines malicious", e.m, e.total())
		if e.s > 0 {
			fmt.Fprintf(&b, ", %d suspicious", e.s)
		}
	}
	if reputation != nil {
		fmt.Fprintf(&b, "; reputation %d", int64(min(max(math.Round(*reputation), -1e9), 1e9)))
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
		b.WriteString("; " + strings.Join(network, " "))
	}
	return b.String()
}
