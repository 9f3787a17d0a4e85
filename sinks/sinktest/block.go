// Package sinktest holds the contract tests every sink of a kind must pass, run from each
// sink package's own tests. sinks/all checks that every sink package that can block runs
// RunBlockContract.
package sinktest

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/sinks"
)

// BlockSink is a block sink under test.
type BlockSink struct {
	// New builds the sink with the given never-block list, talking to a fake far end.
	New func(t *testing.T, never *neverblock.List) sinks.Sink
	// Blocked returns the addresses the far end holds, or was asked to block, so far (canonical
	// form: IPv4-mapped addresses as IPv4).
	Blocked func(t *testing.T, s sinks.Sink) []netip.Addr
}

// Own and NeverBlockCIDRs are the operator's ranges of the contract's never-block list.
var (
	Own             = netip.MustParsePrefix("45.155.205.0/24")
	NeverBlockCIDRs = netip.MustParsePrefix("8.8.8.8/32")
)

// NeverBlockTargets are targets a block sink must refuse with the contract's list: special
// ranges, the operator's ranges, and IPv6 addresses embedding either.
var NeverBlockTargets = []string{
	"10.0.0.1", "127.0.0.1", "169.254.169.254", "100.64.0.1", "fd00::1", "64:ff9b:1::b9dc:6501",
	"45.155.205.233", "8.8.8.8",
	"::ffff:10.0.0.1", "::ffff:45.155.205.233", "::10.0.0.1", "::ffff:0:10.0.0.1",
	"64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b::2d9b:cde9", "64:ff9b::808:808",
	"2002:a00:1::1", "2002:2d9b:cde9::1",
	"2001:0:4136:e378:8000:63bf:f5ff:fffe", // Teredo client 10.0.0.1
	"2001:0:4136:e378:8000:63bf:d264:3216", // Teredo client 45.155.205.233
	"2001:0:a00:1:8000:63bf:4623:9afe",     // Teredo server 10.0.0.1
	"2a00:1450:4001::5efe:a00:1",           // ISATAP 10.0.0.1
}

// BlockableTargets are targets a block sink must block: public addresses, plain and embedded.
var BlockableTargets = []string{
	"185.220.101.1", "64:ff9b::b9dc:6502", "2002:b9dc:6503::1", "2a00:1450:4001::1",
}

// RunBlockContract checks that the sink refuses to block never-block addresses in Do (with an
// error matching sinks.ErrNeverBlock, and nothing reaching the far end) and in Reconcile (where
// they are left out and reported), blocks public ones, and, when it is an Undoer, still lifts a
// never-block address (a block made before the address became never-block must be liftable).
func RunBlockContract(t *testing.T, b BlockSink) {
	t.Helper()
	never := neverblock.New([]netip.Prefix{Own}, []netip.Prefix{NeverBlockCIDRs})
	ctx := context.Background()
	until := time.Now().Add(time.Hour)

	t.Run("Do refuses never-block addresses", func(t *testing.T) {
		s := b.New(t, never)
		if s.Kind() != sinks.KindBlock {
			t.Fatalf("sink %s is of kind %s, not block", s.Name(), s.Kind())
		}
		for _, target := range NeverBlockTargets {
			res, err := s.Do(ctx, &sinks.Action{Key: "k-" + target, Kind: sinks.KindBlock, Target: target, Until: until})
			if !errors.Is(err, sinks.ErrNeverBlock) {
				t.Errorf("Do(%s) = %+v, %v; want an error matching sinks.ErrNeverBlock", target, res, err)
			}
		}
		if got := b.Blocked(t, s); len(got) != 0 {
			t.Errorf("the far end got never-block addresses: %v", got)
		}
	})

	t.Run("a nil list still refuses the special ranges", func(t *testing.T) {
		s := b.New(t, nil)
		for _, target := range []string{"10.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::1"} {
			if _, err := s.Do(ctx, &sinks.Action{Key: "k", Kind: sinks.KindBlock, Target: target, Until: until}); !errors.Is(err, sinks.ErrNeverBlock) {
				t.Errorf("Do(%s) with no list: %v, want a never-block refusal", target, err)
			}
		}
		if got := b.Blocked(t, s); len(got) != 0 {
			t.Errorf("the far end got never-block addresses: %v", got)
		}
	})

	t.Run("Do blocks public addresses", func(t *testing.T) {
		s := b.New(t, never)
		var want []netip.Addr
		for _, target := range BlockableTargets {
			if _, err := s.Do(ctx, &sinks.Action{Key: "k-" + target, Kind: sinks.KindBlock, Target: target, Until: until}); err != nil {
				t.Errorf("Do(%s): %v", target, err)
			}
			want = append(want, netip.MustParseAddr(target))
		}
		got := b.Blocked(t, s)
		for _, a := range want {
			if !slices.Contains(got, a) {
				t.Errorf("%s not blocked at the far end (it holds %v)", a, got)
			}
		}
	})

	t.Run("Reconcile leaves never-block addresses out", func(t *testing.T) {
		s := b.New(t, never)
		r, ok := s.(sinks.Reconciler)
		if !ok {
			t.Skip("not a Reconciler")
		}
		active := map[string]time.Time{"185.220.101.9": until}
		for _, target := range NeverBlockTargets {
			active[target] = until
		}
		if err := r.Reconcile(ctx, active); !errors.Is(err, sinks.ErrNeverBlock) {
			t.Errorf("Reconcile with never-block addresses: %v, want them reported", err)
		}
		got := b.Blocked(t, s)
		if !slices.Equal(got, []netip.Addr{netip.MustParseAddr("185.220.101.9")}) {
			t.Errorf("after Reconcile the far end holds %v, want only 185.220.101.9", got)
		}
	})

	t.Run("Undo lifts a never-block address", func(t *testing.T) {
		s := b.New(t, never)
		u, ok := s.(sinks.Undoer)
		if !ok {
			t.Skip("not an Undoer")
		}
		for _, target := range []string{"10.0.0.1", "64:ff9b::a00:1", "45.155.205.233"} {
			if err := u.Undo(ctx, &sinks.Action{Key: "k", Kind: sinks.KindBlock, Target: target}, target); err != nil {
				t.Errorf("Undo(%s): %v", target, err)
			}
		}
	})
}
