package steer

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/allowlist"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/pipeline/sign"
)

const testKey = "0123456789abcdef0123456789abcdef"

var ana = Actor{Name: "ana", Role: "analyst", Via: "session"}

// rig is a Service on the real broker and Redis, with its own topics and key prefix.
type rig struct {
	s       *Service
	brokers []string
	topics  Topics
	ledger  *act.Ledger
	store   *allowlist.Store
	rdb     redis.UniversalClient
	now     time.Time
}

func newRig(t *testing.T, signer *sign.Signer) *rig {
	t.Helper()
	brokers := pipelinetest.Kafka(t)
	rdb := redis.NewClient(&redis.Options{Addr: pipelinetest.Redis(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	prefix := pipelinetest.Name(t, "steer")
	t.Cleanup(func() { deletePrefix(rdb, prefix) })
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), RequiredAcks: kafka.RequireAll, Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond}
	t.Cleanup(func() { _ = w.Close() })
	r := &rig{brokers: brokers, rdb: rdb, now: time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC),
		topics: Topics{Input: pipelinetest.Topic(t, brokers, "in", 1), Changes: pipelinetest.Topic(t, brokers, "changes", 1),
			Results: pipelinetest.Topic(t, brokers, "results", 1)},
		ledger: act.NewLedger(rdb, prefix, "test")}
	r.store = allowlist.New(rdb, prefix, func() time.Time { return r.now })
	s, err := New(Options{Producer: w, Allowlist: r.store, Ledger: r.ledger, Redis: rdb, Prefix: prefix, Topics: r.topics,
		Signer: signer, Now: func() time.Time { return r.now }})
	if err != nil {
		t.Fatal(err)
	}
	r.s = s
	return r
}

func deletePrefix(rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		_ = rdb.Del(ctx, iter.Val()).Err()
	}
}

func (r *rig) records(t *testing.T) []act.Record {
	t.Helper()
	var out []act.Record
	for _, m := range pipelinetest.ReadAll(t, r.brokers, r.topics.Results) {
		var rec act.Record
		if err := json.Unmarshal(m.Value, &rec); err != nil {
			t.Fatalf("record %s: %v", m.Value, err)
		}
		out = append(out, rec)
	}
	return out
}

func signer(t *testing.T) (*sign.Signer, *sign.Verifier) {
	t.Helper()
	k, err := sign.NewKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return sign.NewSigner(k), sign.NewVerifier(k)
}

