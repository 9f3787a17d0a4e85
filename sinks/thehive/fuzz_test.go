package thehive

import (
	"testing"
)

// The decoders of TheHive's answers never panic and only return ids safe to put in a URL
// path. Seeds: testdata/fuzz/Fuzz* hold the fixtures.

func FuzzDecodeAlert(f *testing.F) {
	f.Add([]byte(`{"_id":"~40964176","_type":"Alert"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		id, err := decodeAlert(body)
		if (err == nil) != alertIDRE.MatchString(id) {
			t.Fatalf("id %q, err %v", id, err)
		}
	})
}

func FuzzDecodeAlertList(f *testing.F) {
	f.Add([]byte(`[{"_id":"~40964176"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, err := decodeAlertList(body)
		if err != nil && ids != nil {
			t.Fatalf("ids %q with an error", ids)
		}
		for _, id := range ids {
			if !alertIDRE.MatchString(id) {
				t.Fatalf("accepted id %q", id)
			}
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	f.Add([]byte(`{"type":"CreateError","message":"already exist"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		typ, msg, ok := decodeError(body)
		if !ok && (typ != "" || msg != "") {
			t.Fatalf("values %q %q without ok", typ, msg)
		}
	})
}
