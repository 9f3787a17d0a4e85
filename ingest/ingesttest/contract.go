// Package ingesttest is the contract every ingest.Source must meet, as a test suite a source's
// own tests run against a fake of its platform.
package ingesttest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/ingest"
)

// Seeded is a source under test and the way to give its platform more records.
type Seeded struct {
	Source ingest.Source
	// Add gives the platform m more records, each naming one IP address and changed after every
	// earlier one. nil skips the checks that need it.
	Add func(m int)
}

// Seed returns a fresh source whose platform holds n records, each naming exactly one IP address
// (an indicator is identified by Ref and Value).
type Seed func(t *testing.T, n int) Seeded

// maxPolls bounds a walk: a source that never stops saying More fails instead of hanging.
const maxPolls = 1000

// RunContract checks s against the Source contract:
//   - paging from "" until More is false returns each seeded indicator exactly once, whatever
//     the limit;
//   - polling again from any cursor it returned neither skips nor repeats: the rest of the walk
//     is exactly what followed that cursor, and the same cursor gives the same page;
//   - from the last cursor, nothing is returned until the platform has more, then only that;
//   - Poll honours a cancelled context;
//   - Name is a stable, non-empty, lower-case word.
func RunContract(t *testing.T, seed Seed) {
	t.Helper()
	for _, tc := range []struct{ n, limit int }{{0, 5}, {1, 5}, {23, 1}, {23, 5}, {23, 50}} {
		t.Run(fmt.Sprintf("n=%d/limit=%d", tc.n, tc.limit), func(t *testing.T) {
			s := seed(t, tc.n)
			checkName(t, s.Source)
			pages := walk(t, s.Source, "", tc.limit)
			all := flatten(pages)
			checkOnce(t, all, tc.n)
			checkResume(t, s.Source, pages, tc.limit)
			if s.Add != nil {
				checkNewOnly(t, s, lastCursor(pages), tc.limit)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		s := seed(t, 3)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Source.Poll(ctx, "", 10); err == nil || !errors.Is(err, context.Canceled) {
			t.Errorf("Poll with a cancelled context: %v, want an error wrapping context.Canceled", err)
		}
	})
}

// page is one poll's result with the cursor it was polled from.
type page struct {
	from string
	ingest.Page
}

// walk polls from cursor until More is false.
func walk(t *testing.T, src ingest.Source, cursor string, limit int) []page {
	t.Helper()
	var out []page
	for range maxPolls {
		p := poll(t, src, cursor, limit)
		out = append(out, page{from: cursor, Page: p})
		cursor = p.Next
		if !p.More {
			return out
		}
	}
	t.Fatalf("still More after %d polls", maxPolls)
	return nil
}

func poll(t *testing.T, src ingest.Source, cursor string, limit int) ingest.Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := src.Poll(ctx, cursor, limit)
	if err != nil {
		t.Fatalf("Poll(%q, %d): %v", cursor, limit, err)
	}
	if len(p.Indicators) > limit {
		t.Errorf("Poll(%q, %d) returned %d indicators", cursor, limit, len(p.Indicators))
	}
	return p
}

// Key identifies an indicator for the contract: its record and address.
func Key(ind ingest.Indicator) string { return ind.Ref + "|" + ind.Value }

func keys(inds []ingest.Indicator) []string {
	out := make([]string, len(inds))
	for i, ind := range inds {
		out[i] = Key(ind)
	}
	return out
}

func flatten(pages []page) []ingest.Indicator {
	var out []ingest.Indicator
	for _, p := range pages {
		out = append(out, p.Indicators...)
	}
	return out
}

func lastCursor(pages []page) string { return pages[len(pages)-1].Next }

func checkName(t *testing.T, src ingest.Source) {
	t.Helper()
	n := src.Name()
	if n == "" || n != src.Name() || slices.ContainsFunc([]rune(n), func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) {
		t.Errorf("Name() = %q: want a stable lower-case word", n)
	}
}

func checkOnce(t *testing.T, all []ingest.Indicator, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, ind := range all {
		seen[Key(ind)]++
		if ind.Ref == "" || ind.Value == "" {
			t.Errorf("indicator without Ref or Value: %+v", ind)
		}
		if ind.Modified.IsZero() {
			t.Errorf("indicator %s without Modified", Key(ind))
		}
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%s returned %d times", k, c)
		}
	}
	if len(seen) != n {
		t.Errorf("walk returned %d distinct indicators, want %d", len(seen), n)
	}
}

// checkResume polls again from every cursor the walk returned: the same cursor must give the
// same page, and walking on from it must give exactly the rest.
func checkResume(t *testing.T, src ingest.Source, pages []page, limit int) {
	t.Helper()
	for i, p := range pages {
		again := poll(t, src, p.from, limit)
		if !slices.Equal(keys(again.Indicators), keys(p.Indicators)) {
			t.Errorf("page %d polled again from %q: %v, first time %v", i, p.from, keys(again.Indicators), keys(p.Indicators))
		}
		want := keys(flatten(pages[i+1:]))
		got := keys(flatten(walk(t, src, p.Next, limit)))
		if !slices.Equal(got, want) {
			t.Errorf("resuming after page %d from %q: %d indicators %v, want %d %v", i, p.Next, len(got), got, len(want), want)
		}
	}
}

// checkNewOnly: from the last cursor nothing comes back, then only what was added.
func checkNewOnly(t *testing.T, s Seeded, last string, limit int) {
	t.Helper()
	if got := flatten(walk(t, s.Source, last, limit)); len(got) != 0 {
		t.Errorf("polling from the last cursor returned %v, want nothing", keys(got))
	}
	s.Add(3)
	got := flatten(walk(t, s.Source, last, limit))
	checkOnce(t, got, 3)
}
