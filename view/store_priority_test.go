package view

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

func TestPriorityOrders(t *testing.T) {
	now := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC).UnixMilli()
	h := time.Hour.Milliseconds()
	base := priorityInputs{Score: 80, LastSeenMS: now, Confidence: 50, Sources: 1, Sightings: 1}
	with := func(f func(*priorityInputs)) priorityInputs { in := base; f(&in); return in }
	for _, tc := range []struct {
		name         string
		high, low    priorityInputs
		creditDeltaH float64 // high's credit less low's, when checked
	}{
		{"higher score beats everything else", with(func(i *priorityInputs) {
			i.Score = 81
			i.Confidence, i.Sources, i.Sightings, i.LastSeenMS = 0, 0, 1, now-150*h
		}),
			with(func(i *priorityInputs) { i.Confidence, i.Sources, i.Sightings = 100, 16, 1<<30 }), 0},
		{"fresher beats stale at equal score and evidence", with(func(i *priorityInputs) { i.LastSeenMS = now }),
			with(func(i *priorityInputs) { i.LastSeenMS = now - 1 }), 0},
		{"more agreeing sources beat fewer", with(func(i *priorityInputs) { i.Sources = 3 }),
			with(func(i *priorityInputs) { i.Sources = 2 }), 12 * (2 - 1.584962500721156)},
		{"higher confidence beats lower", with(func(i *priorityInputs) { i.Confidence = 51 }),
			base, 0.48},
		{"more sightings beat fewer (half-doublings)", with(func(i *priorityInputs) { i.Sightings = 3 }),
			with(func(i *priorityInputs) { i.Sightings = 2 }), 2},
		{"fresh, confirmed, often seen beats stale single-source of the same score",
			with(func(i *priorityInputs) { i.Confidence, i.Sources, i.Sightings = 90, 3, 40 }),
			with(func(i *priorityInputs) { i.LastSeenMS, i.Confidence, i.Sources, i.Sightings = now-24*h, 30, 1, 1 }), 0},
		{"a day's freshness outweighs a weak edge in evidence", with(func(i *priorityInputs) { i.Confidence = 40 }),
			with(func(i *priorityInputs) { i.LastSeenMS = now - 24*h; i.Confidence = 60 }), 0},
		{"strong evidence outweighs a few hours", with(func(i *priorityInputs) { i.LastSeenMS = now - 6*h; i.Sources = 4 }),
			with(func(i *priorityInputs) { i.Sources = 1 }), 0},
		{"score 0 stays below score 1", with(func(i *priorityInputs) { i.Score = 1; i.LastSeenMS = priorityEpoch.UnixMilli() }),
			with(func(i *priorityInputs) { i.Score = 0; i.Confidence, i.Sources, i.Sightings = 100, 16, 1<<40 }), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if hp, lp := tc.high.Priority(), tc.low.Priority(); hp <= lp {
				t.Errorf("priority %d <= %d: %+v should outrank %+v", hp, lp, tc.high, tc.low)
			}
			if tc.creditDeltaH != 0 {
				if d := tc.high.CreditHours() - tc.low.CreditHours(); d < tc.creditDeltaH-1e-9 || d > tc.creditDeltaH+1e-9 {
					t.Errorf("credit difference %.6fh, want %.6fh", d, tc.creditDeltaH)
				}
			}
		})
	}
}

func TestPriorityBandsHoldTheScore(t *testing.T) {
	for _, in := range []priorityInputs{
		{Score: 0, LastSeenMS: 0},
		{Score: 0, LastSeenMS: time.Date(2299, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), Confidence: 100, Sources: 99, Sightings: 1 << 62},
		{Score: 57, LastSeenMS: time.Now().UnixMilli(), Confidence: 33, Sources: 2, Sightings: 9},
		{Score: 100, LastSeenMS: time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), Confidence: 100, Sources: 16, Sightings: 1 << 40},
		{Score: 140, LastSeenMS: -5, Confidence: -3, Sources: -1, Sightings: -7},
	} {
		p := in.Priority()
		want := clampScore(in.Score)
		if got := int(p / priorityScale); got != want {
			t.Errorf("%+v: priority %d is in score %d's band, want %d", in, p, got, want)
		}
		if float64(p) != float64(int64(float64(p))) || p >= 1<<53 {
			t.Errorf("%+v: priority %d is not exact in a float64", in, p)
		}
	}
}

func TestSightingSteps(t *testing.T) {
	want := map[int64]int{0: 0, 1: 2, 2: 3, 3: 4, 4: 4, 5: 5, 7: 6, 10: 6, 11: 7, 15: 8, 22: 9, 31: 10, 1023: 20, -3: 0}
	for n, w := range want {
		if got := sightingSteps(n); got != w {
			t.Errorf("sightingSteps(%d) = %d, want %d", n, got, w)
		}
	}
}

