package sinkhttp

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	const (
		token = "ATATT3xFfGF0-t0ken"
		cred  = "c29jQGV4YW1wbGUuY29tOkFUQVRUM3g="
	)
	for _, tt := range []struct {
		name, in string
		secrets  []string
		want     string
	}{
		{"none", "bad request", []string{token}, "bad request"},
		{"whole", "bad token " + token + " and " + token, []string{token}, "bad token [redacted] and [redacted]"},
		{"several", "Basic " + cred + " / " + token, []string{token, cred}, "Basic [redacted] / [redacted]"},
		{"cut by truncation", "xxxx " + token[:9] + "...", []string{token}, "xxxx [redacted]..."},
		{"cut, the longest tail wins", "x wxyzefgh...", []string{"efgh" + strings.Repeat("q", 20), "wxyzefgh99"}, "x [redacted]..."},
		{"cut at four bytes", "x ATAT...", []string{token}, "x [redacted]..."},
		{"three bytes are ordinary text", "x ATA...", []string{token}, "x ATA..."},
		{"whole then cut", token + " " + token[:6] + "...", []string{token}, "[redacted] [redacted]..."},
		{"not cut: a prefix at the end stays", "see ATATT3", []string{token}, "see ATATT3"},
		{"empty secret ignored", "text", []string{"", token}, "text"},
		{"no secrets", "text...", nil, "text..."},
		{"one secret holds another", "k=abcdef", []string{"abcd", "abcdef"}, "k=[redacted]"},
		{"short secret still replaced", "pw abc", []string{"abc"}, "pw [redacted]"},
	} {
		if got := Redact(tt.in, tt.secrets...); got != tt.want {
			t.Errorf("%s: Redact(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

// A secret straddling the 300-byte cut of an error body never shows, in whole or in part.
func TestRedactAfterTruncate(t *testing.T) {
	const secret = "s3cret-0123456789abcdef"
	for pad := 270; pad <= 300; pad++ {
		body := truncate(strings.Repeat("x", pad)+secret+" tail", maxErrorBody)
		got := Redact(body, secret)
		if strings.Contains(got, secret[:minCutSecret]) {
			t.Fatalf("pad %d: %q", pad, got)
		}
	}
}
