package otx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Pulse scoring: 30 points plus 10 a pulse, at most 90; three pulses or more is malicious.
const (
	pulseBase       = 30
	pulseStep       = 10
	pulseMaxScore   = 90
	maliciousPulses = 3
)

// Detail limits and the validation sources that vouch for an address.
const (
	maxDetailPulses     = 3
	maxDetailFamilies   = 3
	sourceWhitelist     = "whitelist"
	sourceFalsePositive = "false_positive"
)

// general is the part of GET /api/v1/indicators/{IPv4|IPv6}/{ip}/general that is kept.
// base_indicator ({} for unknown addresses), geo details, sections and the rest are not read.
type general struct {
	Indicator    *string      `json:"indicator"`
	PulseInfo    *pulseInfo   `json:"pulse_info"`
	Validation   []validation `json:"validation"`
	ASN          string       `json:"asn"`
	City         string       `json:"city"`
	CountryCode  string       `json:"country_code"`
	CountryCode2 string       `json:"country_code2"`
	Latitude     *float64     `json:"latitude"`
	Longitude    *float64     `json:"longitude"`
}

type pulseInfo struct {
	Count   *int64  `json:"count"`
	Pulses  []pulse `json:"pulses"`
	Related struct {
		AlienVault related `json:"alienvault"`
		Other      related `json:"other"`
	} `json:"related"`
}

type related struct {
	MalwareFamilies []family `json:"malware_families"`
}

type pulse struct {
	Name            string   `json:"name"`
	Modified        string   `json:"modified"`
	MalwareFamilies []family `json:"malware_families"`
}

type validation struct {
	Source  string `json:"source"`
	Message string `json:"message"`
	Name    string `json:"name"`
}

// family is a malware family: a string in pulse_info.related, an object
// {"id", "display_name", "target"} in pulses. Anything else is empty, never an error.
type family string

func (f *family) UnmarshalJSON(b []byte) error {
	*f = ""
	var s string
	if json.Unmarshal(b, &s) == nil {
		*f = family(s)
		return nil
	}
	var o struct {
		DisplayName string `json:"display_name"`
		ID          string `json:"id"`
	}
	if unmarshalLenient(b, &o) == nil {
		*f = family(or(o.DisplayName, o.ID))
	}
	return nil
}

// malformedError is a 2xx body that is not OTX's answer.
type malformedError struct {
	what string
	err  error // the JSON error, if any
}

func (e *malformedError) Error() string {
	if e.err != nil {
		return e.what + ": " + e.err.Error()
	}
	return e.what
}

func (e *malformedError) Unwrap() error { return e.err }

// unmarshalLenient decodes JSON and tolerates values of the wrong type (encoding/json skips
// such a field and fills the rest); only syntax errors fail.
func unmarshalLenient(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return nil
	}
	return err
}

// decodeGeneral turns a 2xx body of the general section into a Result. A body that is not a
// JSON object with indicator or pulse_info is a *malformedError.
//
// Normalisation, with p = pulse_info.count (len(pulse_info.pulses) when count is missing or
// negative):
//   - a validation entry with source "whitelist", or one with source "false_positive" when
//     p == 0: benign, score 0, Service = the entry's name ("Whitelisted IP"; its message, or
//     "OTX whitelist" / "OTX known false positive", when it has none). A whitelist wins over
//     pulses; a false-positive assessment does not;
//   - p == 0: unrated, score 0 (OTX knows every address; no pulse is no opinion);
//   - p >= 1: score min(90, 30 + 10·p); malicious from 3 pulses, suspicious below.
//
// Context: ASNumber and ASOrganization from asn ("AS15169 google llc"), CountryISO from
// country_code (country_code2 when absent), City, and Location from latitude/longitude when
// both are present, in range and not 0,0. No tags: pulse tags are free text chosen by each
// author and too noisy to fuse. The detail names at most 3 pulses and 3 malware families, e.g.
// "OTX: in 4 pulses (Mirai botnet C2, SSH brute force, Telnet scanners, +1 more); malware
// Mirai; AS64496 sim-transit-as (DE)".
//
// LastSeen, the evidence's date (old pulses decay in the fused score), is the newest
// pulses[].modified when p >= 1: OTX's "2024-05-01T12:34:56.789000" without a zone, read as UTC
// (RFC 3339 and a date alone are read too), from 2000 on and at most a day in the future;
// unreadable or insane dates are skipped, and no readable one leaves LastSeen nil.
func decodeGeneral(body []byte) (*enrich.Result, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &malformedError{what: "empty body"}
	}
	var g general
	if err := unmarshalLenient(body, &g); err != nil {
		return nil, &malformedError{what: "not JSON", err: err}
	}
	if g.Indicator == nil && g.PulseInfo == nil {
		return nil, &malformedError{what: "no indicator or pulse_info"}
	}
	return normalise(&g), nil
}

