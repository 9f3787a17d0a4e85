package taxii

import (
	"context"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/view"
)

// Collection is one read-only collection: every published indicator, or those of one severity.
type Collection struct {
	ID          string
	Alias       string
	Title       string
	Description string
	Severity    event.Severity // "" for every severity
}

// Collections are the server's collections, "all" first. Ids are UUIDv5 of the alias, so they
// are the same on every replica and release.
func Collections() []Collection {
	out := []Collection{{Alias: "all", Title: "threatpipe: all indicators",
		Description: "Every address threatpipe scored low, medium, high or critical, with its sighting and reasons."}}
	for _, s := range []event.Severity{event.SeverityCritical, event.SeverityHigh, event.SeverityMedium, event.SeverityLow} {
		out = append(out, Collection{Alias: string(s), Severity: s, Title: "threatpipe: " + string(s) + " indicators",
			Description: "The addresses threatpipe currently scores " + string(s) + ", with their sightings and reasons."})
	}
	for i := range out {
		out[i].ID = uuid5(namespace, "collection:"+out[i].Alias)
	}
	return out
}

// Feed reads a collection's objects from the view's store in date-added order.
type Feed struct {
	Store   *view.Store
	Convert Convert
	// MaxScan bounds the index entries one page reads looking for matches (a severity or id
	// filter may match few); past it the page ends early with more set.
	MaxScan int
}

// NewFeed returns the feed of store.
func NewFeed(store *view.Store) *Feed {
	return &Feed{Store: store, Convert: Convert{Retention: store.Retention(), HistoryCap: store.HistoryCap()}, MaxScan: 20000}
}

// Item is one object of a page and when it was added to the collection.
type Item struct {
	Object Object
	Added  time.Time
}

// Page is one page of a collection.
type Page struct {
	Items []Item
	More  bool
	Next  Cursor // valid when More
}

// maxSkip is more objects than any indicator has.
const maxSkip = 16

// scanChunk is how many index entries one step of a page reads.
const scanChunk = 250

// Page returns up to q.Limit objects of col after q's start. The identity (every object's
// creator) comes first on a page without a cursor. A page is filled up to the limit whenever more
// objects match, so a client never sees a short page before the last one (taxii2-client shrinks
// its page size to a short page's).
func (f *Feed) Page(ctx context.Context, col Collection, q Query) (*Page, error) {
	p := &Page{Items: []Item{}}
	if q.Next == nil {
		id := NewIdentity()
		if q.Wants(id) && IdentityAdded().After(q.AddedAfter) {
			p.Items = append(p.Items, Item{Object: id, Added: IdentityAdded()})
		}
	}
	pos := q.start()
	if q.Next != nil {
		done, err := f.resume(ctx, col, q, p)
		if err != nil || done {
			return p, err
		}
	}
	for scanned := 0; scanned < f.MaxScan; {
		n := min(scanChunk, f.MaxScan-scanned)
		entries, err := f.Store.FeedAfter(ctx, pos, n)
		if err != nil {
			return nil, err
		}
		scanned += len(entries)
		inds, err := f.read(ctx, col, &q, entries)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			pos = e.Pos()
			if ind := inds[e.IP]; ind != nil && f.add(p, q, ind, e, 0) {
				return p, nil
			}
		}
		if len(entries) < n {
			return p, nil // the index is exhausted
		}
	}
	// The scan bound ends the page early: resume after the last entry read (a Skip past any
	// indicator's objects).
	p.More, p.Next = true, Cursor{AddedMS: pos.AddedMS, IP: pos.IP, Skip: maxSkip}
	return p, nil
}

// add appends ind's objects from the skip-th on; it returns true when the page is full and one
// more object matches, setting the cursor at that object.
func (f *Feed) add(p *Page, q Query, ind *view.Indicator, e view.FeedEntry, skip int) bool {
	k := 0
	for _, o := range f.Convert.Objects(ind) {
		if !q.Wants(o) {
			continue
		}
		if k++; k <= skip {
			continue
		}
		if len(p.Items) == q.Limit {
			p.More, p.Next = true, Cursor{AddedMS: e.AddedMS, IP: e.IP, Skip: k - 1}
			return true
		}
		p.Items = append(p.Items, Item{Object: o, Added: time.UnixMilli(e.AddedMS).UTC()})
	}
	return false
}

// resume adds the rest of the indicator a cursor stopped in, unless it was stored again since
// (it then comes later, whole, at its new time).
func (f *Feed) resume(ctx context.Context, col Collection, q Query, p *Page) (bool, error) {
	e := view.FeedEntry{IP: q.Next.IP, AddedMS: q.Next.AddedMS}
	inds, err := f.read(ctx, col, &q, []view.FeedEntry{e})
	if err != nil {
		return false, err
	}
	ind := inds[e.IP]
	if ind == nil || ind.LastSeen.UnixMilli() != e.AddedMS {
		return false, nil
	}
	return f.add(p, q, ind, e, q.Next.Skip), nil
}

// read returns the indicators of entries that may be in col and pass q's id filter, by address.
// A severity collection reads the small rows first and the whole indicators of its own only.
func (f *Feed) read(ctx context.Context, col Collection, q *Query, entries []view.FeedEntry) (map[string]*view.Indicator, error) {
	ips := make([]string, 0, len(entries))
	for _, e := range entries {
		if q.mayMatch(e.IP) {
			ips = append(ips, e.IP)
		}
	}
	if col.Severity != "" && len(ips) > 0 {
		rows, err := f.Store.FeedRows(ctx, ips)
		if err != nil {
			return nil, err
		}
		ips = ips[:0]
		for _, r := range rows {
			if r.Severity == col.Severity && Published(&r) {
				ips = append(ips, r.IP)
			}
		}
	}
	inds, err := f.Store.FeedRead(ctx, ips)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*view.Indicator, len(inds))
	for _, ind := range inds {
		if col.Severity == "" || ind.Severity == col.Severity {
			out[ind.IP] = ind
		}
	}
	return out, nil
}

// Each calls fn with every published indicator stored after since (zero: all), in date-added
// order, for exports.
func (f *Feed) Each(ctx context.Context, since time.Time, fn func(*view.Indicator) error) error {
	q := Query{AddedAfter: since}
	pos := q.start()
	for {
		entries, err := f.Store.FeedAfter(ctx, pos, scanChunk)
		if err != nil {
			return err
		}
		inds, err := f.read(ctx, Collection{Alias: "all"}, &q, entries)
		if err != nil {
			return err
		}
		for _, e := range entries {
			pos = e.Pos()
			if ind := inds[e.IP]; ind != nil && Published(&ind.Row) {
				if err := fn(ind); err != nil {
					return err
				}
			}
		}
		if len(entries) < scanChunk {
			return nil
		}
	}
}
