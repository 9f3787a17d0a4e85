package virustotal

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// FuzzDecode checks the response decoder never panics, and that whatever it accepts is a
// well-formed Result. The seed corpus in testdata/fuzz/FuzzDecode holds the fixtures.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"data":{"attributes":{"asn":1e300,"reputation":-1e308,"tags":[null,7,"X Y"],"last_analysis_stats":{"malicious":1e9,"suspicious":-4}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := decode(body)
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
		if res.ASNumber < 0 || res.ASNumber > math.MaxUint32 {
			t.Fatalf("AS number %d", res.ASNumber)
		}
		if len(res.Tags) > maxTags || !slices.IsSorted(res.Tags) || len(slices.Compact(slices.Clone(res.Tags))) != len(res.Tags) {
			t.Fatalf("tags not sorted, unique and at most %d: %q", maxTags, res.Tags)
		}
		for _, tag := range res.Tags {
			if tag == "" || tag != strings.ToLower(tag) || strings.ContainsAny(tag, " \n\t") {
				t.Fatalf("bad tag %q", tag)
			}
		}
		if strings.ContainsAny(res.Detail+res.ASOrganization, "\r\n\t") || !strings.HasPrefix(res.Detail, "VirusTotal: ") {
			t.Fatalf("bad detail %q or AS organization %q", res.Detail, res.ASOrganization)
		}
		if len(res.CountryISO) != 0 && (len(res.CountryISO) != 2 || res.CountryISO != strings.ToUpper(res.CountryISO)) {
			t.Fatalf("bad country %q", res.CountryISO)
		}
	})
}
