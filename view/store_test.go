package view

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/health"
)

func TestStoreRanksByScoreThenRecency(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	now := c.Now()
	mustApply(t, s,
		scored("198.51.100.1", 50, now.Add(-10*time.Minute)),
		scored("198.51.100.2", 90, now.Add(-30*time.Minute)),
		scored("198.51.100.3", 50, now.Add(-1*time.Minute)), // same score, seen later: ahead of .1
		scored("198.51.100.4", 10, now),
		scored("2001:db8::1", 50, now.Add(-5*time.Minute)),
	)
	page, err := s.List(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"198.51.100.2", "198.51.100.3", "2001:db8::1", "198.51.100.1", "198.51.100.4"}
	if got := ips(page.Rows); !slices.Equal(got, want) {
		t.Fatalf("ranking %v, want %v", got, want)
	}
	if page.Total != 5 || page.Truncated {
		t.Errorf("total %d truncated %v, want 5 false", page.Total, page.Truncated)
	}
	r := page.Rows[0]
	if r.Score != 90 || r.Severity != event.SeverityCritical || r.Sightings != 1 || !r.LastSeen.Equal(now.Add(-30*time.Minute)) {
		t.Errorf("row %+v", r)
	}

	// A new sighting with a higher score moves an indicator up; a lower one down.
	mustApply(t, s, scored("198.51.100.4", 95, now), scored("198.51.100.2", 20, now))
	page, _ = s.List(context.Background(), Filter{Limit: 2})
	if got := ips(page.Rows); !slices.Equal(got, []string{"198.51.100.4", "198.51.100.3"}) {
		t.Fatalf("after rescoring: %v", got)
	}
	page, _ = s.List(context.Background(), Filter{Limit: 2, Offset: 4})
	if got := ips(page.Rows); !slices.Equal(got, []string{"198.51.100.2"}) {
		t.Fatalf("last page: %v", got)
	}
}

func TestStoreLatestSightingWinsByObservedTime(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	now := c.Now()
	ip := "203.0.113.7"
	mustApply(t, s, scored(ip, 70, now.Add(-time.Minute), withISP("Example Hosting"), withCountry("de"), withAS(64500, "EXAMPLE-AS"), withTags("tor", "scanner")))
	// Completed out of order: an older sighting arrives later. It counts, moves first_seen, and
	// does not replace the current score.
	mustApply(t, s, scored(ip, 10, now.Add(-time.Hour)))
	// A newer sighting without ISP, geo or AS (its provider failed) keeps what was known.
	mustApply(t, s, scored(ip, 30, now, withTags("vpn"), func(ev *event.Scored) {
		ev.Confidence, ev.ValidatedBy = 64, []string{"otx", "abuseipdb"}
	}))
	ind, err := s.Get(context.Background(), ip)
	if err != nil {
		t.Fatal(err)
	}
	if ind.Score != 30 || ind.Severity != event.SeverityLow || !slices.Equal(ind.Tags, []string{"vpn"}) {
		t.Errorf("current: score %d %s tags %v, want the newest sighting's 30 low [vpn]", ind.Score, ind.Severity, ind.Tags)
	}
	if ind.Confidence != 64 || !slices.Equal(ind.ValidatedBy, []string{"abuseipdb", "otx"}) {
		t.Errorf("agreement: confidence %d validated by %v, want the newest sighting's", ind.Confidence, ind.ValidatedBy)
	}
	if ind.Sightings != 3 || !ind.FirstSeen.Equal(now.Add(-time.Hour)) || !ind.LastSeen.Equal(now) {
		t.Errorf("sightings %d first %s last %s", ind.Sightings, ind.FirstSeen, ind.LastSeen)
	}
	if ind.ISP != "Example Hosting" || ind.Country != "DE" || ind.ASN != 64500 || ind.ASOrg != "EXAMPLE-AS" {
		t.Errorf("descriptions lost: %+v", ind.Row)
	}
	if ind.Latest == nil || ind.Latest.Score != 30 {
		t.Fatalf("latest event %+v", ind.Latest)
	}
	if len(ind.History) != 3 || ind.History[0].Score != 30 || ind.History[1].Score != 70 || ind.History[2].Score != 10 {
		t.Errorf("history not newest first: %+v", ind.History)
	}
	// Any spelling finds it.
	if _, err := s.Get(context.Background(), "::ffff:203.0.113.7"); err != nil {
		t.Errorf("mapped spelling: %v", err)
	}
	if _, err := s.Get(context.Background(), "203.0.113.8"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown indicator: %v, want ErrNotFound", err)
	}
}

