package health

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// newStore returns a store on the real Redis under a fresh prefix, emptied when the test ends.
func newStore(t *testing.T) (*Store, *redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: pipelinetest.Redis(t)})
	prefix := pipelinetest.Name(t, "health")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+":*", 500).Iterator()
		for iter.Next(ctx) {
			_ = rdb.Del(ctx, iter.Val()).Err()
		}
		_ = rdb.Close()
	})
	return NewStore(rdb, prefix), rdb, prefix
}

func snap(component, name, owner string, at time.Time) Snapshot {
	return Snapshot{Component: component, Name: name, Owner: owner, Role: "enrich", At: at.UTC(), Status: StatusOK,
		Calls: map[string]int64{"ok": 3}}
}

func TestPutAllRoundTripSortedAcrossOwnersAndIntegrations(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	full := Snapshot{
		Component: ComponentProvider, Name: "criminalip", Owner: "host-b-2", Role: "enrich", At: now.UTC(), Status: StatusDegraded,
		Breaker: "closed", QuotaUsed: 850, QuotaLimit: 1000, QuotaReset: now.Add(time.Hour).UTC(), QuotaWarnRatio: 0.8,
		Calls: map[string]int64{"ok": 840, "timeout": 10}, Errors: 10, Timeouts: 10,
		LastError: "criminalip: transient: request timed out", LastErrorAt: now.Add(-time.Second).UTC(),
	}
	for _, sn := range []Snapshot{
		snap(ComponentSink, "edl", "host-a-1", now), full, snap(ComponentProvider, "criminalip", "host-a-1", now),
		snap(ComponentProvider, "abuseipdb", "host-a-1", now),
	} {
		if err := s.Put(ctx, sn, ReportTTL); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.All(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, g := range got {
		order = append(order, g.Component+"/"+g.Name+"/"+g.Owner)
	}
	want := "provider/abuseipdb/host-a-1 provider/criminalip/host-a-1 provider/criminalip/host-b-2 sink/edl/host-a-1"
	if strings.Join(order, " ") != want {
		t.Fatalf("All order %v, want %s", order, want)
	}
	back := got[2]
	if back.QuotaUsed != 850 || back.QuotaLimit != 1000 || !back.QuotaReset.Equal(full.QuotaReset) || back.Calls["timeout"] != 10 ||
		back.Errors != 10 || back.Timeouts != 10 || back.LastError != full.LastError || !back.LastErrorAt.Equal(full.LastErrorAt) ||
		back.Status != StatusDegraded || back.Breaker != "closed" || !back.At.Equal(full.At) || !back.QuotaWarning() {
		t.Errorf("snapshot read back %+v, want %+v", back, full)
	}
	// The latest write of an owner replaces its earlier one.
	again := full
	again.Status, again.At = StatusFailing, now.Add(time.Second).UTC()
	if err := s.Put(ctx, again, ReportTTL); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.All(ctx, time.Minute); len(got) != 4 || got[2].Status != StatusFailing {
		t.Errorf("after a rewrite: %+v", got)
	}
}

func TestStaleOwnerDropsOutAfterMaxAge(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx := context.Background()
	now := time.Now()
	for _, sn := range []Snapshot{
		snap(ComponentProvider, "criminalip", "live", now),
		snap(ComponentProvider, "criminalip", "gone", now.Add(-40*time.Second)), // stopped writing 40 s ago
	} {
		if err := s.Put(ctx, sn, ReportTTL); err != nil {
			t.Fatal(err)
		}
	}
	owners := func(maxAge time.Duration) string {
		t.Helper()
		got, err := s.All(ctx, maxAge)
		if err != nil {
			t.Fatal(err)
		}
		var o []string
		for _, g := range got {
			o = append(o, g.Owner)
		}
		return strings.Join(o, ",")
	}
	if got := owners(time.Minute); got != "gone,live" {
		t.Errorf("within a minute: %q, want both", got)
	}
	if got := owners(ReportTTL); got != "live" {
		t.Errorf("within %s: %q, want the live owner only", ReportTTL, got)
	}
}

func TestPutPrunesOwnersSilentForTenTTLs(t *testing.T) {
	t.Parallel()
	s, rdb, _ := newStore(t)
	ctx := context.Background()
	now := time.Now()
	const ttl = time.Second
	for _, sn := range []Snapshot{
		snap(ComponentSink, "slack", "restarted-long-ago", now.Add(-11*ttl)),
		snap(ComponentSink, "slack", "quiet-a-while", now.Add(-9*ttl)),
		snap(ComponentSink, "slack", "live", now),
	} {
		if err := s.Put(ctx, sn, ttl); err != nil {
			t.Fatal(err)
		}
	}
	fields, err := rdb.HKeys(ctx, s.key(ComponentSink, "slack")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(fields, ",") != "quiet-a-while,live" && strings.Join(fields, ",") != "live,quiet-a-while" {
		t.Errorf("hash owners %v: the owner silent for over ten TTLs must be pruned, the others kept", fields)
	}
	if n, _ := rdb.ZCard(ctx, s.ownersKey(ComponentSink, "slack")).Result(); n != 2 {
		t.Errorf("owners set holds %d, want 2", n)
	}
	// Both keys lapse ten TTLs after the last write if nobody writes again.
	for _, k := range []string{s.key(ComponentSink, "slack"), s.ownersKey(ComponentSink, "slack")} {
		if d, _ := rdb.PTTL(ctx, k).Result(); d <= 9*ttl || d > 10*ttl {
			t.Errorf("%s expires in %s, want ten TTLs", k, d)
		}
	}
}

func TestAllForgetsIntegrationsNobodyReportsAnyMore(t *testing.T) {
	t.Parallel()
	s, rdb, _ := newStore(t)
	ctx := context.Background()
	for _, name := range []string{"jira", "servicenow"} {
		if err := s.Put(ctx, snap(ComponentSink, name, "a", time.Now()), ReportTTL); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Del(ctx, s.key(ComponentSink, "servicenow")).Err(); err != nil { // lapsed
		t.Fatal(err)
	}
	got, err := s.All(ctx, time.Minute)
	if err != nil || len(got) != 1 || got[0].Name != "jira" {
		t.Fatalf("All: %+v, %v", got, err)
	}
	members, _ := rdb.SMembers(ctx, s.index()).Result()
	if len(members) != 1 || members[0] != s.key(ComponentSink, "jira") {
		t.Errorf("index %v: the lapsed integration must leave it", members)
	}
}

func TestEveryKeySharesOneClusterSlot(t *testing.T) {
	t.Parallel()
	s, rdb, prefix := newStore(t)
	ctx := context.Background()
	if err := s.Put(ctx, snap(ComponentProvider, "criminalip", "a", time.Now()), ReportTTL); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, prefix+":*").Result()
	if err != nil || len(keys) != 3 {
		t.Fatalf("keys %v, %v: want the hash, the owners and the index", keys, err)
	}
	for _, k := range keys {
		// Redis Cluster hashes the first {...} only: one tag for all keys puts them in one slot,
		// which the put script needs.
		open := strings.Index(k, "{")
		if open < 0 || !strings.HasPrefix(k[open:], "{health}") || strings.Contains(k[:open], "}") {
			t.Errorf("key %q does not start its hash tag with {health}", k)
		}
	}
}

func TestPutRejectsWhatWouldCorruptTheStore(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx := context.Background()
	ok := snap(ComponentSink, "edl", "a", time.Now())
	for name, tc := range map[string]struct {
		sn  Snapshot
		ttl time.Duration
	}{
		"zero ttl (EXPIRE 0 deletes the key)": {ok, 0},
		"negative ttl":                        {ok, -time.Second},
		"no owner":                            {func() Snapshot { s := ok; s.Owner = ""; return s }(), ReportTTL},
		"no name":                             {func() Snapshot { s := ok; s.Name = ""; return s }(), ReportTTL},
		"no component":                        {func() Snapshot { s := ok; s.Component = ""; return s }(), ReportTTL},
		"no time":                             {func() Snapshot { s := ok; s.At = time.Time{}; return s }(), ReportTTL},
	} {
		if err := s.Put(ctx, tc.sn, tc.ttl); err == nil {
			t.Errorf("%s: Put accepted it", name)
		}
	}
	if got, err := s.All(ctx, time.Minute); err != nil || len(got) != 0 {
		t.Errorf("All after rejected puts: %+v, %v", got, err)
	}
}

func TestAllOnAnEmptyStore(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	if got, err := s.All(context.Background(), time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("%+v, %v", got, err)
	}
}

func TestSnapshotJSONOmitsUnsetTimes(t *testing.T) {
	raw, err := json.Marshal(Snapshot{Component: ComponentSink, Name: "edl", Owner: "a", Role: "act", At: time.Date(2026, 3, 14, 9, 27, 0, 0, time.UTC),
		Status: StatusOK, Calls: map[string]int64{"done": 2}})
	if err != nil {
		t.Fatal(err)
	}
	got := string(raw)
	for _, absent := range []string{"0001-01-01", "quota_reset", "last_error_at", "last_error", "breaker", "quota_warn_ratio"} {
		if strings.Contains(got, absent) {
			t.Errorf("%s in %s", absent, got)
		}
	}
	for _, present := range []string{`"calls":{"done":2}`, `"errors":0`, `"quota_limit":0`, `"at":"2026-03-14T09:27:00Z"`} {
		if !strings.Contains(got, present) {
			t.Errorf("%s missing from %s", present, got)
		}
	}
}

func TestReportStampsOwnerAndRoleAndWritesAtOnceThenEveryInterval(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	rounds := 0
	collect := func(_ context.Context, now time.Time) []Snapshot {
		mu.Lock()
		rounds++
		n := rounds
		mu.Unlock()
		return []Snapshot{{Component: ComponentProvider, Name: "criminalip", Status: StatusOK, Calls: map[string]int64{"ok": int64(n)}},
			{Component: ComponentSink, Name: "edl", At: now.Add(-time.Second), Status: StatusOK}}
	}
	done := make(chan error, 1)
	go func() { done <- Report(ctx, s, "host-1", "enrich", 50*time.Millisecond, collect, nil) }()
	pipelinetest.WaitFor(t, 5*time.Second, "three rounds", func() bool {
		got, err := s.All(context.Background(), time.Minute)
		return err == nil && len(got) == 2 && got[0].Calls["ok"] >= 3
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Report returned %v when its context ended", err)
	}
	got, _ := s.All(context.Background(), time.Minute)
	for _, g := range got {
		if g.Owner != "host-1" || g.Role != "enrich" || g.At.IsZero() {
			t.Errorf("snapshot not stamped: %+v", g)
		}
	}
	if time.Since(got[0].At) > time.Second {
		t.Errorf("a snapshot without a time gets the round's: %s", got[0].At)
	}
}

func TestReportLogsWhenWritesFailAndWhenTheyRecover(t *testing.T) {
	pipelinetest.Redis(t) // a Redis test: run with the others
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	defer down.Close()
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	collect := func(context.Context, time.Time) []Snapshot {
		return []Snapshot{{Component: ComponentSink, Name: "edl", Status: StatusOK}}
	}
	go func() {
		done <- Report(ctx, NewStore(down, "x"), "a", "act", 20*time.Millisecond, collect, zap.New(core))
	}()
	pipelinetest.WaitFor(t, 5*time.Second, "a few failed rounds", func() bool { return logs.Len() > 0 })
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Report must keep going (and return nil) while the store is down: %v", err)
	}
	if n := logs.FilterMessageSnippet("not written").Len(); n != 1 {
		t.Errorf("logged the failure %d times, want once per outage", n)
	}
}

func TestRecentCountsAndStatus(t *testing.T) {
	now := time.Date(2026, 3, 14, 9, 27, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		name  string
		calls []bool // failed?, oldest first, one second apart ending now
		old   int    // failures outside the window, before them
		want  RecentCounts
		st    string
	}{
		{"nothing yet", nil, 0, RecentCounts{}, StatusOK},
		{"all worked", []bool{false, false, false}, 0, RecentCounts{Calls: 3}, StatusOK},
		{"one failure among successes", []bool{false, true, false}, 0, RecentCounts{Calls: 3, Failed: 1}, StatusDegraded},
		{"two latest failed", []bool{false, true, true}, 0, RecentCounts{Calls: 3, Failed: 2, FailedInARow: 2}, StatusDegraded},
		{"three latest failed after a success", []bool{false, true, true, true}, 0, RecentCounts{Calls: 4, Failed: 3, FailedInARow: 3}, StatusFailing},
		{"recovered: the latest worked", []bool{true, true, true, true, false}, 0, RecentCounts{Calls: 5, Failed: 4}, StatusDegraded},
		{"old failures are over", []bool{false}, 5, RecentCounts{Calls: 1}, StatusOK},
		{"only old failures", nil, 5, RecentCounts{}, StatusOK},
	} {
		var r Recent
		for i := range tc.old {
			r.Add(ago(RecentWindow+time.Duration(i+1)*time.Second), true)
		}
		for i, failed := range tc.calls {
			r.Add(ago(time.Duration(len(tc.calls)-1-i)*time.Second), failed)
		}
		got := r.Counts(now, RecentWindow)
		if got != tc.want || got.Status() != tc.st {
			t.Errorf("%s: %+v %s, want %+v %s", tc.name, got, got.Status(), tc.want, tc.st)
		}
	}
}

func TestRecentRemembersTheLatest64(t *testing.T) {
	now := time.Now()
	var r Recent
	for range 100 {
		r.Add(now, true)
	}
	for range 10 {
		r.Add(now, false)
	}
	if got := r.Counts(now, time.Minute); got != (RecentCounts{Calls: 64, Failed: 54}) {
		t.Errorf("%+v", got)
	}
}

func TestRecentAndLastErrorUnderConcurrency(t *testing.T) {
	var (
		r    Recent
		last LastError
		wg   sync.WaitGroup
	)
	now := time.Now()
	for range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				r.Add(now, i%2 == 0)
				if i%10 == 0 {
					last.Set(now.Add(time.Duration(i)), "boom")
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 200 {
				_ = r.Counts(now, time.Minute)
				_, _ = last.Get()
			}
		}()
	}
	wg.Wait()
	if got := r.Counts(now, time.Minute); got.Calls != recentSize {
		t.Errorf("%+v", got)
	}
	if text, at := last.Get(); text != "boom" || !at.Equal(now.Add(990)) {
		t.Errorf("last error %q at %s", text, at)
	}
}

func TestLastErrorKeepsTheLatest(t *testing.T) {
	var l LastError
	if text, at := l.Get(); text != "" || !at.IsZero() {
		t.Fatalf("empty: %q %s", text, at)
	}
	t0 := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	l.Set(t0.Add(time.Second), "second")
	l.Set(t0, "first, reported late")
	if text, at := l.Get(); text != "second" || !at.Equal(t0.Add(time.Second)) {
		t.Errorf("%q at %s", text, at)
	}
}

func TestErrorText(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "criminalip: transient (status 503): upstream down", "criminalip: transient (status 503): upstream down"},
		{"query secret", `Get "https://api.example.com/v1/ip?key=s3cret&ip=1.2.3.4": dial tcp: i/o timeout`, `Get "https://api.example.com": dial tcp: i/o timeout`},
		{"path secret", "post https://hooks.slack.com/services/T000/B000/XXXXSECRET failed", "post https://hooks.slack.com failed"},
		{"user info", "dial redis://user:pa55@redis.internal:6379/0 refused", "dial redis://redis.internal:6379 refused"},
		{"unparseable url", "bad http://[::1 here", "bad http://[redacted] here"},
		{"white space and control characters", "line one\n\tline\x00two\r\n", "line one line two"},
		{"invalid utf-8", "bad \xff byte", "bad \uFFFD byte"},
		{"cut at a character boundary", long, strings.Repeat("é", 150) + "..."},
	} {
		got := ErrorText(tc.in)
		if got != tc.want {
			t.Errorf("%s: ErrorText(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
		if len(got) > MaxErrorText+3 {
			t.Errorf("%s: %d bytes", tc.name, len(got))
		}
	}
	if got := ErrorText(strings.Repeat("x", 290) + " https://h.example/secret-token-value"); strings.Contains(got, "secret") {
		t.Errorf("a URL across the cut must be cut to its host first: %q", got)
	}
}