func normalise(g *general) *enrich.Result {
	var info pulseInfo
	if g.PulseInfo != nil {
		info = *g.PulseInfo
	}
	p := int64(len(info.Pulses))
	if info.Count != nil && *info.Count >= 0 {
		p = *info.Count
	}
	res := &enrich.Result{}
	setNetwork(res, g)
	v, whitelist, ok := benignValidation(g.Validation)
	switch {
	case ok && (whitelist || p == 0):
		res.Verdict, res.Service = enrich.VerdictBenign, v
	case p == 0:
		res.Verdict = event.VerdictUnrated
	default:
		// p is capped before multiplying: a hostile count must not overflow.
		res.Score = min(pulseMaxScore, pulseBase+pulseStep*int(min(p, pulseMaxScore/pulseStep)))
		res.Verdict = enrich.VerdictSuspicious
		if p >= maliciousPulses {
			res.Verdict = enrich.VerdictMalicious
		}
	}
	if p > 0 {
		res.LastSeen = newestModified(info.Pulses)
	}
	res.Detail = detail(res, &info, p, whitelist)
	return res
}

// modifiedLayouts are the spellings of a pulse's modified read (no zone: UTC).
var modifiedLayouts = []string{"2006-01-02T15:04:05.999999999", time.RFC3339Nano, "2006-01-02 15:04:05.999999999", time.DateOnly}

// newestModified is the latest sane modified time of the pulses, nil when none has one.
func newestModified(pulses []pulse) *time.Time {
	var newest *time.Time
	limit := time.Now().Add(24 * time.Hour)
	for _, pl := range pulses {
		s := strings.TrimSpace(pl.Modified)
		if s == "" {
			continue
		}
		for _, l := range modifiedLayouts {
			t, err := time.Parse(l, s)
			if err != nil {
				continue
			}
			if t = t.UTC(); t.Year() >= 2000 && !t.After(limit) && (newest == nil || t.After(*newest)) {
				newest = &t
			}
			break
		}
	}
	return newest
}

// benignValidation is the name of the validation entry that vouches for the address, a
// whitelist entry before a false-positive one.
func benignValidation(vs []validation) (name string, whitelist, ok bool) {
	for _, want := range []string{sourceWhitelist, sourceFalsePositive} {
		for _, v := range vs {
			if !strings.EqualFold(strings.TrimSpace(v.Source), want) {
				continue
			}
			fallback := "OTX whitelist"
			if want == sourceFalsePositive {
				fallback = "OTX known false positive"
			}
			name := or(providerhttp.Clean(v.Name, 128), or(providerhttp.Clean(v.Message, 128), fallback))
			return name, want == sourceWhitelist, true
		}
	}
	return "", false, false
}

func setNetwork(res *enrich.Result, g *general) {
	res.ASNumber, res.ASOrganization = parseASN(g.ASN)
	res.CountryISO = providerhttp.CountryISO(g.CountryCode)
	if res.CountryISO == "" {
		res.CountryISO = providerhttp.CountryISO(g.CountryCode2)
	}
	res.City = providerhttp.Clean(g.City, 256)
	if g.Latitude != nil && g.Longitude != nil {
		lat, lon := *g.Latitude, *g.Longitude
		if math.Abs(lat) <= 90 && math.Abs(lon) <= 180 && (lat != 0 || lon != 0) {
			res.Location = &enrich.Geo{Lat: lat, Lon: lon}
		}
	}
}