func TestStoreRanksByPriority(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	ctx := context.Background()
	now := c.Now()
	agree := func(conf int, by ...string) scoredOpt {
		return func(e *event.Scored) { e.Confidence, e.ValidatedBy = conf, by }
	}
	mustApply(t, s,
		scored("198.51.100.1", 80, now.Add(-30*time.Hour), agree(30, "criminalip")),                         // stale, single source
		scored("198.51.100.2", 80, now.Add(-time.Minute), agree(90, "abuseipdb", "criminalip", "otx")),      // fresh, confirmed
		scored("198.51.100.3", 80, now.Add(-time.Minute), agree(90, "abuseipdb", "criminalip")),             // one source fewer
		scored("198.51.100.4", 80, now.Add(-4*time.Hour), agree(90, "abuseipdb", "criminalip", "otx")),      // four hours staler
		scored("198.51.100.5", 81, now.Add(-100*time.Hour)),                                                 // higher score wins
		scored("198.51.100.6", 20, now, agree(100, "abuseipdb", "criminalip", "otx", "virustotal")),         // low
		scored("198.51.100.3", 80, now.Add(-time.Minute-time.Second), agree(90, "abuseipdb", "criminalip")), // seen again: more sightings
	)
	page, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"198.51.100.5", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.1", "198.51.100.6"}
	if got := ips(page.Rows); !slices.Equal(got, want) {
		t.Fatalf("ranking %v, want %v", got, want)
	}
	for i, r := range page.Rows {
		if i > 0 && r.Priority >= page.Rows[i-1].Priority {
			t.Errorf("row %d (%s) priority %d not below %d", i, r.IP, r.Priority, page.Rows[i-1].Priority)
		}
		rank, err := s.rdb.ZScore(ctx, s.rankKey(), r.IP).Result()
		if err != nil || int64(rank) != r.Priority {
			t.Errorf("%s: ranked at %.0f (%v), row says %d", r.IP, rank, err, r.Priority)
		}
	}
	if r := page.Rows[1]; r.Confidence != 90 || len(r.ValidatedBy) != 3 || r.CreditHours != 71.2 {
		t.Errorf("row %+v: want confidence 90, 3 validators, credit 71.2h (43.2 + 24 + 4)", r)
	}

	// Severity filters still select contiguous priority bands.
	for sev, wantIPs := range map[string][]string{
		"critical": {"198.51.100.5", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.1"},
		"low":      {"198.51.100.6"},
		"medium":   {},
	} {
		page, err := s.List(ctx, Filter{Severity: []string{sev}})
		if err != nil {
			t.Fatal(err)
		}
		if got := ips(page.Rows); !slices.Equal(got, wantIPs) || page.Total != int64(len(wantIPs)) || page.Scanned != len(wantIPs) {
			t.Errorf("severity %s: %v (total %d, scanned %d), want %v, each scanned once", sev, got, page.Total, page.Scanned, wantIPs)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Scores[8].Count != 5 || st.Scores[2].Count != 1 {
		t.Errorf("score buckets %+v, want 5 in 80-89 and 1 in 20-29", st.Scores)
	}
}

func TestSweepMigratesTheLegacyRanking(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	ctx := context.Background()
	now := c.Now()
	mustApply(t, s, scored("198.51.100.1", 90, now.Add(-time.Hour)), scored("198.51.100.2", 40, now))
	// A view before the priority: the same indicators ranked by score×1e10 + seconds under
	// <prefix>:view:rank, plus one whose keys have expired since.
	legacy := []redis.Z{
		{Score: 90e10 + float64(now.Add(-time.Hour).Unix()), Member: "198.51.100.1"},
		{Score: 40e10 + float64(now.Unix()), Member: "198.51.100.2"},
		{Score: 70e10 + float64(now.Unix()), Member: "198.51.100.3"},
	}
	if err := s.rdb.Del(ctx, s.rankKey(), s.seenIndexKey()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.ZAdd(ctx, s.legacyRankKey(), legacy...).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := s.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ips(page.Rows); !slices.Equal(got, []string{"198.51.100.1", "198.51.100.2"}) || page.Total != 2 {
		t.Errorf("after migration: %v (total %d), want both live indicators by priority", got, page.Total)
	}
	if n, _ := s.rdb.Exists(ctx, s.legacyRankKey()).Result(); n != 0 {
		t.Error("the legacy ranking is still there")
	}
	if n, _ := s.rdb.ZCard(ctx, s.seenIndexKey()).Result(); n != 2 {
		t.Errorf("retention index holds %d, want 2", n)
	}
}
