// Package nftables is the block sink that drops traffic from an address on the local host: it
// keeps blocked addresses in two nftables sets (IPv4 and IPv6, "flags timeout") that input and
// forward chains match with `ip saddr @set drop` / `ip6 saddr @set drop`.
//
// It drives the nft command (nftables 1.0.x; libnftables-json(5) json_schema_version 1 for
// listings), never a shell: arguments are passed as argv and scripts on stdin (`nft -f -`), and
// every address is parsed with net/netip and re-printed before it reaches a script.
//
// Semantics:
//   - Do adds the address with a timeout equal to the time left until Action.Until (or
//     THREATPIPE_SINK_NFTABLES_DEFAULT_TTL), so that the kernel lifts the block even if
//     threatpipe is gone. A repeated block replaces the timeout: the element is added, deleted
//     and added again in one atomic transaction, because on older kernels `add element` leaves
//     an existing element's timeout untouched (the nftables wiki, "Element timeouts": "the
//     element should be recreated"; Linux 6.18 does update it), and an add+delete+add batch
//     neither fails on a present or absent element nor leaves a gap in enforcement.
//   - Undo removes the address; an address already gone (expired, never added) is success.
//   - Reconcile lists both sets (`nft -j list set`), diffs them against the ledger's active
//     blocks and applies the difference in one transaction: missing addresses are added with
//     their remaining time, timeouts more than a few seconds off are replaced, addresses not in
//     the ledger are removed. The sets belong to threatpipe.
//
// The table family decides what can be blocked: inet holds both sets, ip only IPv4, ip6 only
// IPv6. Timeouts are whole seconds, rounded up, at most MaxTimeout.
package nftables

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/sinks"
)

// Name is the sink's identifier in playbooks and its variable prefix.
const Name = "nftables"

// reconcileSlack is how far an element's expiry may be from the ledger's before Reconcile
// replaces it: nft reports whole seconds and our timeouts are rounded up.
const reconcileSlack = 5 * time.Second

// Registration adds the sink to the registry: variables under THREATPIPE_SINK_NFTABLES_, on
// when THREATPIPE_SINK_NFTABLES_ENABLED=true.
var Registration = sinks.Register[Config](Name, sinks.KindBlock, func(cfg *Config, deps sinks.Deps) (sinks.Sink, error) {
	r, err := newExecRunner(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*cfg.CommandTimeout)
	defer cancel()
	s, err := New(ctx, cfg, r, deps.Log)
	if err != nil {
		return nil, err
	}
	s.never = deps.NeverBlock
	return s, nil
})

var (
	_ sinks.Sink           = (*Sink)(nil)
	_ sinks.Undoer         = (*Sink)(nil)
	_ sinks.Reconciler     = (*Sink)(nil)
	_ sinks.ParamValidator = (*Sink)(nil)
)

// Sink blocks addresses in nftables sets.
type Sink struct {
	cfg Config
	v4  setRef
	v6  setRef
	run runner
	now func() time.Time
	log *zap.Logger
	// never is the never-block list Do and Reconcile enforce (nil: the built-in ranges).
	never *neverblock.List
	// mu lets blocks and undos run together but never while Reconcile compares and rewrites
	// the sets, which would undo a block made in between.
	mu sync.RWMutex
}

// newExecRunner resolves the commands the sink runs, with errors that name the variable.
func newExecRunner(cfg *Config) (*execRunner, error) {
	nft, err := exec.LookPath(cfg.NFTPath)
	if err != nil {
		return nil, fmt.Errorf("%sNFT_PATH: %q not found (install the nftables package): %w", EnvPrefix, cfg.NFTPath, err)
	}
	prefix := []string{nft}
	if cfg.NetNS != "" {
		ip, err := exec.LookPath("ip")
		if err != nil {
			return nil, fmt.Errorf("%sNETNS: the ip command (iproute2) is needed to enter namespace %q: %w", EnvPrefix, cfg.NetNS, err)
		}
		prefix = []string{ip, "netns", "exec", cfg.NetNS, nft}
	}
	return &execRunner{prefix: prefix, timeout: cfg.CommandTimeout}, nil
}