// parseASN splits OTX's "AS15169 google llc" into the number and the name. A string that does
// not start with AS and digits is all name; "AS0 ..." is neither.
func parseASN(s string) (int64, string) {
	s = providerhttp.Clean(s, 256)
	if len(s) < 3 || !strings.EqualFold(s[:2], "AS") {
		return 0, s
	}
	end := 2
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(s[2:end], 10, 64)
	switch {
	case err != nil || n > math.MaxUint32 || (end < len(s) && s[end] != ' '):
		return 0, s
	case n == 0:
		return 0, "" // AS0: no AS is announcing it; what follows is not a name
	}
	return n, strings.TrimSpace(s[end:])
}

func detail(res *enrich.Result, info *pulseInfo, p int64, whitelist bool) string {
	var b strings.Builder
	b.WriteString("OTX: ")
	if res.Verdict == enrich.VerdictBenign {
		if whitelist {
			fmt.Fprintf(&b, "whitelisted as %q, ", res.Service)
		} else {
			fmt.Fprintf(&b, "known false positive %q, ", res.Service)
		}
	}
	switch p {
	case 0:
		b.WriteString("in no pulses")
	case 1:
		b.WriteString("in 1 pulse")
	default:
		fmt.Fprintf(&b, "in %d pulses", p)
	}
	var names []string
	for _, pl := range info.Pulses {
		names = appendUnique(names, providerhttp.Clean(pl.Name, 60))
		if len(names) == maxDetailPulses {
			break
		}
	}
	if len(names) > 0 {
		if more := p - int64(len(names)); more > 0 {
			names = append(names, fmt.Sprintf("+%d more", more))
		}
		b.WriteString(" (" + strings.Join(names, ", ") + ")")
	}
	if fams := families(info); len(fams) > 0 {
		b.WriteString("; malware " + strings.Join(fams, ", "))
	}
	if n := network(res); n != "" {
		b.WriteString("; " + n)
	}
	return b.String()
}

// families lists up to 3 malware families, from pulse_info.related and the pulses.
func families(info *pulseInfo) []string {
	lists := [][]family{info.Related.AlienVault.MalwareFamilies, info.Related.Other.MalwareFamilies}
	for _, pl := range info.Pulses {
		lists = append(lists, pl.MalwareFamilies)
	}
	var out []string
	for _, l := range lists {
		for _, f := range l {
			if out = appendUnique(out, providerhttp.Clean(string(f), 64)); len(out) == maxDetailFamilies {
				return out
			}
		}
	}
	return out
}

// appendUnique appends s unless it is empty or already there (in any case).
func appendUnique(list []string, s string) []string {
	if s == "" {
		return list
	}
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return list
		}
	}
	return append(list, s)
}

// network is "AS15169 google llc (US)", or what of it is known.
func network(res *enrich.Result) string {
	var parts []string
	if res.ASNumber > 0 {
		parts = append(parts, "AS"+strconv.FormatInt(res.ASNumber, 10))
	}
	if res.ASOrganization != "" {
		parts = append(parts, res.ASOrganization)
	}
	if res.CountryISO != "" {
		parts = append(parts, "("+res.CountryISO+")")
	}
	return strings.Join(parts, " ")
}

// errorMessage is the message of an OTX error body: Django REST framework's {"detail": ...},
// or an "error" or "message" field. "" when there is none.
func errorMessage(body []byte) string {
	var e struct {
		Detail  string `json:"detail"`
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if unmarshalLenient(body, &e) != nil {
		return ""
	}
	return providerhttp.Clean(or(e.Detail, or(e.Error, e.Message)), providerhttp.MaxMessageRunes)
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
