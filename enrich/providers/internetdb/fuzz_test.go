package internetdb

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// FuzzDecode checks the response decoders never panic, and that whatever decodeHost accepts is
// a well-formed Result. The seed corpus in testdata/fuzz/FuzzDecode holds every
// testdata/*.json fixture, one file each (seed-<fixture>, the body quoted with strconv.Quote).
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"ip":"x","ports":[-1,0,65536,65535,1e3],"tags":["C2","\u0000"],"vulns":[" cve-1 ","CVE-1"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = errorDetail(body)
		res, err := decodeHost(body)
		if err != nil {
			var me *malformedError
			if !errors.As(err, &me) || res != nil {
				t.Fatalf("error %T %v with result %v", err, err, res)
			}
			return
		}
		switch {
		case res == nil:
			t.Fatal("nil result")
		case res.Verdict == enrich.VerdictMalicious && res.Score == ScoreMalicious:
		case res.Verdict == event.VerdictUnrated && res.Score == 0:
		default:
			t.Fatalf("verdict %q with score %d", res.Verdict, res.Score)
		}
		for i, p := range res.OpenPorts {
			if p < 1 || p > 65535 || (i > 0 && p <= res.OpenPorts[i-1]) {
				t.Fatalf("bad ports %v", res.OpenPorts)
			}
		}
		if !slices.IsSorted(res.Tags) || len(slices.Compact(slices.Clone(res.Tags))) != len(res.Tags) {
			t.Fatalf("tags not sorted and unique: %q", res.Tags)
		}
		for _, tag := range res.Tags {
			if tag == "" || tag != strings.ToLower(tag) || strings.ContainsAny(tag, " \n\t") {
				t.Fatalf("bad tag %q", tag)
			}
		}
		if res.CVECount < 0 || res.MaxCVSS != 0 {
			t.Fatalf("CVE summary %d %v", res.CVECount, res.MaxCVSS)
		}
		if !strings.HasPrefix(res.Detail, "InternetDB: ") || strings.ContainsAny(res.Detail, "\r\n") {
			t.Fatalf("bad detail %q", res.Detail)
		}
	})
}
