package view

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// DefaultLimit is the page size when a request names none.
const DefaultLimit = 50

// maxSince bounds a time window: ten years.
const maxSince = 3660 * 24 * time.Hour

// maxOffset bounds how deep a page may start.
const maxOffset = 1_000_000

// Filter selects and pages indicators. The zero value selects everything, first page.
type Filter struct {
	// Severity keeps indicators of any of these severities (info, low, medium, high, critical).
	Severity []string
	// Tag keeps indicators carrying this tag (case-insensitive).
	Tag string
	// Country keeps indicators located in this ISO 3166-1 alpha-2 country.
	Country string
	// ISP keeps indicators whose ISP contains this text (case-insensitive).
	ISP string
	// Since keeps indicators last seen within this long; 0 keeps all.
	Since time.Duration
	// Query keeps addresses starting with this text (185.220., 2001:db8:), or inside this CIDR
	// (185.220.0.0/16).
	Query string
	// Limit (1-500, default 50) and Offset page the result.
	Limit, Offset int
}

// ParamError names the query parameter a request got wrong.
type ParamError struct {
	Param string
	Msg   string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }

// Severities lists the severities, lowest first.
var Severities = []string{"info", "low", "medium", "high", "critical"}

// Windows are the time windows the ranked page offers, with their query values.
var Windows = []struct{ Value, Label string }{
	{"15m", "15 minutes"}, {"1h", "1 hour"}, {"24h", "24 hours"}, {"7d", "7 days"}, {"all", "all"},
}

// ParseFilter reads a filter from query parameters: severity (repeated or comma-separated),
// tag, country, isp, since, q, limit and offset. Empty values are unset. An unknown parameter or a
// bad value is a *ParamError naming it.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for name := range q {
		switch name {
		case "severity", "tag", "country", "isp", "since", "q", "limit", "offset":
		case "": // "?=" or "&&=": nothing to name, nothing to apply
		default:
			return Filter{}, &ParamError{name, "unknown parameter (known: severity, tag, country, isp, since, q, limit, offset)"}
		}
	}
	for _, v := range q["severity"] {
		for _, s := range strings.Split(v, ",") {
			s = strings.ToLower(strings.TrimSpace(s))
			if s == "" {
				continue
			}
			if !slices.Contains(Severities, s) {
				return Filter{}, &ParamError{"severity", fmt.Sprintf("%q is not one of info, low, medium, high, critical", clip(s, maxQuoted, "…"))}
			}
			if !slices.Contains(f.Severity, s) {
				f.Severity = append(f.Severity, s)
			}
		}
	}
	slices.SortFunc(f.Severity, func(a, b string) int { return slices.Index(Severities, a) - slices.Index(Severities, b) })
	var err error
	if f.Tag, err = textParam(q, "tag", 64); err != nil {
		return Filter{}, err
	}
	if f.ISP, err = textParam(q, "isp", 128); err != nil {
		return Filter{}, err
	}
	if c, err := single(q, "country"); err != nil {
		return Filter{}, err
	} else if c != "" {
		if len(c) != 2 || !isASCIILetter(c[0]) || !isASCIILetter(c[1]) {
			return Filter{}, &ParamError{"country", fmt.Sprintf("%q is not a two-letter country code", clip(c, maxQuoted, "…"))}
		}
		f.Country = strings.ToUpper(c)
	}
	if s, err := single(q, "since"); err != nil {
		return Filter{}, err
	} else if f.Since, err = ParseSince(s); err != nil {
		return Filter{}, &ParamError{"since", err.Error()}
	}
	if s, err := single(q, "q"); err != nil {
		return Filter{}, err
	} else if f.Query, err = parseQuery(s); err != nil {
		return Filter{}, &ParamError{"q", err.Error()}
	}
	if f.Limit, err = intParam(q, "limit", DefaultLimit, 1, MaxLimit); err != nil {
		return Filter{}, err
	}
	if f.Offset, err = intParam(q, "offset", 0, 0, maxOffset); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// ParseSince reads a time window: a Go duration (90s, 15m, 1h30m), a number of days (7d), or
// "all" (or empty) for no window.
func ParseSince(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return 0, nil
	}
	if len(s) > 32 {
		return 0, fmt.Errorf("%q is not a duration such as 15m, 24h or 7d", clip(s, maxQuoted, "…"))
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 3660 || strings.HasPrefix(days, "+") {
			return 0, fmt.Errorf("%q is not a number of days 1-3660", clip(s, maxQuoted, "…"))
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 15m, 24h or 7d", clip(s, maxQuoted, "…"))
		}
	}
	if d <= 0 || d > maxSince {
		return 0, fmt.Errorf("%q is not between 1ns and 3660d", clip(s, maxQuoted, "…"))
	}
	return d, nil
}

