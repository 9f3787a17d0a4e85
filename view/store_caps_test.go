package view

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

func gated(reason string) scoredOpt {
	return func(e *event.Scored) { e.Gate = &event.Gate{Reason: reason, Prefix: "10.0.0.0/8"} }
}

// keysUnder counts the keys of the store's prefix.
func keysUnder(t *testing.T, s *Store) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	iter := s.rdb.Scan(ctx, 0, s.prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEnforceCapEvictsLowestRankedFirst(t *testing.T) {
	s, c := testStore(t, StoreOptions{MaxIndicators: 3})
	ctx := context.Background()
	now := c.Now()
	mustApply(t, s,
		scored("198.51.100.1", 90, now.Add(-time.Hour)), // critical and old: kept over low scores
		scored("198.51.100.2", 10, now.Add(-30*time.Minute)),
		scored("198.51.100.3", 10, now.Add(-10*time.Minute)),
		scored("198.51.100.4", 40, now.Add(-20*time.Minute)),
		scored("198.51.100.5", 10, now),
	)
	// An action on an evicted indicator goes with it.
	if _, err := s.ApplyRecord(ctx, &act.Record{Target: "198.51.100.2", Outcome: act.OutcomeDone, At: now}, "r1"); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 10} { // at most limit per call
		if n, err := s.EnforceCap(ctx, limit); err != nil || n != 1 {
			t.Fatalf("limit %d: evicted %d, %v; want 1", limit, n, err)
		}
	}
	page, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ips(page.Rows), []string{"198.51.100.1", "198.51.100.4", "198.51.100.5"}; !slices.Equal(got, want) {
		t.Fatalf("kept %v, want %v (the two oldest score-10 indicators evicted)", got, want)
	}
	for _, ip := range []string{"198.51.100.2", "198.51.100.3"} {
		if _, err := s.Get(ctx, ip); err != ErrNotFound {
			t.Errorf("evicted %s: %v, want ErrNotFound", ip, err)
		}
		if n, _ := s.rdb.Exists(ctx, s.indicatorKeys(ip)...).Result(); n != 0 {
			t.Errorf("evicted %s left %d keys", ip, n)
		}
		if _, err := s.rdb.ZScore(ctx, s.seenIndexKey(), ip).Result(); err == nil {
			t.Errorf("evicted %s is still in the retention index", ip)
		}
	}
	if n, err := s.EnforceCap(ctx, 10); err != nil || n != 0 {
		t.Errorf("at the cap: evicted %d, %v", n, err)
	}
}

func TestEnforceCapKeepsAnIndicatorSightedAgain(t *testing.T) {
	s, c := testStore(t, StoreOptions{MaxIndicators: 1})
	ctx := context.Background()
	now := c.Now()
	mustApply(t, s, scored("198.51.100.1", 10, now.Add(-time.Hour)), scored("198.51.100.2", 50, now))
	// 198.51.100.1 is the lowest; it is sighted again with a higher score between the read of
	// the ranking and the eviction: the eviction must leave it be.
	read, err := s.readRankState(ctx, "198.51.100.1")
	if err != nil || read == nil {
		t.Fatal(read, err)
	}
	mustApply(t, s, scored("198.51.100.1", 80, now))
	args := make([]any, len(read))
	for i, v := range read {
		args[i] = v
	}
	gone, err := evictIndicator.Run(ctx, s.rdb, s.indicatorKeys("198.51.100.1"), args...).Int()
	if err != nil || gone != 0 {
		t.Fatalf("evict of a re-sighted indicator: %d %v, want kept (0)", gone, err)
	}
	if n, err := s.EnforceCap(ctx, 1); err != nil || n != 1 {
		t.Fatalf("evicted %d, %v", n, err)
	}
	page, _ := s.List(ctx, Filter{})
	if got := ips(page.Rows); !slices.Equal(got, []string{"198.51.100.1"}) {
		t.Errorf("kept %v, want the re-sighted, now higher-ranked 198.51.100.1", got)
	}
}

func TestGatedEventsAreCountedNotStored(t *testing.T) {
	for _, tc := range []struct {
		mode       string
		wantListed int64
	}{{GatedCount, 0}, {GatedStore, 3}} {
		t.Run(tc.mode, func(t *testing.T) {
			s, c := testStore(t, StoreOptions{Gated: tc.mode})
			ctx := context.Background()
			now := c.Now()
			for i, reason := range []string{"private", "private", "<script>x</script>"} {
				ev := scored(fmt.Sprintf("10.0.0.%d", i+1), 0, now, withProcessed(now), gated(reason))
				got, err := s.ApplyScored(ctx, ev)
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]Applied{true: AppliedGated, false: AppliedNew}[tc.mode == GatedCount]; got != want {
					t.Errorf("applied %q, want %q", got, want)
				}
			}
			mustApply(t, s, scored("198.51.100.9", 60, now, withProcessed(now)))
			st, err := s.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Indicators != tc.wantListed+1 {
				t.Errorf("indicators %d, want %d", st.Indicators, tc.wantListed+1)
			}
			cur := st.Minutes[59]
			if tc.mode == GatedCount {
				if cur.Events != 4 || cur.Gated != 3 {
					t.Errorf("current minute %+v, want 4 events of which 3 gated", cur)
				}
				want := []GatedReasonCount{{"private", 2}, {"other", 1}}
				if !slices.Equal(st.Gated, want) {
					t.Errorf("gated by reason %+v, want %+v (an unknown reason counted as other)", st.Gated, want)
				}
				if n := keysUnder(t, s); n != 7 { // rank, seen, minute, hour, the one indicator's 3
					t.Errorf("%d keys for one stored indicator and three counted events", n)
				}
			} else if len(st.Gated) != 0 || cur.Gated != 0 {
				t.Errorf("stored mode counted gated events: %+v %+v", st.Gated, cur)
			}
		})
	}
}