func TestFalsePositiveAllowlistsPublishesASignedChangeAndAudits(t *testing.T) {
	t.Parallel()
	sg, v := signer(t)
	r := newRig(t, sg)
	ctx := context.Background()
	rec, err := r.s.FalsePositive(ctx, ana, " ::ffff:185.220.101.45 ", "our own scanner", 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != act.KindAnalyst || rec.Step != StepFalsePositive || rec.Sink != "view" || rec.Target != "185.220.101.45" ||
		rec.Outcome != act.OutcomeDone || rec.Actor != "ana" || rec.ActorRole != "analyst" ||
		rec.Detail != "by ana (analyst) via session: our own scanner (allowlisted for 168h0m0s)" {
		t.Errorf("record %+v", rec)
	}
	entries, err := r.s.Allowlist(ctx)
	if err != nil || len(entries) != 1 || entries[0].Target != "185.220.101.45" || entries[0].Author != "ana" ||
		!entries[0].Expires.Equal(r.now.Add(7*24*time.Hour)) {
		t.Errorf("allowlist %+v, %v", entries, err)
	}
	msgs := pipelinetest.ReadAll(t, r.brokers, r.topics.Changes)
	if len(msgs) != 1 {
		t.Fatalf("%d changes", len(msgs))
	}
	if err := v.Verify(sign.Change, msgs[0]); err != nil || string(msgs[0].Key) != "185.220.101.45" {
		t.Errorf("change keyed %q: %v", msgs[0].Key, err)
	}
	var c event.Change
	if err := json.Unmarshal(msgs[0].Value, &c); err != nil {
		t.Fatal(err)
	}
	if c.Cause != event.CauseAnalyst || c.Direction != event.Deescalated || c.Action != event.ActionFalsePositive ||
		c.New.Severity != event.SeverityInfo || c.New.Score != 0 || c.Actor != "ana" || c.Indicator.Value != "185.220.101.45" ||
		len(c.Reasons) != 1 || c.Reasons[0].Detail != "false positive by ana (analyst) via session: our own scanner" ||
		!act.Deescalates(&c) {
		t.Errorf("change %+v", c)
	}
	if recs := r.records(t); len(recs) != 1 || recs[0].Step != StepFalsePositive {
		t.Errorf("audit topic %+v", recs)
	}
}

func TestUnblockRefreshNoteAndKillSwitch(t *testing.T) {
	t.Parallel()
	sg, v := signer(t)
	r := newRig(t, sg)
	ctx := context.Background()
	if _, err := r.s.Unblock(ctx, ana, "185.220.101.45", "customer outage"); err != nil {
		t.Fatal(err)
	}
	var c event.Change
	msgs := pipelinetest.ReadAll(t, r.brokers, r.topics.Changes)
	if len(msgs) != 1 || json.Unmarshal(msgs[0].Value, &c) != nil || c.Action != event.ActionUnblock {
		t.Fatalf("changes %d: %+v", len(msgs), c)
	}
	if entries, _ := r.s.Allowlist(ctx); len(entries) != 0 {
		t.Errorf("unblock allowlisted: %+v", entries)
	}

	if _, err := r.s.Refresh(ctx, ana, "2001:DB8::1"); err != nil {
		t.Fatal(err)
	}
	in := pipelinetest.ReadAll(t, r.brokers, r.topics.Input)
	if len(in) != 1 || pipelinetest.Header(in[0], pipeline.RefreshHeader) != "1" || v.Verify(sign.Refresh, in[0]) != nil {
		t.Fatalf("refresh request %+v", in)
	}
	dec := event.NewLimitedDecoder(event.Limits{MaxBytes: 1 << 20, MaxIndicators: 8})
	ev, err := dec.DecodeRecord(in[0].Value, in[0].Time, event.Origin{Topic: r.topics.Input})
	if err != nil || len(ev.Sightings) != 1 || ev.Sightings[0].Indicator.Value != "2001:db8::1" || ev.Source != SourceAnalyst ||
		ev.EventID != "refresh:2001:db8::1:1773480600000" {
		t.Errorf("the enricher reads the refresh request as %+v, %v", ev, err)
	}

	for i := range MaxNotes + 2 {
		r.now = r.now.Add(time.Second)
		if _, err := r.s.Note(ctx, ana, "185.220.101.45", "note "+string(rune('a'+i%26))); err != nil {
			t.Fatal(err)
		}
	}
	notes, err := r.s.Notes(ctx, "185.220.101.45")
	if err != nil || len(notes) != MaxNotes || notes[0].Author != "ana" || !notes[0].At.Equal(r.now) {
		t.Errorf("%d notes (first %+v), %v: want the newest %d, newest first", len(notes), notes[0], err, MaxNotes)
	}

	if _, err := r.s.SetKillSwitch(ctx, ana, true, "incident 42"); err != nil {
		t.Fatal(err)
	}
	if on, err := r.ledger.KillSwitch(ctx); !on || err != nil {
		t.Errorf("act's kill switch: %v, %v", on, err)
	}
	if _, err := r.s.SetKillSwitch(ctx, ana, false, "incident 42 over"); err != nil {
		t.Fatal(err)
	}
	if on, _ := r.s.KillSwitch(ctx); on {
		t.Error("kill switch still on")
	}

	steps := map[string]int{}
	for _, rec := range r.records(t) {
		steps[rec.Step]++
		if rec.Kind != act.KindAnalyst || rec.Actor != "ana" || !strings.HasPrefix(rec.Detail, "by ana (analyst) via session: ") || rec.Outcome != act.OutcomeDone {
			t.Errorf("record %+v", rec)
		}
	}
	want := map[string]int{StepUnblock: 1, StepRefresh: 1, StepNote: MaxNotes + 2, StepKillSwitchOn: 1, StepKillSwitchOff: 1}
	for step, n := range want {
		if steps[step] != n {
			t.Errorf("%d %s records, want %d (all: %v)", steps[step], step, n, steps)
		}
	}
}

func TestAllowlistAddRemove(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	ctx := context.Background()
	if _, err := r.s.AllowlistAdd(ctx, ana, "203.0.113.77/24", "partner range", time.Hour); err != nil {
		t.Fatal(err)
	}
	if entries, _ := r.s.Allowlist(ctx); len(entries) != 1 || entries[0].Target != "203.0.113.0/24" {
		t.Fatalf("allowlist %+v", entries)
	}
	if _, err := r.s.AllowlistRemove(ctx, ana, "203.0.113.0/24", "partner gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.s.AllowlistRemove(ctx, ana, "203.0.113.0/24", "again"); !errors.Is(err, ErrNotListed) {
		t.Errorf("second remove: %v", err)
	}
	recs := r.records(t)
	if len(recs) != 2 || recs[0].Step != StepAllowlistAdd || recs[1].Step != StepAllowlistRemove || recs[0].Target != "203.0.113.0/24" {
		t.Errorf("records %+v", recs)
	}
}

func TestInputErrors(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	ctx := context.Background()
	long := strings.Repeat("x", MaxReason+1)
	for name, call := range map[string]func() error{
		"bad ip":       func() error { _, err := r.s.FalsePositive(ctx, ana, "300.1.1.1", "r", time.Hour); return err },
		"cidr":         func() error { _, err := r.s.Unblock(ctx, ana, "185.220.101.0/24", "r"); return err },
		"no reason":    func() error { _, err := r.s.FalsePositive(ctx, ana, "185.220.101.45", "  ", time.Hour); return err },
		"long reason":  func() error { _, err := r.s.Unblock(ctx, ana, "185.220.101.45", long); return err },
		"control char": func() error { _, err := r.s.Unblock(ctx, ana, "185.220.101.45", "a\x1b[31m"); return err },
		"short expiry": func() error { _, err := r.s.FalsePositive(ctx, ana, "185.220.101.45", "r", 30*time.Second); return err },
		"long expiry":  func() error { _, err := r.s.AllowlistAdd(ctx, ana, "185.220.101.45", "r", 91*24*time.Hour); return err },
		"no actor":     func() error { _, err := r.s.Refresh(ctx, Actor{Role: "analyst"}, "185.220.101.45"); return err },
		"long note": func() error {
			_, err := r.s.Note(ctx, ana, "185.220.101.45", strings.Repeat("é", MaxNote+1))
			return err
		},
		"empty note":      func() error { _, err := r.s.Note(ctx, ana, "185.220.101.45", ""); return err },
		"kill, no reason": func() error { _, err := r.s.SetKillSwitch(ctx, ana, true, ""); return err },
		"notes of a cidr": func() error { _, err := r.s.Notes(ctx, "10.0.0.0/8"); return err },
	} {
		if err := call(); !IsInput(err) {
			t.Errorf("%s: %v, want an InputError", name, err)
		}
	}
	if n := pipelinetest.Count(t, r.brokers, r.topics.Results); n != 0 {
		t.Errorf("refused actions wrote %d records", n)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New accepted empty options")
	}
}
