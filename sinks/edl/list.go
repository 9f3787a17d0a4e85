package edl

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// list holds the listed addresses and their expiries, and renders the served document lazily:
// a render is reused until a mutation or until its earliest entry expires, so that a poll costs
// a lock and a pointer copy, and an expired entry is never served even before Undo runs.
type list struct {
	format string
	max    int // 0: unlimited

	mu      sync.Mutex
	entries map[netip.Addr]time.Time
	dirty   bool      // mutated since the last render
	stale   time.Time // when the last render's earliest entry expires; zero: never
	doc     *document
	served  bool // doc has been handed out, so a client may hold its validators
}

// document is one rendering of the list; it is never modified once built.
type document struct {
	body []byte
	// etag is a strong validator derived from the body.
	etag string
	// modified is when the served content last changed, in whole seconds (the precision of
	// Last-Modified). Once a document has been served, the next one's is strictly later, so
	// that If-Modified-Since never hides a change made within the same second; under a burst
	// of changes and polls it may run a second or two ahead of the clock.
	modified time.Time
}

func newList(format string, max int, now time.Time) *list {
	l := &list{format: format, max: max, entries: make(map[netip.Addr]time.Time)}
	l.doc = render(format, nil, now.Truncate(time.Second))
	return l
}

// errFull is returned when MAX_ENTRIES addresses are listed.
type errFull struct{ max int }

func (e errFull) Error() string {
	return fmt.Sprintf("edl: the list holds THREATPIPE_SINK_EDL_MAX_ENTRIES=%d addresses", e.max)
}

// put lists addr until until, replacing an earlier expiry.
func (l *list) put(addr netip.Addr, until, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.entries[addr]; !ok && l.max > 0 && len(l.entries) >= l.max {
		l.prune(now)
		if len(l.entries) >= l.max {
			return errFull{l.max}
		}
	}
	l.entries[addr] = until
	l.dirty = true
	return nil
}

// remove unlists addr; an absent address is no change.
func (l *list) remove(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.entries[addr]; ok {
		delete(l.entries, addr)
		l.dirty = true
	}
}

// replace makes the list exactly entries (expired ones are dropped). Past the maximum it keeps
// the longest-lasting addresses and reports how many it dropped.
func (l *list) replace(entries map[netip.Addr]time.Time, now time.Time) (dropped int) {
	fresh := make(map[netip.Addr]time.Time, len(entries))
	for a, until := range entries {
		if until.After(now) {
			fresh[a] = until
		}
	}
	if l.max > 0 && len(fresh) > l.max {
		addrs := make([]netip.Addr, 0, len(fresh))
		for a := range fresh {
			addrs = append(addrs, a)
		}
		// Longest first; the address breaks ties so that the choice is deterministic.
		slices.SortFunc(addrs, func(x, y netip.Addr) int {
			if c := fresh[y].Compare(fresh[x]); c != 0 {
				return c
			}
			return x.Compare(y)
		})
		for _, a := range addrs[l.max:] {
			delete(fresh, a)
		}
		dropped = len(addrs) - l.max
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = fresh
	l.dirty = true
	return dropped
}

// current returns the document to serve at now.
func (l *list) current(now time.Time) *document {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.dirty && (l.stale.IsZero() || now.Before(l.stale)) {
		l.served = true
		return l.doc
	}
	l.prune(now)
	addrs := make([]netip.Addr, 0, len(l.entries))
	l.stale = time.Time{}
	for a, until := range l.entries {
		addrs = append(addrs, a)
		if l.stale.IsZero() || until.Before(l.stale) {
			l.stale = until
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	modified := now.Truncate(time.Second)
	if next := l.doc.modified.Add(time.Second); l.served && modified.Before(next) {
		modified = next
	}
	if doc := render(l.format, addrs, modified); doc.etag != l.doc.etag {
		l.doc = doc
	} // else the same content keeps its Last-Modified
	l.dirty, l.served = false, true
	return l.doc
}

// prune drops expired entries; l.mu is held.
func (l *list) prune(now time.Time) {
	for a, until := range l.entries {
		if !until.After(now) {
			delete(l.entries, a)
			l.dirty = true
		}
	}
}

// render writes one address per line, LF-terminated, in the order given.
func render(format string, addrs []netip.Addr, modified time.Time) *document {
	var b bytes.Buffer
	b.Grow(len(addrs) * 20)
	for _, a := range addrs {
		b.WriteString(a.String())
		if format == FormatCIDR {
			fmt.Fprintf(&b, "/%d", a.BitLen())
		}
		b.WriteByte('\n')
	}
	sum := sha256.Sum256(b.Bytes())
	return &document{
		body:     b.Bytes(),
		etag:     `"` + hex.EncodeToString(sum[:16]) + `"`,
		modified: modified,
	}
}
