package criminalip

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/enrich"
)

// FuzzDecodeReport checks the response decoder never panics, and that whatever it accepts is a
// well-formed Result. The seed corpus in testdata/fuzz/FuzzDecodeReport holds the fixtures.
func FuzzDecodeReport(f *testing.F) {
	f.Add([]byte(`{"status":200,"score":{"inbound":4,"outbound":"critical"},"whois":{"data":[{"as_no":"AS1"}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := decodeReport(body)
		if err != nil {
			var pe *enrich.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not *enrich.Error: %v", err, err)
			}
			switch pe.Kind {
			case enrich.KindUnauthorized, enrich.KindQuotaExhausted, enrich.KindRateLimited, enrich.KindTransient, enrich.KindPermanent:
			default:
				t.Fatalf("unknown kind %q", pe.Kind)
			}
			if res != nil {
				t.Fatal("result with an error")
			}
			return
		}
		if res == nil {
			t.Fatal("nil result without an error")
		}
		if res.Score < 0 || res.Score > 100 || res.InboundScore < 0 || res.InboundScore > 100 || res.OutboundScore < 0 || res.OutboundScore > 100 {
			t.Fatalf("score out of range: %+v", res)
		}
		switch res.Verdict {
		case enrich.VerdictMalicious, enrich.VerdictSuspicious, enrich.VerdictBenign:
		case enrich.VerdictNotFound:
			if res.Score != 0 {
				t.Fatalf("not found with score %d", res.Score)
			}
		default:
			t.Fatalf("invalid verdict %q", res.Verdict)
		}
		if res.Score != max(res.InboundScore, res.OutboundScore) {
			t.Fatalf("score %d is not max(%d, %d)", res.Score, res.InboundScore, res.OutboundScore)
		}
		if !slices.IsSorted(res.Tags) || len(slices.Compact(slices.Clone(res.Tags))) != len(res.Tags) {
			t.Fatalf("tags not sorted and unique: %q", res.Tags)
		}
		for _, tag := range res.Tags {
			if tag == "" || tag != strings.ToLower(tag) || strings.ContainsAny(tag, " \n\t") {
				t.Fatalf("bad tag %q", tag)
			}
		}
		for i, p := range res.OpenPorts {
			if p < 1 || p > 65535 || (i > 0 && p <= res.OpenPorts[i-1]) {
				t.Fatalf("bad ports %v", res.OpenPorts)
			}
		}
		if res.MaxCVSS < 0 || res.MaxCVSS > 10 || res.CVECount < 0 {
			t.Fatalf("bad CVE summary %d %v", res.CVECount, res.MaxCVSS)
		}
		if strings.ContainsAny(res.Detail, "\r\n") || !strings.HasPrefix(res.Detail, "Criminal IP:") {
			t.Fatalf("bad detail %q", res.Detail)
		}
		if len(res.CountryISO) != 0 && (len(res.CountryISO) != 2 || res.CountryISO != strings.ToUpper(res.CountryISO)) {
			t.Fatalf("bad country %q", res.CountryISO)
		}
	})
}
