package sinks

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/threatpipe/threatpipe/pipeline/neverblock"
)

// ErrNeverBlock is matched (errors.Is) by a block sink's refusal to block a never-block address.
// The act worker records such a refusal as refused_never_block, like its own check.
var ErrNeverBlock = errors.New("never-block address")

// NeverBlockError is a block sink's refusal to block a never-block address.
type NeverBlockError struct {
	Sink, Verb string
	Target     netip.Addr
	Verdict    neverblock.Verdict
}

// Error implements error.
func (e *NeverBlockError) Error() string {
	return fmt.Sprintf("%s: refusing to %s %s: it is never blocked (%s)", e.Sink, e.Verb, e.Target, e.Verdict)
}

// Unwrap makes the error match ErrNeverBlock.
func (e *NeverBlockError) Unwrap() error { return ErrNeverBlock }

// BlockTarget is the address a block sink acts on for a target (or a ref it returned): an IP
// address without an IPv6 zone, canonicalised so that an IPv4-mapped IPv6 address is the IPv4
// address, which is what IPv4 traffic is matched against. Addresses no firewall should block
// are refused: unspecified, loopback and multicast. Errors start with the sink's name and say
// what it would have done (verb: "list", "block"); a long target is cut in them.
//
// Undo uses it as it is: lifting a block is always allowed. Do and Reconcile use Blockable.
func BlockTarget(sink, verb, target string) (netip.Addr, error) {
	a, err := parseTarget(sink, target)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%s: refusing to %s %s (unspecified, loopback or multicast)", sink, verb, a)
	}
	return a, nil
}

// Blockable is BlockTarget for a new block: besides what BlockTarget refuses, an address of
// the never-block list (or embedding an IPv4 address of it: 64:ff9b::10.0.0.1) is refused with
// a *NeverBlockError. A nil list is the built-in special-purpose ranges alone. Every block sink
// calls it, so that a block is refused even if the act worker's own check were bypassed.
func Blockable(never *neverblock.List, sink, verb, target string) (netip.Addr, error) {
	a, err := parseTarget(sink, target)
	if err != nil {
		return netip.Addr{}, err
	}
	if never == nil {
		never = neverblock.Builtin()
	}
	if v, refused := never.Check(a); refused {
		return netip.Addr{}, &NeverBlockError{Sink: sink, Verb: verb, Target: a, Verdict: v}
	}
	return BlockTarget(sink, verb, target)
}

func parseTarget(sink, target string) (netip.Addr, error) {
	a, err := netip.ParseAddr(target)
	if err != nil {
		const max = 80
		if len(target) > max {
			target = target[:max] + "..."
		}
		return netip.Addr{}, fmt.Errorf("%s: target %q is not an IP address", sink, target)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s: target %q has an IPv6 zone", sink, target)
	}
	return a.Unmap(), nil
}
