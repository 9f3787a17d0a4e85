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

func TestURLSecrets(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"https://hooks.slack.com/services/T0/B0/s3cret", []string{"/services/T0/B0/s3cret"}},
		{"https://rx.example/hook?token=abc", []string{"/hook", "token=abc"}},
		{"https://rx.example/a%2Fb?t=a%2Bb", []string{"/a%2Fb", "/a/b", "t=a%2Bb", "t=a+b"}},
		{"https://rx.example/?token=abc", []string{"token=abc"}},
		{"https://rx.example", nil},
		{"https://rx.example/", nil},
		{"://bad", nil},
	} {
		got := URLSecrets(tt.in)
		if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
			t.Errorf("URLSecrets(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