// TestStoreRevisionUpdatesWithoutASighting: a revision (a parked lookup finished) changes the
// indicator's verdict and history, counts no sighting, and a redelivered revision changes nothing.
func TestStoreRevisionUpdatesWithoutASighting(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	now := c.Now()
	ip := "203.0.113.9"
	first := scored(ip, 30, now)
	mustApply(t, s, first)
	rev := scored(ip, 88, now, scoredOpt(func(ev *event.Scored) { ev.EventID, ev.Revision = first.EventID, 1 }))
	mustApply(t, s, rev)
	if got, err := s.ApplyScored(context.Background(), rev); err != nil || got != AppliedDuplicate {
		t.Fatalf("redelivered revision: %v %v", got, err)
	}
	ind, err := s.Get(context.Background(), ip)
	if err != nil {
		t.Fatal(err)
	}
	if ind.Score != 88 || ind.Sightings != 1 || len(ind.History) != 2 || ind.History[0].Revision != 1 || ind.History[1].Revision != 0 {
		t.Fatalf("score %d sightings %d history %+v; want the revision's 88, one sighting, both in the history", ind.Score, ind.Sightings, ind.History)
	}
}

func TestStoreDescriptionsFallBackToProviders(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	mustApply(t, s, scored("192.0.2.9", 40, c.Now(), withProviders(map[string]*event.ProviderOutcome{
		"zeta":       {Status: event.StatusOK, Result: &event.Intel{ISP: "Zeta ISP", CountryISO: "FR"}},
		"criminalip": {Status: event.StatusOK, Result: &event.Intel{ISP: "CIP ISP", ASNumber: 65001, ASOrganization: "CIP-AS", City: "Lyon"}},
	})))
	ind, err := s.Get(context.Background(), "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	if ind.ISP != "CIP ISP" || ind.Country != "FR" || ind.ASN != 65001 || ind.ASOrg != "CIP-AS" || ind.City != "Lyon" {
		t.Errorf("row %+v", ind.Row)
	}
}

func TestStoreRedeliveryDoesNotDoubleCount(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	now := c.Now()
	ip := "198.51.100.50"
	var evs []*event.Scored
	for i := range 5 {
		evs = append(evs, scored(ip, 60+i, now.Add(-time.Duration(5-i)*time.Second), withProcessed(now)))
	}
	// Every event delivered four times, concurrently, as a rebalance or a crash would.
	var wg sync.WaitGroup
	results := make(chan Applied, 20)
	for range 4 {
		for _, ev := range evs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cp := *ev
				a, err := s.ApplyScored(context.Background(), &cp)
				if err != nil {
					t.Error(err)
				}
				results <- a
			}()
		}
	}
	wg.Wait()
	close(results)
	counts := map[Applied]int{}
	for a := range results {
		counts[a]++
	}
	if counts[AppliedNew] != 5 || counts[AppliedDuplicate] != 15 {
		t.Errorf("outcomes %v, want 5 applied and 15 duplicates", counts)
	}
	ind, err := s.Get(context.Background(), ip)
	if err != nil {
		t.Fatal(err)
	}
	if ind.Sightings != 5 || len(ind.History) != 5 || ind.Score != 64 {
		t.Errorf("sightings %d history %d score %d, want 5 5 64", ind.Sightings, len(ind.History), ind.Score)
	}
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Minutes[len(st.Minutes)-1].Events; got != 5 {
		t.Errorf("events this minute %d, want 5", got)
	}
}

