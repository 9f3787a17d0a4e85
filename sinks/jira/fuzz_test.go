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