// parseQuery checks an address search: a CIDR, or the start of an address (digits, hex letters,
// dots and colons).
func parseQuery(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", nil
	}
	if len(s) > 64 {
		return "", fmt.Errorf("longer than 64 characters")
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r == '.' || r == ':' || r == '/') {
			return "", fmt.Errorf("%q is not an address, address prefix or CIDR", clip(s, maxQuoted, "…"))
		}
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", fmt.Errorf("%q is not a valid CIDR", clip(s, maxQuoted, "…"))
		}
		return p.Masked().String(), nil
	}
	return s, nil
}

func single(q url.Values, name string) (string, error) {
	vs := q[name]
	if len(vs) > 1 {
		return "", &ParamError{name, "given more than once"}
	}
	if len(vs) == 0 {
		return "", nil
	}
	return strings.TrimSpace(vs[0]), nil
}

func textParam(q url.Values, name string, maxLen int) (string, error) {
	v, err := single(q, name)
	if err != nil {
		return "", err
	}
	if len(v) > maxLen {
		return "", &ParamError{name, fmt.Sprintf("longer than %d bytes", maxLen)}
	}
	for _, r := range v {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return "", &ParamError{name, "holds control characters or invalid UTF-8"}
		}
	}
	return v, nil
}

func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v, err := single(q, name)
	if err != nil || v == "" {
		return def, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &ParamError{name, fmt.Sprintf("%q is not a whole number %d-%d", clip(v, maxQuoted, "…"), lo, hi)}
	}
	return n, nil
}

func isASCIILetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

// maxQuoted bounds user input quoted in an error message.
const maxQuoted = 40

// clip cuts s to n bytes on a rune boundary and appends more when it cut anything: "…" for user
// input quoted in an error message (n maxQuoted), nothing for the fields the view keeps of an
// event (n maxFieldBytes).
func clip(s string, n int, more string) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + more
}

// Values encodes the filter as query parameters, the inverse of ParseFilter (defaults omitted).
func (f Filter) Values() url.Values {
	v := url.Values{}
	for _, s := range f.Severity {
		v.Add("severity", s)
	}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("tag", f.Tag)
	set("country", f.Country)
	set("isp", f.ISP)
	if f.Since > 0 {
		set("since", FormatSince(f.Since))
	}
	set("q", f.Query)
	if f.Limit > 0 && f.Limit != DefaultLimit {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Offset > 0 {
		v.Set("offset", strconv.Itoa(f.Offset))
	}
	return v
}

// ExportURL is the CSV export (ExportPath) of what the filter selects: its filters without the
// page's limit and offset, so the export holds every match up to MaxExportLimit.
func (f Filter) ExportURL() string {
	f.Limit, f.Offset = 0, 0
	return (&url.URL{Path: ExportPath, RawQuery: f.Values().Encode()}).String()
}

// FormatSince writes a window the way ParseSince reads it back (several whole days as 7d).
func FormatSince(d time.Duration) string {
	if d > 24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func (f Filter) withDefaults() Filter {
	if f.Limit <= 0 {
		f.Limit = DefaultLimit
	}
	f.Limit = min(f.Limit, MaxLimit)
	f.Offset = min(max(f.Offset, 0), maxOffset)
	return f
}

// filtered reports whether the filter selects anything less than everything.
func (f Filter) filtered() bool {
	return len(f.Severity) > 0 || f.Tag != "" || f.Country != "" || f.ISP != "" || f.Since > 0 || f.Query != ""
}

// Match reports whether r passes the filter at time now (paging aside).
func (f Filter) Match(r Row, now time.Time) bool {
	if len(f.Severity) > 0 && !slices.Contains(f.Severity, string(r.Severity)) {
		return false
	}
	if f.Tag != "" && !slices.ContainsFunc(r.Tags, func(t string) bool { return strings.EqualFold(t, f.Tag) }) {
		return false
	}
	if f.Country != "" && !strings.EqualFold(r.Country, f.Country) {
		return false
	}
	if f.ISP != "" && !strings.Contains(strings.ToLower(r.ISP), strings.ToLower(f.ISP)) {
		return false
	}
	if f.Since > 0 && now.Sub(r.LastSeen) > f.Since {
		return false
	}
	if f.Query != "" && !matchQuery(f.Query, r.IP) {
		return false
	}
	return true
}

func matchQuery(q, ip string) bool {
	if strings.Contains(q, "/") {
		p, err := netip.ParsePrefix(q)
		if err != nil {
			return false
		}
		a, err := netip.ParseAddr(ip)
		return err == nil && p.Contains(a)
	}
	return strings.HasPrefix(ip, q)
}