// TestSprayOfGatedAddressesStaysBounded sprays distinct private addresses through the handler,
// as a flood on the scored topic would, and checks the keys it leaves: a constant in count mode,
// the cap's worth in store mode.
func TestSprayOfGatedAddressesStaysBounded(t *testing.T) {
	const spray, limit = 2000, 500
	for _, mode := range []string{GatedCount, GatedStore} {
		t.Run(mode, func(t *testing.T) {
			s, c := testStore(t, StoreOptions{Gated: mode, MaxIndicators: limit})
			m := NewMetrics(prometheus.NewRegistry())
			h := NewScoredHandler(s, m, nil)
			now := c.Now()
			for i := range spray {
				ev := scored(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), 0, now.Add(time.Duration(i)*time.Second-time.Hour), withProcessed(now), gated("private"))
				if _, err := h.Handle(context.Background(), scoredMessage(ev, int64(i))); err != nil {
					t.Fatal(err)
				}
			}
			count, err := s.Count(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			keys := keysUnder(t, s)
			switch mode {
			case GatedCount:
				if count != 0 || keys != 2 || messages(m, InputScored, string(AppliedGated)) != spray {
					t.Errorf("count mode: %d indicators, %d keys, %v gated; want 0, 2 (a minute's and an hour's counters), %d",
						count, keys, messages(m, InputScored, string(AppliedGated)), spray)
				}
			case GatedStore:
				if count != limit || testutil.ToFloat64(m.Evicted) != spray-limit {
					t.Errorf("store mode: %d indicators, %v evicted; want %d, %d", count, testutil.ToFloat64(m.Evicted), limit, spray-limit)
				}
				// 3 keys per indicator (hash, history, seen ids), the two indexes and a minute counter.
				if keys > 3*limit+3 {
					t.Errorf("store mode: %d keys for %d indicators", keys, limit)
				}
				page, _ := s.List(context.Background(), Filter{Limit: 1, Offset: limit - 1})
				if len(page.Rows) != 1 || page.Rows[0].IP != fmt.Sprintf("10.0.%d.%d", (spray-limit)>>8&255, (spray-limit)&255) {
					t.Errorf("the oldest kept is %+v, want the %dth sprayed (the older ones evicted)", page.Rows, spray-limit)
				}
			}
		})
	}
}

func TestRankedPageShowsGatedCountsAndTheCap(t *testing.T) {
	srv, s, c := testServer(t)
	now := c.Now()
	mustApply(t, s, scored("10.1.2.3", 0, now, withProcessed(now), gated("private")),
		scored("192.168.0.1", 0, now, withProcessed(now), gated("private")),
		scored("100.64.0.1", 0, now, withProcessed(now), gated("cgnat")))
	_, body := get(t, srv.URL+"/")
	if !strings.Contains(body, "3 gated events in the last 24 hours were counted, not listed (private 2, cgnat 1)") {
		t.Errorf("ranked page without the gated counts:\n%s", body)
	}
	if strings.Contains(body, "10.1.2.3") || strings.Contains(body, "lowest-ranked are evicted") {
		t.Errorf("ranked page lists a gated address or says the view is full")
	}
	s.opts.MaxIndicators = 3
	if _, body = get(t, srv.URL+"/"); !strings.Contains(body, "The view holds at most 3 indicators") {
		t.Errorf("a full view does not say so")
	}
}

// TestEnforceCapUnderConcurrentWriters: workers adding new indicators and evicting at once leave
// the ranking at the cap (give or take the evictions of one race) and consistent with the
// indicators' keys.
func TestEnforceCapUnderConcurrentWriters(t *testing.T) {
	const workers, each, limit = 16, 100, 300
	s, c := testStore(t, StoreOptions{Gated: GatedStore, MaxIndicators: limit})
	h := NewScoredHandler(s, NewMetrics(prometheus.NewRegistry()), nil)
	now := c.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ev := scored(fmt.Sprintf("198.18.%d.%d", w, i), i%7*10, now.Add(-time.Duration(i)*time.Second))
				if _, err := h.Handle(context.Background(), scoredMessage(ev, int64(i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.EnforceCap(ctx, math.MaxInt); err != nil {
		t.Fatal(err)
	}
	ranked, err := s.rdb.ZRange(ctx, s.rankKey(), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(ranked) > limit || len(ranked) < limit-2*workers {
		t.Errorf("%d ranked, want %d (at most %d fewer)", len(ranked), limit, 2*workers)
	}
	for _, ip := range ranked {
		if n, _ := s.rdb.Exists(ctx, s.indicatorKey(ip)).Result(); n != 1 {
			t.Errorf("%s is ranked without its indicator", ip)
		}
	}
	var hashes int
	iter := s.rdb.Scan(ctx, 0, s.base()+"i:{*}", 1000).Iterator()
	for iter.Next(ctx) {
		hashes++
	}
	if hashes != len(ranked) {
		t.Errorf("%d indicator hashes for %d ranked: evictions left keys behind or dropped ranked ones", hashes, len(ranked))
	}
}
