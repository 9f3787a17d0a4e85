package greynoise

import (
	"errors"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// FuzzDecode checks the response decoders never panic, and that whatever decodeCommunity
// accepts is a well-formed Result. The seed corpus in testdata/fuzz/FuzzDecode holds every
// testdata/*.json fixture, one file each (seed-<fixture>, the body quoted with strconv.Quote).
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"noise":true,"riot":true,"classification":"MALICIOUS","name":"\u0000x","last_seen":"2024-13-01"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = errorMessage(body)
		_, _ = decodeBody(body)
		res, err := decodeCommunity(body)
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
		case enrich.VerdictMalicious, enrich.VerdictSuspicious, event.VerdictUnrated:
		case enrich.VerdictBenign:
			if res.Service == "" || res.Score != 0 {
				t.Fatalf("benign without a service, or with points: %+v", res)
			}
		default:
			t.Fatalf("verdict %q", res.Verdict)
		}
		if !strings.HasPrefix(res.Detail, "GreyNoise: ") || strings.ContainsAny(res.Detail, "\r\n") {
			t.Fatalf("bad detail %q", res.Detail)
		}
		if len(res.Tags) > 1 || (len(res.Tags) == 1 && res.Tags[0] != "scanner") {
			t.Fatalf("bad tags %q", res.Tags)
		}
	})
}
