package nftables

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinktest"
)

// elemLine is one line of a change script: an add or a delete of elements of a set.
var elemLine = regexp.MustCompile(`^(add|delete) element inet threatpipe blocklist_v[46] \{ (.*) \}$`)

func TestBlockContract(t *testing.T) {
	sinktest.RunBlockContract(t, sinktest.BlockSink{
		New: func(t *testing.T, never *neverblock.List) sinks.Sink {
			s := newTestSink(t, testConfig("inet"), newFake(t))
			s.never = never
			return s
		},
		Blocked: func(t *testing.T, s sinks.Sink) []netip.Addr { return scriptedElements(s.(*Sink).run.(*fakeNFT)) },
	})
}

// scriptedElements replays the change scripts run so far (the sets' fixture contents aside):
// the addresses they leave in a set. A delete is written as add-then-delete, so order matters.
func scriptedElements(f *fakeNFT) []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	var held []netip.Addr
	for _, call := range f.calls {
		for _, line := range strings.Split(call, "\n") {
			m := elemLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			for _, elem := range strings.Split(m[2], ", ") {
				a := netip.MustParseAddr(strings.Fields(elem)[0])
				held = slices.DeleteFunc(held, func(h netip.Addr) bool { return h == a })
				if m[1] == "add" {
					held = append(held, a)
				}
			}
		}
	}
	return held
}
