package edl

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinktest"
)

func TestBlockContract(t *testing.T) {
	sinktest.RunBlockContract(t, sinktest.BlockSink{
		New: func(t *testing.T, never *neverblock.List) sinks.Sink {
			s := New(testConfig(), nil)
			s.never = never
			return s
		},
		// What the firewalls would fetch.
		Blocked: func(t *testing.T, s sinks.Sink) []netip.Addr {
			rec := httptest.NewRecorder()
			s.(*Sink).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/edl/blocklist.txt", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("EDL: HTTP %d", rec.Code)
			}
			var out []netip.Addr
			for _, line := range strings.Fields(rec.Body.String()) {
				out = append(out, netip.MustParseAddr(line))
			}
			return out
		},
	})
}