func TestStoreDedupWindowIsBounded(t *testing.T) {
	s, c := testStore(t, StoreOptions{DedupEvents: 3})
	ip := "198.51.100.60"
	var evs []*event.Scored
	for i := range 5 {
		// All within one millisecond, with ids whose lexical order is not their arrival order
		// (tie-10 < tie-8): the window must still keep the newest.
		ev := scored(ip, 50, c.Now())
		ev.EventID = fmt.Sprintf("tie-%d", 8+i)
		evs = append(evs, ev)
	}
	mustApply(t, s, evs...)
	n, err := s.rdb.ZCard(context.Background(), s.indicatorKeys(ip)[3]).Result()
	if err != nil || n != 3 {
		t.Fatalf("remembered ids %d (%v), want 3", n, err)
	}
	// The newest are remembered; the oldest fell out of the window and would count again.
	if a, _ := s.ApplyScored(context.Background(), evs[4]); a != AppliedDuplicate {
		t.Errorf("newest redelivered: %s", a)
	}
	if a, _ := s.ApplyScored(context.Background(), evs[0]); a != AppliedNew {
		t.Errorf("oldest redelivered beyond the window: %s, want applied", a)
	}
}

// TestStoreDedupWindowSharedByRecordsAndEvents fills an indicator's dedup window with audit
// record digests before its first scored event: the event id must be remembered like any other
// arrival, not trimmed at once because record digests score higher.
func TestStoreDedupWindowSharedByRecordsAndEvents(t *testing.T) {
	s, c := testStore(t, StoreOptions{DedupEvents: 3})
	ctx := context.Background()
	ip := "198.51.100.61"
	for i := range 3 {
		rec := &act.Record{SchemaVersion: "1", At: c.Now(), Outcome: act.OutcomeDone, Kind: "ticket", Target: ip, Ref: fmt.Sprintf("SOC-%d", i), Worker: "w"}
		if a, err := s.ApplyRecord(ctx, rec, fmt.Sprintf("digest-%d", i)); err != nil || a != AppliedNew {
			t.Fatalf("record %d: %s %v", i, a, err)
		}
	}
	ev := scored(ip, 70, c.Now())
	for i, want := range []Applied{AppliedNew, AppliedDuplicate} {
		cp := *ev
		if a, err := s.ApplyScored(ctx, &cp); err != nil || a != want {
			t.Fatalf("delivery %d: %s %v, want %s", i+1, a, err, want)
		}
	}
	ind, err := s.Get(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	if ind.Sightings != 1 || len(ind.History) != 1 {
		t.Errorf("sightings %d history %d, want 1 1", ind.Sightings, len(ind.History))
	}
	// The window now holds the two newest digests and the event: the oldest digest fell out.
	members, err := s.rdb.ZRange(ctx, s.indicatorKeys(ip)[3], 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a:digest-1", "a:digest-2", "e:" + ev.EventID}; !slices.Equal(members, want) {
		t.Errorf("dedup window %q, want %q", members, want)
	}
	if h, err := s.rdb.HExists(ctx, s.indicatorKey(ip), "seen_seq").Result(); err != nil || h {
		t.Errorf("indicator hash holds seen_seq (%v): the dedup order must live in the set only", err)
	}
}

// TestStoreSeverityFollowsScore stores the severity event.SeverityOf gives the score, whatever
// severity the producer wrote.
func TestStoreSeverityFollowsScore(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	ctx := context.Background()
	ev := scored("198.51.100.62", 91, c.Now())
	ev.Severity = event.SeverityLow
	mustApply(t, s, ev)
	ind, err := s.Get(ctx, "198.51.100.62")
	if err != nil {
		t.Fatal(err)
	}
	if ind.Severity != event.SeverityCritical || len(ind.History) != 1 || ind.History[0].Severity != event.SeverityCritical {
		t.Errorf("severity %s history %+v, want critical", ind.Severity, ind.History)
	}
	p, err := s.List(ctx, Filter{Severity: []string{"critical"}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := ips(p.Rows); len(got) != 1 || got[0] != "198.51.100.62" {
		t.Errorf("critical rows %v", got)
	}
}

func TestSeverityBoundsMatchSeverityOf(t *testing.T) {
	for _, sev := range []event.Severity{event.SeverityInfo, event.SeverityLow, event.SeverityMedium, event.SeverityHigh, event.SeverityCritical} {
		lo, hi := severityBounds(sev)
		if lo > hi {
			t.Fatalf("%s: bounds %d-%d", sev, lo, hi)
		}
		for score := 0; score <= 100; score++ {
			if in := score >= lo && score <= hi; in != (event.SeverityOf(score) == sev) {
				t.Errorf("%s bounds %d-%d disagree with SeverityOf(%d) = %s", sev, lo, hi, score, event.SeverityOf(score))
			}
		}
	}
}

func TestStoreConcurrentUpdatesLeaveRankMatchingIndicator(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	now := c.Now()
	ips := []string{"198.51.100.70", "198.51.100.71"}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 25 {
				ev := scored(ips[r.IntN(2)], r.IntN(101), now.Add(-time.Duration(r.IntN(3600))*time.Second))
				if _, err := s.ApplyScored(context.Background(), ev); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, ip := range ips {
		ind, err := s.Get(context.Background(), ip)
		if err != nil {
			t.Fatal(err)
		}
		rank, err := s.rdb.ZScore(context.Background(), s.rankKey(), ip).Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := float64(ind.Priority); rank != want {
			t.Errorf("%s: rank %.0f, want priority %.0f from score %d last seen %s", ip, rank, want, ind.Score, ind.LastSeen)
		}
		if want := min(ind.Sightings, int64(s.opts.History)); int64(len(ind.History)) != want {
			t.Errorf("%s: %d sightings but %d history entries, want %d (history capped at %d)", ip, ind.Sightings, len(ind.History), want, s.opts.History)
		}
	}
}

func TestStoreFilters(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	now := c.Now()
	mustApply(t, s,
		scored("185.220.101.45", 92, now.Add(-2*time.Minute), withTags("tor", "scanner"), withCountry("DE"), withISP("Example Hosting GmbH")),
		scored("185.220.101.46", 85, now.Add(-3*time.Hour), withTags("tor"), withCountry("DE"), withISP("Example Hosting GmbH")),
		scored("45.155.205.233", 65, now.Add(-30*time.Minute), withTags("scanner"), withCountry("NL"), withISP("Other Networks BV")),
		scored("203.0.113.10", 45, now.Add(-6*24*time.Hour), withTags("vpn"), withCountry("US"), withISP("VPN Corp")),
		scored("2001:db8::5", 5, now.Add(-time.Minute), withCountry("US")),
	)
	cases := []struct {
		name string
		f    Filter
		want []string
	}{
		{"critical", Filter{Severity: []string{"critical"}}, []string{"185.220.101.45", "185.220.101.46"}},
		{"high or info", Filter{Severity: []string{"info", "high"}}, []string{"45.155.205.233", "2001:db8::5"}},
		{"tag", Filter{Tag: "SCANNER"}, []string{"185.220.101.45", "45.155.205.233"}},
		{"country", Filter{Country: "us"}, []string{"203.0.113.10", "2001:db8::5"}},
		{"isp substring", Filter{ISP: "hosting"}, []string{"185.220.101.45", "185.220.101.46"}},
		{"last hour", Filter{Since: time.Hour}, []string{"185.220.101.45", "45.155.205.233", "2001:db8::5"}},
		{"ip prefix", Filter{Query: "185.220."}, []string{"185.220.101.45", "185.220.101.46"}},
		{"cidr", Filter{Query: "45.155.0.0/16"}, []string{"45.155.205.233"}},
		{"ipv6 prefix", Filter{Query: "2001:db8:"}, []string{"2001:db8::5"}},
		{"combined", Filter{Tag: "tor", Since: time.Hour}, []string{"185.220.101.45"}},
		{"none", Filter{Tag: "botnet"}, nil},
		{"paged", Filter{Country: "DE", Limit: 1, Offset: 1}, []string{"185.220.101.46"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.List(context.Background(), tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := ips(page.Rows); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if tc.name == "paged" && page.Total != 2 {
				t.Errorf("total %d, want 2 (both DE matches counted)", page.Total)
			}
		})
	}
}

func TestStoreFilterScanIsBounded(t *testing.T) {
	s, c := testStore(t, StoreOptions{ScanLimit: 3})
	now := c.Now()
	for i, score := range []int{95, 90, 85, 70, 65, 30} {
		mustApply(t, s, scored(fmt.Sprintf("192.0.2.%d", i+1), score, now, withTags("tor")))
	}
	page, err := s.List(context.Background(), Filter{Tag: "tor"})
	if err != nil {
		t.Fatal(err)
	}
	if page.Scanned != 3 || !page.Truncated || page.Total != 3 || len(page.Rows) != 3 {
		t.Errorf("scanned %d truncated %v total %d rows %d, want 3 true 3 3", page.Scanned, page.Truncated, page.Total, len(page.Rows))
	}
	// Severity narrows the scan to its score range: the bound applies within it.
	page, err = s.List(context.Background(), Filter{Severity: []string{"low"}, Tag: "tor"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ips(page.Rows); !slices.Equal(got, []string{"192.0.2.6"}) || page.Truncated {
		t.Errorf("low: %v truncated %v, want [192.0.2.6] false", got, page.Truncated)
	}
}

func TestStoreRetentionSweep(t *testing.T) {
	s, c := testStore(t, StoreOptions{Retention: time.Hour})
	ctx := context.Background()
	now := c.Now()
	mustApply(t, s, scored("198.51.100.80", 90, now), scored("198.51.100.81", 50, now.Add(-50*time.Minute)))
	if a, err := s.ApplyScored(ctx, scored("198.51.100.82", 99, now.Add(-2*time.Hour))); err != nil || a != AppliedExpired {
		t.Fatalf("an event older than the retention: %s %v, want expired", a, err)
	}
	if n, _ := s.Count(ctx); n != 2 {
		t.Fatalf("%d indicators, want 2", n)
	}
	c.Add(20 * time.Minute) // .81 is now 70 minutes old
	removed, err := s.Sweep(ctx)
	if err != nil || removed != 1 {
		t.Fatalf("sweep removed %d (%v), want 1", removed, err)
	}
	if _, err := s.Get(ctx, "198.51.100.81"); !errors.Is(err, ErrNotFound) {
		t.Errorf("swept indicator still readable: %v", err)
	}
	page, _ := s.List(ctx, Filter{})
	if got := ips(page.Rows); !slices.Equal(got, []string{"198.51.100.80"}) || page.Total != 1 {
		t.Errorf("after sweep: %v total %d", got, page.Total)
	}
	// Seen again before its time ran out: the sweep keeps it.
	c.Add(30 * time.Minute)
	mustApply(t, s, scored("198.51.100.80", 90, c.Now()))
	c.Add(40 * time.Minute)
	if removed, err := s.Sweep(ctx); err != nil || removed != 0 {
		t.Errorf("re-sighted indicator swept: %d %v", removed, err)
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Errorf("%d indicators, want 1", n)
	}
}

func TestStoreRetentionTTLExpiresKeysInRedis(t *testing.T) {
	s, _ := testStore(t, StoreOptions{Retention: 3 * time.Second, Now: time.Now})
	ctx := context.Background()
	ip := "198.51.100.90"
	// Observed 1.5 s ago with 3 s retention: its keys expire in Redis 1.5 s from now.
	mustApply(t, s, scored(ip, 90, time.Now().Add(-1500*time.Millisecond)))
	if _, err := s.ApplyRecord(ctx, &act.Record{Target: ip, Outcome: act.OutcomeDone, At: time.Now()}, "r1"); err != nil {
		t.Fatal(err)
	}
	ttl, err := s.rdb.PTTL(ctx, s.indicatorKey(ip)).Result()
	if err != nil || ttl <= 0 || ttl > 1600*time.Millisecond {
		t.Fatalf("TTL %s (%v), want about 1.5s", ttl, err)
	}
	time.Sleep(3200 * time.Millisecond)
	for _, k := range s.indicatorKeys(ip) {
		if n, _ := s.rdb.Exists(ctx, k).Result(); n != 0 {
			t.Errorf("%s still exists after the retention", k)
		}
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Fatalf("the ranking lost the indicator before the sweep: %d", n)
	}
	if removed, err := s.Sweep(ctx); err != nil || removed != 1 {
		t.Fatalf("sweep removed %d (%v), want 1", removed, err)
	}
	if n, _ := s.Count(ctx); n != 0 {
		t.Errorf("%d left in the ranking", n)
	}
}

func TestStoreHistoryAndActionsAreCapped(t *testing.T) {
	s, c := testStore(t, StoreOptions{History: 3})
	ctx := context.Background()
	ip := "198.51.100.100"
	for i := range 5 {
		mustApply(t, s, scored(ip, 10*i, c.Now().Add(time.Duration(i)*time.Second), withID(fmt.Sprintf("h-%d", i))))
		rec := &act.Record{Target: ip, Outcome: act.OutcomeDone, Kind: "block", Playbook: "pb", Step: fmt.Sprint(i), At: c.Now().Add(time.Duration(i) * time.Second)}
		if _, err := s.ApplyRecord(ctx, rec, "d"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	ind, err := s.Get(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	var hist []string
	for _, h := range ind.History {
		hist = append(hist, h.EventID)
	}
	if !slices.Equal(hist, []string{"h-4", "h-3", "h-2"}) {
		t.Errorf("history %v, want the newest three", hist)
	}
	var steps []string
	for _, a := range ind.Actions {
		steps = append(steps, a.Step)
	}
	if !slices.Equal(steps, []string{"4", "3", "2"}) {
		t.Errorf("actions %v, want the newest three", steps)
	}
	if ind.Sightings != 5 {
		t.Errorf("sightings %d, want 5 (the cap bounds history, not the count)", ind.Sightings)
	}
}

func TestStoreActions(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	ctx := context.Background()
	ip := "198.51.100.110"
	until := c.Now().Add(time.Hour)
	rec := &act.Record{SchemaVersion: "1", At: c.Now(), Outcome: act.OutcomeDone, Kind: "block", Playbook: "block-critical",
		Step: "edl", Sink: "edl", Target: ip, Ref: "edl:1", Until: &until, Worker: "threatpipe-act-block"}
	// The audit record arrives before the indicator's scored event: the topics are independent.
	if a, err := s.ApplyRecord(ctx, rec, "digest-1"); err != nil || a != AppliedNew {
		t.Fatalf("%s %v", a, err)
	}
	if a, err := s.ApplyRecord(ctx, rec, "digest-1"); err != nil || a != AppliedDuplicate {
		t.Fatalf("redelivered record: %s %v, want duplicate", a, err)
	}
	// Repeats within the window (a hot indicator's every sighting) are counted, not listed.
	for i := range 5 {
		rep := *rec
		rep.Outcome, rep.At, rep.Ref, rep.Until = act.OutcomeSuppressed, c.Now().Add(time.Duration(i+1)*time.Second), "", nil
		if _, err := s.ApplyRecord(ctx, &rep, fmt.Sprint("rep-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(ctx, ip); !errors.Is(err, ErrNotFound) {
		t.Fatalf("actions alone make no indicator: %v", err)
	}
	mustApply(t, s, scored(ip, 88, c.Now()))
	ind, err := s.Get(ctx, ip)
	if err != nil {
		t.Fatal(err)
	}
	if len(ind.Actions) != 1 || ind.Actions[0].Ref != "edl:1" || ind.Actions[0].Until == nil || !ind.Actions[0].Until.Equal(until) {
		t.Errorf("actions %+v", ind.Actions)
	}
	if len(ind.ActionCounts) != 2 || ind.ActionCounts["done"] != 1 || ind.ActionCounts["suppressed_window"] != 5 {
		t.Errorf("action counts %v, want done 1 and suppressed_window 5", ind.ActionCounts)
	}
	// The scored event extended the actions' lifetime to the indicator's.
	for _, k := range s.indicatorKeys(ip) {
		if ttl := s.rdb.PTTL(ctx, k).Val(); ttl < 167*time.Hour {
			t.Errorf("%s TTL %s", k, ttl)
		}
	}
}

func TestStoreStats(t *testing.T) {
	s, c := testStore(t, StoreOptions{HealthMaxAge: time.Minute})
	ctx := context.Background()
	now := c.Now()
	for i, score := range []int{0, 9, 10, 55, 99, 100} {
		mustApply(t, s, scored(fmt.Sprintf("192.0.2.%d", i+1), score, now.Add(-2*time.Hour), withProcessed(now.Add(-2*time.Hour))))
	}
	hit := &event.ProviderOutcome{Status: event.StatusOK, Cache: &event.CacheInfo{Hit: true, AgeSeconds: 30}}
	joined := &event.ProviderOutcome{Status: event.StatusOK, Cache: &event.CacheInfo{Joined: true}}
	lookup := &event.ProviderOutcome{Status: event.StatusOK}
	failed := &event.ProviderOutcome{Status: event.StatusFailed, Error: "timeout"}
	spent := &event.ProviderOutcome{Status: event.StatusQuotaExhausted}
	mustApply(t, s,
		scored("198.51.100.1", 50, now, withProcessed(now), withProviders(map[string]*event.ProviderOutcome{"a": hit, "b": hit})),
		scored("198.51.100.2", 50, now, withProcessed(now), withProviders(map[string]*event.ProviderOutcome{"a": lookup, "b": spent})),
		scored("198.51.100.3", 50, now, withProcessed(now.Add(-5*time.Minute)), withProviders(map[string]*event.ProviderOutcome{"a": joined, "b": failed})),
	)
	hs := health.NewStore(s.rdb, s.prefix)
	for _, sn := range []health.Snapshot{
		{Component: health.ComponentProvider, Name: "criminalip", Owner: "a-1", At: time.Now().Add(-10 * time.Second), Status: "ok", QuotaUsed: 800, QuotaLimit: 1000},
		{Component: health.ComponentProvider, Name: "criminalip", Owner: "b-2", At: time.Now(), Status: "degraded", QuotaUsed: 850, QuotaLimit: 1000},
		{Component: health.ComponentProvider, Name: "other", Owner: "a-1", At: time.Now(), Status: "ok", QuotaUsed: 10, QuotaLimit: 100},
		{Component: health.ComponentSink, Name: "edl", Owner: "a-1", At: time.Now(), Status: "ok"},
	} {
		if err := hs.Put(ctx, sn, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantBuckets := []int64{2, 1, 0, 0, 0, 4, 0, 0, 0, 2} // 55 and the three 50s
	for i, b := range st.Scores {
		if b.Count != wantBuckets[i] || b.From != i*10 {
			t.Errorf("bucket %d-%d: %d, want %d", b.From, b.To, b.Count, wantBuckets[i])
		}
	}
	if st.Scores[9].To != 100 || st.Indicators != 9 {
		t.Errorf("last bucket to %d, indicators %d", st.Scores[9].To, st.Indicators)
	}
	if len(st.Minutes) != 60 {
		t.Fatalf("%d minutes", len(st.Minutes))
	}
	cur, past := st.Minutes[59], st.Minutes[54]
	if cur.Events != 2 || cur.Hits != 2 || cur.Lookups != 1 || cur.Joined != 0 || cur.HitRate == nil || *cur.HitRate != 2.0/3 {
		t.Errorf("current minute %+v", cur)
	}
	if past.Events != 1 || past.Joined != 1 || past.Lookups != 1 || past.HitRate == nil || *past.HitRate != 0 {
		t.Errorf("five minutes ago %+v", past)
	}
	if st.Minutes[58].HitRate != nil || st.Minutes[58].Events != 0 {
		t.Errorf("quiet minute %+v", st.Minutes[58])
	}
	if !st.Minutes[59].Start.Equal(now.Truncate(time.Minute)) {
		t.Errorf("current minute starts %s", st.Minutes[59].Start)
	}
	if len(st.Quotas) != 2 || st.Quotas[0].Provider != "criminalip" || st.Quotas[0].Used != 850 || !st.Quotas[0].Warning || st.Quotas[1].Warning {
		t.Errorf("quotas %+v", st.Quotas)
	}
}
