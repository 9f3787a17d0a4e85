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
