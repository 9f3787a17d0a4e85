package servicenow

import (
	"testing"
)

// FuzzDecodeResult checks the Table API answer decoder never panics and only returns a
// sys_id that is safe to put in a URL path. Seeds: testdata/fuzz/FuzzDecodeResult holds the
// fixtures.
func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte(`{"result":{"sys_id":"9d385017c611228701d22104cc95c371","number":"INC0010001"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sysID, number, err := decodeResult(body)
		if err != nil {
			if sysID != "" || number != "" {
				t.Fatalf("values %q %q with an error", sysID, number)
			}
			return
		}
		if !sysIDRE.MatchString(sysID) {
			t.Fatalf("accepted sys_id %q", sysID)
		}
		if number != "" && !numberRE.MatchString(number) {
			t.Fatalf("accepted number %q", number)
		}
	})
}

// FuzzDecodeList checks the Table API list decoder never panics, finds only with a sys_id, and
// only returns a sys_id that is safe to put in a URL path. Seeds: testdata/fuzz/FuzzDecodeList
// holds the fixtures.
func FuzzDecodeList(f *testing.F) {
	f.Add([]byte(`{"result":[{"sys_id":"9d385017c611228701d22104cc95c371","number":"INC0010001"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sysID, found, err := decodeList(body)
		switch {
		case err != nil || !found:
			if sysID != "" || (err != nil && found) {
				t.Fatalf("sys_id %q, found %v, error %v", sysID, found, err)
			}
		case !sysIDRE.MatchString(sysID):
			t.Fatalf("accepted sys_id %q", sysID)
		}
	})
}
