package webhook

import (
	"net/netip"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
	"github.com/threatpipe/threatpipe/sinks/sinktest"
)

func TestBlockContract(t *testing.T) {
	receivers := map[sinks.Sink]*fakeReceiver{}
	sinktest.RunBlockContract(t, sinktest.BlockSink{
		New: func(t *testing.T, never *neverblock.List) sinks.Sink {
			fake, srv := newFakeReceiver(t, nil)
			cfg := &Config{
				URL: srv.URL + receiverPath + "?token=" + receiverToken, Secret: config.Secret(testSecret), Kind: string(sinks.KindBlock),
				PolicyConfig: sinkhttp.PolicyConfig{AttemptTimeout: 2 * time.Second, RetryBudget: 5 * time.Second},
			}
			if err := cfg.Resolve(); err != nil {
				t.Fatal(err)
			}
			s, err := build(cfg, sinkhttp.NewHTTPClient(), never)
			if err != nil {
				t.Fatal(err)
			}
			receivers[s] = fake
			return s
		},
		// The targets of every block request the receiver accepted.
		Blocked: func(t *testing.T, s sinks.Sink) []netip.Addr {
			f := receivers[s]
			f.mu.Lock()
			defer f.mu.Unlock()
			var out []netip.Addr
			for _, d := range f.delivered {
				if d.payload["action"] == ActionBlock {
					out = append(out, netip.MustParseAddr(d.payload["target"].(string)).Unmap())
				}
			}
			return out
		},
	})
}