// New builds the sink on r: it creates the table, sets and chains when cfg.Create is set, then
// checks that the sets exist with the right type and the timeout flag. cfg must be resolved.
func New(ctx context.Context, cfg *Config, r runner, log *zap.Logger) (*Sink, error) {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Sink{
		cfg: *cfg,
		v4:  setRef{cfg.Family, cfg.Table, cfg.SetV4},
		v6:  setRef{cfg.Family, cfg.Table, cfg.SetV6},
		run: r,
		now: time.Now,
		log: log.With(zap.String("sink", Name)),
	}
	if cfg.Create {
		if _, err := r.run(ctx, setupScript(cfg), "-f", "-"); err != nil {
			return nil, fmt.Errorf("creating table %s %s (THREATPIPE_SINK_NFTABLES_CREATE): %w", cfg.Family, cfg.Table, err)
		}
	}
	for _, set := range s.sets() {
		if _, err := s.list(ctx, set.ref, set.typ); err != nil {
			return nil, err
		}
	}
	s.log.Info("nftables sink ready", zap.String("family", cfg.Family), zap.String("table", cfg.Table),
		zap.Bool("created", cfg.Create), zap.String("netns", cfg.NetNS))
	return s, nil
}

// Name implements sinks.Sink.
func (s *Sink) Name() string { return Name }

// Kind implements sinks.Sink.
func (s *Sink) Kind() sinks.Kind { return sinks.KindBlock }

// ValidateParams implements sinks.ParamValidator: the sink takes no step params, so any key is a
// mistake in the playbook.
func (s *Sink) ValidateParams(params map[string]string) error {
	return sinks.NoParams(Name, params)
}

// Do implements sinks.Sink: it blocks a.Target until a.Until (or now plus DEFAULT_TTL).
func (s *Sink) Do(ctx context.Context, a *sinks.Action) (sinks.Result, error) {
	if a == nil {
		return sinks.Result{}, fmt.Errorf("%s: nil action", Name)
	}
	addr, err := sinks.Blockable(s.never, Name, "block", a.Target)
	if err != nil {
		return sinks.Result{}, err
	}
	set, err := s.setFor(addr)
	if err != nil {
		return sinks.Result{}, err
	}
	now := s.now()
	until := a.UntilOr(now.Add(s.cfg.DefaultTTL))
	left := until.Sub(now)
	if left <= 0 {
		return sinks.Result{Ref: addr.String(), Detail: fmt.Sprintf("not blocked: the block of %s lapsed at %s", addr, until.UTC().Format(time.RFC3339))}, nil
	}
	secs := timeoutSecs(left)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, err := s.run.run(ctx, changeScript(setChanges{set: set, puts: []timed{{addr, secs}}}), "-f", "-"); err != nil {
		return sinks.Result{}, fmt.Errorf("nftables: blocking %s: %w", addr, err)
	}
	detail := fmt.Sprintf("blocked %s in nftables set %s for %ds", addr, set, secs)
	if time.Duration(secs)*time.Second < left {
		detail += fmt.Sprintf(" (clamped from %s)", left.Round(time.Second))
	}
	return sinks.Result{Ref: addr.String(), Detail: detail}, nil
}

