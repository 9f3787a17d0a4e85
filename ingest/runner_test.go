package ingest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/threatpipe/threatpipe/docs"
	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

func TestRunnerPublishesPagesAndSkipsNonIPs(t *testing.T) {
	r := newRig(t)
	src := &scripted{inds: ips(0, 25)}
	stop := start(t, r.runner(t, src, ingest.Options{}))
	pipelinetest.WaitFor(t, 20*time.Second, "the cursor at 25", func() bool { return r.cursor(t) == "25" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// More: the three pages are polled back to back, then the interval (an hour) is waited.
	if got := src.polled(); !slices.Equal(got, []string{"", "10", "20"}) {
		t.Errorf("polled from %q", got)
	}
	evs := r.published(t)
	if len(evs) != 20 {
		t.Fatalf("%d events published, want the 20 addresses of 25 indicators", len(evs))
	}
	if got := testutil.ToFloat64(r.metrics.Skipped.WithLabelValues("scripted", ingest.SkipNotIP)); got != 5 {
		t.Errorf("skipped = %v, want 5", got)
	}
	if got := testutil.ToFloat64(r.metrics.Published.WithLabelValues("scripted")); got != 20 {
		t.Errorf("published = %v", got)
	}
	if got := testutil.ToFloat64(r.metrics.Polled.WithLabelValues("scripted")); got != 25 {
		t.Errorf("polled = %v", got)
	}
	v, err := docs.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	first := r.firstByRef(t, evs, "rec-0")
	raw, _ := json.Marshal(first)
	if err := v.Validate("indicator-event", raw); err != nil {
		t.Errorf("event does not match the native schema: %v\n%s", err, raw)
	}
	tip, _ := first["context"].(map[string]any)["tip"].(map[string]any)
	if first["source"] != "tip:scripted" || first["observed_at"] != "2026-03-14T09:00:00Z" ||
		first["event_id"] != ingest.EventID("scripted", "rec-0", t0, "198.51.0.1") ||
		tip["name"] != "scripted" || tip["ref"] != "rec-0" || fmt.Sprint(tip["tags"]) != "[botnet]" || tip["score"] != "80" {
		t.Errorf("event %s", raw)
	}
	if ids := eventIDs(evs); len(ids) != 20 {
		t.Errorf("%d distinct event ids for 20 events", len(ids))
	}
}

func (r *rig) firstByRef(t *testing.T, evs []map[string]any, ref string) map[string]any {
	t.Helper()
	for _, ev := range evs {
		if ev["context"].(map[string]any)["tip"].(map[string]any)["ref"] == ref {
			return ev
		}
	}
	t.Fatalf("no event of %s", ref)
	return nil
}

// TestCursorMovesOnlyAfterTheAck: a page whose produce fails leaves the cursor where it was and
// is polled again from it; a restart resumes from the last acknowledged page and publishes
// nothing twice.
func TestCursorMovesOnlyAfterTheAck(t *testing.T) {
	r := newRig(t)
	src := &scripted{inds: ips(0, 30)}
	var cursorAtFailure string
	r.pub.failOn = map[int]bool{1: true} // the second page's first attempt
	r.pub.before = func(write int) {
		if write == 1 {
			cursorAtFailure = r.cursor(t)
		}
	}
	stop := start(t, r.runner(t, src, ingest.Options{}))
	pipelinetest.WaitFor(t, 20*time.Second, "the cursor at 30", func() bool { return r.cursor(t) == "30" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if cursorAtFailure != "10" {
		t.Errorf("cursor when the second page's produce failed = %q, want 10 (the first page's)", cursorAtFailure)
	}
	if got := src.polled(); !slices.Equal(got, []string{"", "10", "10", "20"}) {
		t.Errorf("polled from %q: the failed page must be polled again from its cursor", got)
	}
	if got := testutil.ToFloat64(r.metrics.Errors.WithLabelValues("scripted", ingest.StagePublish)); got != 1 {
		t.Errorf("publish errors = %v", got)
	}

	// A restart with ten more indicators publishes those only.
	src2 := &scripted{inds: ips(0, 40)}
	r.fresh()
	r.pub.before, r.pub.failOn = nil, nil
	stop = start(t, r.runner(t, src2, ingest.Options{}))
	pipelinetest.WaitFor(t, 20*time.Second, "the cursor at 40", func() bool { return r.cursor(t) == "40" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := src2.polled(); !slices.Equal(got, []string{"30"}) {
		t.Errorf("after the restart polled from %q, want the stored cursor only", got)
	}
	evs := r.published(t)
	ids := eventIDs(evs)
	if len(evs) != 32 || len(ids) != 32 {
		t.Fatalf("%d events, %d ids: want each of the 32 addresses once", len(evs), len(ids))
	}
}

func TestTransientPollErrorRetriesFromTheSameCursor(t *testing.T) {
	r := newRig(t)
	src := &scripted{inds: ips(0, 25), fails: map[int]error{1: errors.New("platform: 503 Service Unavailable")}}
	stop := start(t, r.runner(t, src, ingest.Options{}))
	pipelinetest.WaitFor(t, 20*time.Second, "the cursor at 25", func() bool { return r.cursor(t) == "25" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := src.polled(); !slices.Equal(got, []string{"", "10", "10", "20"}) {
		t.Errorf("polled from %q", got)
	}
	if got := testutil.ToFloat64(r.metrics.Errors.WithLabelValues("scripted", ingest.StagePoll)); got != 1 {
		t.Errorf("poll errors = %v", got)
	}
	if n := len(r.published(t)); n != 20 {
		t.Errorf("%d events", n)
	}
}

func TestAuthErrorIsRetriedSlowly(t *testing.T) {
	r := newRig(t)
	src := &scripted{inds: ips(0, 3), fails: map[int]error{0: fmt.Errorf("401 Unauthorized: %w", ingest.ErrAuth)}}
	began := time.Now()
	stop := start(t, r.runner(t, src, ingest.Options{AuthRetry: 700 * time.Millisecond}))
	pipelinetest.WaitFor(t, 20*time.Second, "the cursor at 3", func() bool { return r.cursor(t) == "3" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(began); waited < 700*time.Millisecond {
		t.Errorf("retried after %s, before AUTH_RETRY", waited)
	}
	if got := testutil.ToFloat64(r.metrics.Errors.WithLabelValues("scripted", ingest.StageAuth)); got != 1 {
		t.Errorf("auth errors = %v", got)
	}
}

// TestShutdownFinishesThePageInFlight: a shutdown that arrives while a page is being produced
// lets the page be acknowledged and its cursor stored, so a restart repeats nothing.
func TestShutdownFinishesThePageInFlight(t *testing.T) {
	r := newRig(t)
	src := &scripted{inds: ips(0, 25)}
	stops := make(chan func() error, 1)
	stopped := make(chan error, 1)
	r.pub.before = func(write int) {
		if write == 1 {
			stop := <-stops
			go func() { stopped <- stop() }() // the shutdown begins while page two is in flight
			time.Sleep(200 * time.Millisecond)
		}
	}
	stops <- start(t, r.runner(t, src, ingest.Options{}))
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no shutdown")
	}
	if c := r.cursor(t); c != "20" {
		t.Fatalf("cursor after the shutdown = %q, want 20 (the page in flight finished)", c)
	}
	if n := len(r.published(t)); n != 16 {
		t.Fatalf("%d events after the shutdown, want the 16 addresses of two pages", n)
	}
	r.fresh()
	r.pub.before = nil
	src2 := &scripted{inds: ips(0, 25)}
	stop := start(t, r.runner(t, src2, ingest.Options{}))
	pipelinetest.WaitFor(t, 20*time.Second, "the cursor at 25", func() bool { return r.cursor(t) == "25" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	evs := r.published(t)
	if ids := eventIDs(evs); len(evs) != 20 || len(ids) != 20 {
		t.Fatalf("%d events, %d ids after the restart: want 20 once each", len(evs), len(ids))
	}
}

// TestRecentAddressesAreNotRepublished: a record changed again within the republish window (as
// a write-back of its verdict changes it) is skipped and counted, so the enrich, act and
// write-back loop does not turn for ever; a failed publish remembers nothing.
func TestRecentAddressesAreNotRepublished(t *testing.T) {
	r := newRig(t)
	// The same four addresses, each changed twice: records 0-3, then 10-13 ("changed later").
	first := ips(0, 4)
	again := ips(0, 4)
	for i := range again {
		again[i].Ref = fmt.Sprintf("rec-%d", 10+i)
		again[i].Modified = again[i].Modified.Add(time.Hour)
	}
	src := &scripted{inds: append(first, again...)}
	r.pub.failOn = map[int]bool{0: true}
	recent := ingest.NewRecent(r.rdb, pipelinetest.Name(t, "tp"), time.Hour)
	stop := start(t, r.runner(t, src, ingest.Options{PageSize: 4, Recent: recent}))
	pipelinetest.WaitFor(t, 20*time.Second, "the cursor at 8", func() bool { return r.cursor(t) == "8" })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	evs := r.published(t)
	if len(evs) != 4 {
		t.Fatalf("%d events published, want the 4 addresses once (the first publish failed and is retried)", len(evs))
	}
	for _, ev := range evs {
		if ref := fmt.Sprint(ev["context"].(map[string]any)["tip"].(map[string]any)["ref"]); len(ref) != len("rec-0") {
			t.Errorf("published %v: want the first change of each address", ref)
		}
	}
	if got := testutil.ToFloat64(r.metrics.Skipped.WithLabelValues("scripted", ingest.SkipRecent)); got != 4 {
		t.Errorf("skipped as recent = %v, want 4", got)
	}
}
