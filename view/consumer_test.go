package view

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

func scoredMessage(ev *event.Scored, offset int64) kafka.Message {
	return kafka.Message{Topic: "indicators.scored", Partition: 2, Offset: offset, Key: []byte(ev.Indicator.Value), Value: ev.AppendJSON(nil)}
}

func recordMessage(t *testing.T, rec *act.Record, offset int64) kafka.Message {
	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: "actions.results", Offset: offset, Key: []byte(rec.Target), Value: raw}
}

func messages(m *Metrics, input, outcome string) float64 {
	return testutil.ToFloat64(m.Messages.WithLabelValues(input, outcome))
}

func TestScoredHandlerAppliesEventsAndSkipsUnreadable(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	m := NewMetrics(prometheus.NewRegistry())
	h := NewScoredHandler(s, m, nil)
	ctx := context.Background()
	ev := scored("185.220.101.45", 85, c.Now(), withISP("Example Hosting GmbH"), withTags("tor"))
	msg := scoredMessage(ev, 10)
	for range 2 { // the second is a redelivery
		outs, err := h.Handle(ctx, msg)
		if err != nil || outs != nil {
			t.Fatalf("Handle: %v %v, want no outputs and no error", outs, err)
		}
	}
	for _, bad := range []string{``, `null`, `[1]`, `{"event_id":"x"}`, `{"event_id":"x","indicator":{"type":"ipv4-addr","value":"not-an-ip"}}`, `{oops`} {
		outs, err := h.Handle(ctx, kafka.Message{Topic: "indicators.scored", Value: []byte(bad)})
		if err != nil || outs != nil {
			t.Fatalf("unreadable %q: %v %v, want it skipped", bad, outs, err)
		}
	}
	if a, d, u := messages(m, InputScored, "applied"), messages(m, InputScored, "duplicate"), messages(m, InputScored, "unreadable"); a != 1 || d != 1 || u != 6 {
		t.Errorf("applied %v duplicate %v unreadable %v, want 1 1 6", a, d, u)
	}
	ind, err := s.Get(ctx, "185.220.101.45")
	if err != nil {
		t.Fatal(err)
	}
	if ind.Sightings != 1 || ind.ISP != "Example Hosting GmbH" || ind.Latest.EventID != ev.EventID {
		t.Errorf("indicator %+v", ind.Row)
	}
}

func TestScoredHandlerNamesEventsWithoutIDByOffset(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	h := NewScoredHandler(s, NewMetrics(prometheus.NewRegistry()), nil)
	ev := scored("2001:DB8::7", 40, c.Now(), withID(""))
	msg := scoredMessage(ev, 77)
	for range 3 {
		if _, err := h.Handle(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	ind, err := s.Get(context.Background(), "2001:db8::7")
	if err != nil {
		t.Fatal(err)
	}
	if ind.Sightings != 1 || ind.History[0].EventID != "kafka:indicators.scored-2-77" {
		t.Errorf("sightings %d, history %+v", ind.Sightings, ind.History)
	}
}

func TestRecordHandler(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	m := NewMetrics(prometheus.NewRegistry())
	h := NewRecordHandler(s, m, nil)
	ctx := context.Background()
	mustApply(t, s, scored("198.51.100.9", 90, c.Now()))
	rec := &act.Record{SchemaVersion: "1", At: c.Now(), Outcome: act.OutcomeDone, Kind: "ticket", Playbook: "ticket-high",
		Step: "jira", Sink: "jira", Target: "::ffff:198.51.100.9", Ref: "SOC-42", Worker: "threatpipe-act-ticket", Score: 90}
	msg := recordMessage(t, rec, 1)
	for range 2 {
		if outs, err := h.Handle(ctx, msg); err != nil || outs != nil {
			t.Fatalf("%v %v", outs, err)
		}
	}
	trip := recordMessage(t, &act.Record{SchemaVersion: "1", At: c.Now(), Outcome: act.OutcomeDone, Kind: "block", Worker: "w"}, 2)
	if _, err := h.Handle(ctx, trip); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, kafka.Message{Value: []byte(`{"target":"example.com"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, kafka.Message{Value: []byte(`not json`)}); err != nil {
		t.Fatal(err)
	}
	// Every audit record the workers write names its target: one without (trip above) is not
	// an audit record the view can place, and is counted as unreadable.
	if a, d, u := messages(m, InputResults, "applied"), messages(m, InputResults, "duplicate"),
		messages(m, InputResults, "unreadable"); a != 1 || d != 1 || u != 3 {
		t.Errorf("applied %v duplicate %v unreadable %v, want 1 1 3", a, d, u)
	}
	ind, err := s.Get(ctx, "198.51.100.9")
	if err != nil {
		t.Fatal(err)
	}
	if len(ind.Actions) != 1 || ind.Actions[0].Ref != "SOC-42" || ind.Actions[0].Target != "198.51.100.9" {
		t.Errorf("actions %+v", ind.Actions)
	}
}

func TestHandlerWaitsForRedisAndGivesUpOnlyWithContext(t *testing.T) {
	// Nothing listens on port 1: every update fails, the handler retries until ctx ends and then
	// returns the error, so the engine leaves the message uncommitted.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	m := NewMetrics(prometheus.NewRegistry())
	h := NewScoredHandler(NewStore(rdb, "tp", StoreOptions{}), m, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.Handle(ctx, scoredMessage(scored("198.51.100.1", 10, time.Now()), 1))
	if err == nil || ctx.Err() == nil {
		t.Fatalf("Handle returned %v before its context ended", err)
	}
	if time.Since(start) < 500*time.Millisecond {
		t.Errorf("gave up after %s", time.Since(start))
	}
	if n := testutil.ToFloat64(m.StoreErrors); n < 1 {
		t.Errorf("%v store errors counted", n)
	}
	if n := messages(m, InputScored, "applied"); n != 0 {
		t.Errorf("counted as applied")
	}
}

func TestDecodeScoredBoundsFreeText(t *testing.T) {
	ev := scored("192.0.2.1", 10, time.Now(), withISP(strings.Repeat("é", 300)))
	got, err := DecodeScored(scoredMessage(ev, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ISP) > maxFieldBytes || !strings.HasPrefix(got.ISP, "éé") {
		t.Errorf("ISP of %d bytes", len(got.ISP))
	}
	long := scored("192.0.2.1", 10, time.Now(), withID(strings.Repeat("x", 257)))
	if _, err := DecodeScored(scoredMessage(long, 1)); err == nil {
		t.Error("an event id over 256 bytes was accepted")
	}
}

func TestSweeperKeepsGaugeCurrent(t *testing.T) {
	s, c := testStore(t, StoreOptions{Retention: time.Hour})
	m := NewMetrics(prometheus.NewRegistry())
	mustApply(t, s, scored("198.51.100.1", 10, c.Now()), scored("198.51.100.2", 10, c.Now().Add(-59*time.Minute)))
	c.Add(2 * time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunSweeper(ctx, s, 20*time.Millisecond, m, nil) }()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.Swept) != 1 || testutil.ToFloat64(m.Indicators) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("swept %v indicators gauge %v, want 1 1", testutil.ToFloat64(m.Swept), testutil.ToFloat64(m.Indicators))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunSweeper: %v", err)
	}
}
