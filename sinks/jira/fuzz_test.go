package jira

import (
	"testing"
)

// FuzzDecodeCreated checks the create-response decoder never panics and only returns
// references that are safe to put in a URL path. Seeds: testdata/fuzz/FuzzDecodeCreated holds
// the fixtures.
func FuzzDecodeCreated(f *testing.F) {
	f.Add([]byte(`{"id":"10000","key":"ED-24"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ref, err := decodeCreated(body)
		if err != nil {
			if ref != "" {
				t.Fatalf("reference %q with an error", ref)
			}
			return
		}
		if !issueKeyRE.MatchString(ref) && !issueIDRE.MatchString(ref) {
			t.Fatalf("accepted reference %q", ref)
		}
	})
}

// FuzzDecodeSearch checks the search-response decoder never panics, finds only with a
// reference, and only returns references that are safe to put in a URL path. Seeds:
// testdata/fuzz/FuzzDecodeSearch holds the fixtures.
func FuzzDecodeSearch(f *testing.F) {
	f.Add([]byte(`{"issues":[{"id":"10068","key":"SOC-24"}],"isLast":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ref, found, err := decodeSearch(body)
		switch {
		case err != nil || !found:
			if ref != "" || (err != nil && found) {
				t.Fatalf("reference %q, found %v, error %v", ref, found, err)
			}
		case !issueKeyRE.MatchString(ref) && !issueIDRE.MatchString(ref):
			t.Fatalf("accepted reference %q", ref)
		}
	})
}