// Undo implements sinks.Undoer: it removes the address; one already gone is success.
func (s *Sink) Undo(ctx context.Context, a *sinks.Action, ref string) error {
	target := ref
	if a != nil && a.Target != "" {
		target = a.Target
	}
	addr, err := parseTarget(target)
	if err != nil {
		return err
	}
	set, err := s.setFor(addr)
	if err != nil {
		return nil // the table cannot hold this family, so the address was never blocked here
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, err := s.run.run(ctx, changeScript(setChanges{set: set, dels: []netip.Addr{addr}}), "-f", "-"); err != nil {
		return fmt.Errorf("nftables: unblocking %s: %w", addr, err)
	}
	return nil
}

// Reconcile implements sinks.Reconciler: the sets end up holding exactly the unexpired addresses
// of active, each with its remaining time. Addresses that cannot be blocked here (invalid,
// never-block, or a family the table cannot hold) are reported in the error after the rest is
// applied; one already in a set is removed.
func (s *Sink) Reconcile(ctx context.Context, active map[string]time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	want := map[setRef]map[netip.Addr]int64{s.v4: {}, s.v6: {}}
	var errs []error
	skipped := 0
	for target, until := range active {
		addr, err := sinks.Blockable(s.never, Name, "block", target)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		left := until.Sub(now)
		if left <= 0 {
			continue
		}
		set, err := s.setFor(addr)
		if err != nil {
			skipped++
			continue
		}
		want[set][addr] = timeoutSecs(left)
	}
	if skipped > 0 {
		errs = append(errs, fmt.Errorf("nftables: %d active blocks are not of a family table %s %s holds (THREATPIPE_SINK_NFTABLES_FAMILY)", skipped, s.cfg.Family, s.cfg.Table))
	}
	var changes []setChanges
	for _, set := range s.sets() {
		l, err := s.list(ctx, set.ref, set.typ)
		if err != nil {
			return errors.Join(append([]error{err}, errs...)...)
		}
		changes = append(changes, diff(set.ref, l.elems, want[set.ref]))
	}
	script := changeScript(changes...)
	if len(script) == 0 {
		return errors.Join(errs...)
	}
	if _, err := s.run.run(ctx, script, "-f", "-"); err != nil {
		errs = append([]error{fmt.Errorf("nftables: reconciling: %w", err)}, errs...)
	}
	return errors.Join(errs...)
}

// diff computes what turns the set's current elements into want (address to timeout seconds).
func diff(set setRef, current []element, want map[netip.Addr]int64) setChanges {
	c := setChanges{set: set}
	seen := make(map[netip.Addr]bool, len(current))
	for _, e := range current {
		seen[e.addr] = true
		secs, ok := want[e.addr]
		if !ok {
			c.dels = append(c.dels, e.addr)
			continue
		}
		if d := time.Duration(secs)*time.Second - e.expires; e.permanent || d > reconcileSlack || d < -reconcileSlack {
			c.puts = append(c.puts, timed{e.addr, secs})
		}
	}
	for a, secs := range want {
		if !seen[a] {
			c.puts = append(c.puts, timed{a, secs})
		}
	}
	return c
}

// typedSet is a set the sink uses and the data type it must have.
type typedSet struct {
	ref setRef
	typ string
}

func (s *Sink) sets() []typedSet {
	var out []typedSet
	if s.cfg.hasV4() {
		out = append(out, typedSet{s.v4, "ipv4_addr"})
	}
	if s.cfg.hasV6() {
		out = append(out, typedSet{s.v6, "ipv6_addr"})
	}
	return out
}

// list reads a set and checks it is what the sink needs.
func (s *Sink) list(ctx context.Context, set setRef, typ string) (*listing, error) {
	out, err := s.run.run(ctx, nil, "-j", "list", "set", set.family, set.table, set.name)
	if err != nil {
		return nil, fmt.Errorf("nftables: listing set %s (does it exist? THREATPIPE_SINK_NFTABLES_CREATE=true creates it): %w", set, err)
	}
	l, err := decodeListing(out)
	if err != nil {
		return nil, fmt.Errorf("nftables: listing set %s: %w", set, err)
	}
	if l.typ != typ || !l.hasFlag("timeout") {
		return nil, fmt.Errorf("nftables: set %s has type %s and flags %v; the sink needs type %s with flags timeout", set, l.typ, l.flags, typ)
	}
	return l, nil
}

// setFor picks the set for an address, or fails when the table family cannot hold it.
func (s *Sink) setFor(a netip.Addr) (setRef, error) {
	switch {
	case a.Is4() && s.cfg.hasV4():
		return s.v4, nil
	case a.Is6() && s.cfg.hasV6():
		return s.v6, nil
	}
	v := "IPv6"
	if a.Is4() {
		v = "IPv4"
	}
	return setRef{}, fmt.Errorf("nftables: cannot block %s: a table of THREATPIPE_SINK_NFTABLES_FAMILY=%s holds no %s addresses", a, s.cfg.Family, v)
}

// parseTarget validates the target of an Undo before it goes anywhere near a script, and
// canonicalises it (sinks.BlockTarget): an IPv4-mapped IPv6 address is the IPv4 address, so that
// it lands in the set IPv4 packets are matched against. Do and Reconcile use sinks.Blockable,
// which also refuses never-block addresses (a block that would cut the host off from itself, or
// from its own networks).
func parseTarget(target string) (netip.Addr, error) { return sinks.BlockTarget(Name, "block", target) }
