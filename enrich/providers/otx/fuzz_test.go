package otx

import (
	"errors"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// FuzzDecode checks the response decoders never panic, and that whatever decodeGeneral accepts
// is a well-formed Result. The seed corpus in testdata/fuzz/FuzzDecode holds every
// testdata/*.json fixture, one file each (seed-<fixture>, the body quoted with strconv.Quote).
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"pulse_info":{"count":-3,"pulses":[{"name":"a","malware_families":[1,{"id":"x"},"y"]}]},"asn":"AS4294967296 x","latitude":91}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = errorMessage(body)
		res, err := decodeGeneral(body)
		if err != nil {
			var me *malformedError
			if !errors.As(err, &me) || res != nil {
				t.Fatalf("error %T %v with result %v", err, err, res)
			}
			return
		}
		if res == nil || res.Score < 0 || res.Score > 100 {
			t.Fatalf("bad result %+v", res)
		}
		switch res.Verdict {
		case enrich.VerdictMalicious, enrich.VerdictSuspicious:
			if res.Score < 40 {
				t.Fatalf("%s with %d points", res.Verdict, res.Score)
			}
		case enrich.VerdictBenign:
			if res.Service == "" || res.Score != 0 {
				t.Fatalf("benign without a service, or with points: %+v", res)
			}
		case event.VerdictUnrated:
			if res.Score != 0 {
				t.Fatalf("unrated with points: %+v", res)
			}
		default:
			t.Fatalf("verdict %q", res.Verdict)
		}
		if !strings.HasPrefix(res.Detail, "OTX: ") || strings.ContainsAny(res.Detail, "\r\n") || len(res.Tags) != 0 {
			t.Fatalf("bad detail or tags %q %q", res.Detail, res.Tags)
		}
		if res.ASNumber < 0 || res.ASNumber > 1<<32-1 {
			t.Fatalf("AS %d", res.ASNumber)
		}
		if l := res.Location; l != nil && (l.Lat < -90 || l.Lat > 90 || l.Lon < -180 || l.Lon > 180) {
			t.Fatalf("location %+v", l)
		}
		if len(res.CountryISO) != 0 && (len(res.CountryISO) != 2 || res.CountryISO != strings.ToUpper(res.CountryISO)) {
			t.Fatalf("country %q", res.CountryISO)
		}
	})
}
