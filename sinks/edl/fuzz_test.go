package edl

import (
	"strings"
	"testing"
)

// FuzzETagMatch checks the If-None-Match parser (the one piece of client input the list reads
// besides credentials) never panics, and matches only a field naming the tag or "*".
func FuzzETagMatch(f *testing.F) {
	for _, seed := range []string{`"abc"`, `W/"abc"`, `"x", "abc"`, `*`, `"a,b", W/"c"`, ``, `W/`, `"`, `,"abc`} {
		f.Add(seed, `"abc"`)
	}
	f.Fuzz(func(t *testing.T, field, etag string) {
		if etagMatch(field, etag) && strings.TrimSpace(field) != "*" && !strings.Contains(field, strings.TrimPrefix(etag, "W/")) {
			t.Fatalf("%q matched %q", field, etag)
		}
	})
}
