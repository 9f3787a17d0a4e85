package sinkhttp

import (
	"net/http"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseRetryAfter checks that any Retry-After a far end sends gives a wait from zero to the
// cap: never negative, never overflowing into a short wait.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "7", "-3", "+5", "soon", "9300000000", "99999999999999999999999",
		now.Add(90 * time.Second).Format(http.TimeFormat), "Sun, 06 Nov 1994 08:49:37 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %s", v, d)
		}
	})
}

// FuzzTruncate checks that a cut error body is bounded and never splits a character.
func FuzzTruncate(f *testing.F) {
	f.Add("abcdefghié", 10)
	f.Add("€€€€€€€€€€", 7)
	f.Add("\x80\x80\x80\x80\x80", 2)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		got := truncate(s, n)
		if len(got) > n+len(truncMark) {
			t.Fatalf("truncate(%q, %d) is %d bytes", s, n, len(got))
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("truncate(%q, %d) = %q", s, n, got)
		}
	})
}
