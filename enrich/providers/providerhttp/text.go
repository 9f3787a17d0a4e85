package providerhttp

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/enrich"
)

// Clean makes provider text safe for one log line: control characters become spaces, runs of
// space collapse, and the result is cut to maxRunes runes (the last one an ellipsis).
func Clean(s string, maxRunes int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if utf8.RuneCountInString(s) > maxRunes {
		r := []rune(s)
		s = string(r[:maxRunes-1]) + "…"
	}
	return s
}

// CountryISO upper-cases a two-letter country code; anything else is dropped.
func CountryISO(s string) string {
	s = strings.TrimSpace(s)
	if len(s) != 2 {
		return ""
	}
	for i := 0; i < 2; i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return ""
		}
	}
	return strings.ToUpper(s)
}

// Tag normalises a vendor's label into a threatpipe tag: lower case, spaces to underscores,
// only letters, digits and _ - . kept; "" when nothing usable is left or it is over 64 bytes.
func Tag(t string) string {
	t = strings.ToLower(strings.Join(strings.Fields(t), " "))
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

// QuotaHeaders reads X-RateLimit-Limit / -Remaining / -Reset (AbuseIPDB sends them; others
// may); nil unless Remaining is present. Reset may be Unix seconds (or milliseconds), seconds
// from now, an HTTP date or RFC 3339.
func QuotaHeaders(h http.Header, now time.Time) *enrich.QuotaReport {
	rem, ok := headerInt(h.Get("X-RateLimit-Remaining"))
	if !ok {
		return nil
	}
	lim, _ := headerInt(h.Get("X-RateLimit-Limit"))
	return &enrich.QuotaReport{Limit: lim, Remaining: rem, Reset: ParseReset(h.Get("X-RateLimit-Reset"), now)}
}

func headerInt(v string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// ParseReset reads a reset time: Unix seconds or milliseconds, seconds from now, an HTTP date
// or RFC 3339; zero when unreadable.
func ParseReset(v string, now time.Time) time.Time {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < 1e15 {
		switch {
		case f >= 1e12:
			return time.UnixMilli(int64(f)).UTC()
		case f >= 1e9:
			return time.Unix(int64(f), 0).UTC()
		default:
			return now.Add(time.Duration(f * float64(time.Second))).UTC()
		}
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.UTC()
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC()
	}
	return time.Time{}
}
