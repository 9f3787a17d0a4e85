package pagerduty

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// FuzzDecodeAccepted checks the success decoder on arbitrary bodies: no panic, and an accepted
// answer always says "success" and carries a usable key. Seeds: testdata/fuzz/FuzzDecodeAccepted.
func FuzzDecodeAccepted(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		key, err := decodeAccepted(body)
		if err != nil {
			if key != "" {
				t.Fatal("key with an error")
			}
			if len(err.Error()) > 300 || !utf8.ValidString(err.Error()) {
				t.Fatalf("error %q", err)
			}
			return
		}
		var a accepted
		if json.Unmarshal(body, &a) != nil || a.Status != "success" || len(key) > maxDedupKey || !utf8.ValidString(key) {
			t.Fatalf("accepted %q with key %q", body, key)
		}
	})
}

// FuzzDescribeError checks the error-body decoder: no panic, one bounded line for the API's
// JSON, the body untouched otherwise. Seeds: testdata/fuzz/FuzzDescribeError.
func FuzzDescribeError(f *testing.F) {
	f.Fuzz(func(t *testing.T, body string) {
		got := describeError(body)
		if got == body {
			return
		}
		if utf8.RuneCountInString(got) > 300 || strings.ContainsAny(got, "\r\n") || !utf8.ValidString(got) {
			t.Fatalf("describeError(%q) = %q", body, got)
		}
		if r := sinkhttp.Redact(got, testKey); strings.Contains(r, testKey) {
			t.Fatalf("Redact left the key in %q", r)
		}
	})
}
