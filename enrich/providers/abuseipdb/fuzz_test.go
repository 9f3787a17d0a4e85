package abuseipdb

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// FuzzDecode checks the response decoder never panics, and that whatever it accepts is a
// well-formed Result. The seed corpus in testdata/fuzz/FuzzDecode holds the fixtures.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"data":{"abuseConfidenceScore":1e308,"totalReports":-1,"isWhitelisted":null,"countryCode":"n\u0000"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := decode(body, 90)
		if err != nil {
			var me *malformedError
			if !errors.As(err, &me) || res != nil {
				t.Fatalf("error %T %v (result %+v)", err, err, res)
			}
			return
		}
		switch res.Verdict {
		case enrich.VerdictMalicious, enrich.VerdictSuspicious, enrich.VerdictBenign:
		case event.VerdictUnrated:
			if res.Score != 0 {
				t.Fatalf("unrated with score %d", res.Score)
			}
		default:
			t.Fatalf("invalid verdict %q", res.Verdict)
		}
		if res.Score < 0 || res.Score > 100 {
			t.Fatalf("score %d out of range", res.Score)
		}
		if !slices.IsSorted(res.Tags) || len(slices.Compact(slices.Clone(res.Tags))) != len(res.Tags) {
			t.Fatalf("tags not sorted and unique: %q", res.Tags)
		}
		if strings.ContainsAny(res.Detail+res.ISP, "\r\n\t") || !strings.HasPrefix(res.Detail, "AbuseIPDB: ") {
			t.Fatalf("bad detail %q or ISP %q", res.Detail, res.ISP)
		}
		if len(res.CountryISO) != 0 && (len(res.CountryISO) != 2 || res.CountryISO != strings.ToUpper(res.CountryISO)) {
			t.Fatalf("bad country %q", res.CountryISO)
		}
	})
}
