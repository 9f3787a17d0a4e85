package sinks

import (
	"fmt"
	"net/netip"
)

// BlockTarget is the address a block sink acts on for a target (or a ref it returned): an IP
// address without an IPv6 zone, canonicalised so that an IPv4-mapped IPv6 address is the IPv4
// address, which is what IPv4 traffic is matched against. Addresses no firewall should block
// are refused: unspecified, loopback and multicast. Errors start with the sink's name and say
// what it would have done (verb: "list", "block"); a long target is cut in them.
func BlockTarget(sink, verb, target string) (netip.Addr, error) {
	a, err := netip.ParseAddr(target)
	if err != nil {
		const max = 80
		if len(target) > max {
			target = target[:max] + "..."
		}
		return netip.Addr{}, fmt.Errorf("%s: target %q is not an IP address", sink, target)
	}
	a = a.Unmap()
	switch {
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%s: target %q has an IPv6 zone", sink, target)
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast():
		return netip.Addr{}, fmt.Errorf("%s: refusing to %s %s (unspecified, loopback or multicast)", sink, verb, a)
	}
	return a, nil
}
