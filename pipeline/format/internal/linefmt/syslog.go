package linefmt

import (
	"strings"
	"time"
)

// SkipPRI returns s without a leading syslog priority ("<134>").
func SkipPRI(s string) string {
	if len(s) < 3 || s[0] != '<' {
		return s
	}
	for i := 1; i < len(s) && i <= 4; i++ {
		switch c := s[i]; {
		case c == '>' && i > 1:
			return s[i+1:]
		case c < '0' || c > '9':
			return s
		}
	}
	return s
}

// SyslogTime reads the time of a syslog header at the start of header: RFC 5424
// ("<134>1 2026-03-14T09:26:53.003Z host app ...") or RFC 3164 ("<134>Mar 14 09:26:53 host ...",
// which has no year nor zone: the year is ref's, or the one before when that would put the
// line more than a day after ref, and the zone UTC). ok is false when header starts with no
// time that parses.
func SyslogTime(header string, ref time.Time) (t time.Time, ok bool) {
	s := SkipPRI(strings.TrimLeft(header, " "))
	if len(s) > 2 && s[0] >= '1' && s[0] <= '9' && s[1] == ' ' { // RFC 5424 VERSION
		s = s[2:]
	}
	if len(s) >= 10 && isDigits(s[:4]) && s[4] == '-' {
		tok, _, _ := strings.Cut(s, " ")
		t, err := time.Parse(time.RFC3339Nano, tok)
		return t, err == nil
	}
	for _, layout := range [...]string{"Jan _2 2006 15:04:05", "Jan _2 15:04:05"} {
		if len(s) < len(layout) {
			continue
		}
		t, err := time.Parse(layout, s[:len(layout)])
		if err != nil {
			continue
		}
		if t.Year() == 0 {
			ref = ref.UTC()
			t = t.AddDate(ref.Year(), 0, 0)
			if t.Sub(ref) > 24*time.Hour {
				t = t.AddDate(-1, 0, 0)
			}
		}
		return t, true
	}
	return time.Time{}, false
}

// Epoch reads a number of seconds, milliseconds, microseconds or nanoseconds since 1970 (told
// apart by their digits: devices write each), e.g. FortiGate's eventtime, Check Point's time,
// CEF's rt.
func Epoch(s string) (time.Time, bool) {
	if s == "" || len(s) > 19 || !isDigits(s) {
		return time.Time{}, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		n = n*10 + int64(s[i]-'0')
	}
	switch {
	case len(s) >= 18:
		return time.Unix(0, n).UTC(), true
	case len(s) >= 15:
		return time.UnixMicro(n).UTC(), true
	case len(s) >= 12:
		return time.UnixMilli(n).UTC(), true
	default:
		return time.Unix(n, 0).UTC(), true
	}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Truncate cuts s to at most n bytes on a rune boundary, for warnings.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
