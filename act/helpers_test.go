package act

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/sinks"
)

// errSinkDown is what a failing fake sink returns.
var errSinkDown = errors.New("sink down: HTTP 503")

// fakeSink is an in-memory sink that records every call. On its own it is a plain sinks.Sink;
// the wrapper types below add the optional interfaces one combination at a time, the way the
// real sinks do (the EDL undoes and reconciles, PagerDuty undoes, Jira finds).
type fakeSink struct {
	name string
	kind sinks.Kind
	// params are the step params the sink accepts (wrappers with ValidateParams only);
	// required ones must be present.
	params   map[string]bool
	required []string
	// delay makes Do take a while, so that concurrent callers overlap.
	delay time.Duration
	// do, when set, answers Do instead of the default (a fresh ref per call; a comment on Prior).
	do func(a *sinks.Action) (sinks.Result, error)

	mu         sync.Mutex
	failDo     int // the next failDo Do calls fail
	failUndo   int // the next failUndo Undo calls fail
	foundRef   string
	findErr    error
	foundNth   map[int]string // the ref the nth Find call (1-based) finds, overriding foundRef
	dos        []sinks.Action
	undos      []undoCall
	finds      []sinks.Action
	reconciles []map[string]time.Time
}

type undoCall struct {
	Action sinks.Action
	Ref    string
}

func newFake(name string, kind sinks.Kind, params ...string) *fakeSink {
	s := &fakeSink{name: name, kind: kind, params: map[string]bool{}}
	for _, p := range params {
		s.params[p] = true
	}
	return s
}

func (s *fakeSink) Name() string     { return s.name }
func (s *fakeSink) Kind() sinks.Kind { return s.kind }

func (s *fakeSink) Do(ctx context.Context, a *sinks.Action) (sinks.Result, error) {
	s.mu.Lock()
	s.dos = append(s.dos, *a)
	n := len(s.dos)
	fail := s.failDo > 0
	if fail {
		s.failDo--
	}
	s.mu.Unlock()
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return sinks.Result{}, ctx.Err()
		}
	}
	switch {
	case fail:
		return sinks.Result{}, errSinkDown
	case s.do != nil:
		return s.do(a)
	case a.Prior != "":
		return sinks.Result{Ref: a.Prior, Detail: "commented on " + a.Prior}, nil
	default:
		ref := fmt.Sprintf("%s-%d", s.name, n)
		return sinks.Result{Ref: ref, Detail: "created " + ref}, nil
	}
}

func (s *fakeSink) undo(_ context.Context, a *sinks.Action, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.undos = append(s.undos, undoCall{Action: *a, Ref: ref})
	if s.failUndo > 0 {
		s.failUndo--
		return errSinkDown
	}
	return nil
}

func (s *fakeSink) find(_ context.Context, a *sinks.Action) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finds = append(s.finds, *a)
	if s.findErr != nil {
		return "", false, s.findErr
	}
	ref := s.foundRef
	if r, ok := s.foundNth[len(s.finds)]; ok {
		ref = r
	}
	return ref, ref != "", nil
}

func (s *fakeSink) reconcile(_ context.Context, active map[string]time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reconciles = append(s.reconciles, maps.Clone(active))
	return nil
}

func (s *fakeSink) validate(params map[string]string) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(params)) {
		if !s.params[k] {
			errs = append(errs, fmt.Errorf("unknown param %q", k))
		}
	}
	for _, k := range s.required {
		if params[k] == "" {
			errs = append(errs, fmt.Errorf("%s is required", k))
		}
	}
	return errors.Join(errs...)
}

func (s *fakeSink) setFailDo(n int)   { s.mu.Lock(); s.failDo = n; s.mu.Unlock() }
func (s *fakeSink) setFailUndo(n int) { s.mu.Lock(); s.failUndo = n; s.mu.Unlock() }
func (s *fakeSink) setFound(ref string, err error) {
	s.mu.Lock()
	s.foundRef, s.findErr = ref, err
	s.mu.Unlock()
}

func (s *fakeSink) doCalls() []sinks.Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.dos)
}

func (s *fakeSink) undoCalls() []undoCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.undos)
}

func (s *fakeSink) findCalls() []sinks.Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.finds)
}

func (s *fakeSink) reconcileCalls() []map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reconciles)
}

// blockSink is an EDL-like block sink: it undoes, reconciles and validates params.
type blockSink struct{ *fakeSink }

func (s blockSink) Undo(ctx context.Context, a *sinks.Action, ref string) error {
	return s.undo(ctx, a, ref)
}
func (s blockSink) Reconcile(ctx context.Context, active map[string]time.Time) error {
	return s.reconcile(ctx, active)
}
func (s blockSink) ValidateParams(p map[string]string) error { return s.validate(p) }

// pageSink is a PagerDuty-like alert sink: a page is resolved by Undo.
type pageSink struct{ *fakeSink }

func (s pageSink) Undo(ctx context.Context, a *sinks.Action, ref string) error {
	return s.undo(ctx, a, ref)
}
func (s pageSink) ValidateParams(p map[string]string) error { return s.validate(p) }

// ticketSink is a Jira-like ticket sink: it finds an action by its key after a crash.
type ticketSink struct{ *fakeSink }

func (s ticketSink) Find(ctx context.Context, a *sinks.Action) (string, bool, error) {
	return s.find(ctx, a)
}
func (s ticketSink) ValidateParams(p map[string]string) error { return s.validate(p) }

// alertReconciler is an alert sink that (oddly) reconciles: the lifter must leave it alone.
type alertReconciler struct{ *fakeSink }

func (s alertReconciler) Reconcile(ctx context.Context, active map[string]time.Time) error {
	return s.reconcile(ctx, active)
}

var (
	_ sinks.Undoer         = blockSink{}
	_ sinks.Reconciler     = blockSink{}
	_ sinks.ParamValidator = blockSink{}
	_ sinks.Undoer         = pageSink{}
	_ sinks.ParamValidator = pageSink{}
	_ sinks.Finder         = ticketSink{}
	_ sinks.ParamValidator = ticketSink{}
	_ sinks.Reconciler     = alertReconciler{}
)

// fakes is one set of configured sinks, named as the playbooks in testdata name them.
type fakes struct {
	edl    *fakeSink // block: Undoer, Reconciler, ParamValidator
	nft    *fakeSink // block: Undoer, Reconciler, ParamValidator
	lapse  *fakeSink // block: plain Sink (its blocks lapse by themselves)
	pd     *fakeSink // alert: Undoer, ParamValidator
	slack  *fakeSink // alert: plain Sink (takes no params)
	jira   *fakeSink // ticket: Finder, ParamValidator
	tix    *fakeSink // ticket: plain Sink (no Finder)
	bell   *fakeSink // alert: Reconciler
	tip    *fakeSink // intel: plain Sink
	byName map[string]sinks.Sink
}

func newFakes() *fakes {
	f := &fakes{
		edl:   newFake("edl", sinks.KindBlock),
		nft:   newFake("nft", sinks.KindBlock, "set"),
		lapse: newFake("lapse", sinks.KindBlock),
		pd:    newFake("pagerduty", sinks.KindAlert, "severity"),
		slack: newFake("slack", sinks.KindAlert),
		jira:  newFake("jira", sinks.KindTicket, "project", "priority", "labels"),
		tix:   newFake("tix", sinks.KindTicket),
		bell:  newFake("bell", sinks.KindAlert),
		tip:   newFake("tip", sinks.KindIntel),
	}
	f.jira.required = []string{"project"}
	f.byName = map[string]sinks.Sink{
		"edl": blockSink{f.edl}, "nft": blockSink{f.nft}, "lapse": f.lapse,
		"pagerduty": pageSink{f.pd}, "slack": f.slack,
		"jira": ticketSink{f.jira}, "tix": f.tix, "bell": alertReconciler{f.bell}, "tip": f.tip,
	}
	return f
}

// mustParse compiles playbooks against the fakes.
func mustParse(t *testing.T, yml string, f *fakes) *Set {
	t.Helper()
	set, err := Parse([]byte(yml), f.byName)
	if err != nil {
		t.Fatalf("playbooks do not compile: %v", err)
	}
	return set
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// Topics the workers under test write to.
const (
	scoredTopic  = "indicators.scored"
	resultsTopic = "act.results"
	dlqTopic     = "act.dlq"
)

// rig is one test's world: a real Redis under a unique key prefix, a ledger, fake sinks and a
// compiled playbook set.
type rig struct {
	t       *testing.T
	rdb     *redis.Client
	prefix  string
	ledger  *Ledger
	metrics *Metrics
	f       *fakes
	set     *Set
	guard   Guardrails
	log     *zap.Logger
	offset  atomic.Int64

	alertMu sync.Mutex
	alerts  []string
}

func newRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: pipelinetest.Redis(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	prefix := pipelinetest.Name(t, "act")
	t.Cleanup(func() {
		// Blocks, resolves and the kill switch have no TTL: leave nothing behind.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+":*", 500).Iterator()
		for iter.Next(ctx) {
			_ = rdb.Del(ctx, iter.Val()).Err()
		}
	})
	return rdb, prefix
}

func newRig(t *testing.T, playbooks string) *rig {
	t.Helper()
	rdb, prefix := newRedis(t)
	r := &rig{
		t: t, rdb: rdb, prefix: prefix,
		ledger:  NewLedger(rdb, prefix, "test-owner"),
		metrics: NewMetrics(prometheus.NewRegistry()),
		f:       newFakes(),
		log:     zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		guard: Guardrails{
			NeverBlock:         neverblock.New([]netip.Prefix{netip.MustParsePrefix("45.155.205.0/24")}, nil),
			MaxBlocksPerMinute: 1000, TripDuration: time.Minute,
			MaxBlockDuration: 720 * time.Hour, OffenceMemory: 720 * time.Hour,
		},
	}
	r.set = mustParse(t, playbooks, r.f)
	return r
}

func (r *rig) worker(kind sinks.Kind) *Worker {
	return NewWorker(WorkerOptions{
		Kind: kind, Name: "act-" + string(kind), ResultsTopic: resultsTopic, DLQTopic: dlqTopic,
		ViewURL: "https://view.example/", Guardrails: r.guard,
		Alert: func(_ context.Context, title string) {
			r.alertMu.Lock()
			r.alerts = append(r.alerts, title)
			r.alertMu.Unlock()
		},
	}, r.set, r.ledger, r.metrics, r.log)
}

func (r *rig) alertTitles() []string {
	r.alertMu.Lock()
	defer r.alertMu.Unlock()
	return slices.Clone(r.alerts)
}

// msg wraps a scored event as the act workers read it from the scored topic.
func (r *rig) msg(ev *event.Scored) kafka.Message {
	return kafka.Message{
		Topic: scoredTopic, Partition: 3, Offset: r.offset.Add(1),
		Key: []byte(ev.Indicator.Value), Value: ev.AppendJSON(nil),
		Time: time.Date(2026, 3, 14, 9, 27, 1, 0, time.UTC),
	}
}

// handled is what one Handle call returned, split by topic.
type handled struct {
	records []Record
	raw     []kafka.Message // the results-topic messages, as published
	dead    []kafka.Message
}

func (h handled) outcomes() []Outcome {
	out := make([]Outcome, len(h.records))
	for i, rec := range h.records {
		out[i] = rec.Outcome
	}
	return out
}

// only returns the single record, failing otherwise.
func (h handled) only(t *testing.T) Record {
	t.Helper()
	if len(h.records) != 1 || len(h.dead) != 0 {
		t.Fatalf("want exactly one record and no dead letter, got records %+v, %d dead letters", h.records, len(h.dead))
	}
	return h.records[0]
}

func (r *rig) handleMsg(w *Worker, m kafka.Message) handled {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := w.Handle(ctx, m)
	if err != nil {
		r.t.Fatalf("Handle: %v", err)
	}
	return splitOut(r.t, out)
}

func (r *rig) handle(w *Worker, ev *event.Scored) handled {
	r.t.Helper()
	return r.handleMsg(w, r.msg(ev))
}

func splitOut(t *testing.T, out []kafka.Message) handled {
	t.Helper()
	var h handled
	for _, m := range out {
		switch m.Topic {
		case resultsTopic:
			var rec Record
			if err := json.Unmarshal(m.Value, &rec); err != nil {
				t.Fatalf("audit record is not JSON: %v: %s", err, m.Value)
			}
			if string(m.Key) != rec.Target {
				t.Errorf("audit record keyed %q, want its target %q", m.Key, rec.Target)
			}
			h.records = append(h.records, rec)
			h.raw = append(h.raw, m)
		case dlqTopic:
			h.dead = append(h.dead, m)
		default:
			t.Fatalf("message for unexpected topic %q", m.Topic)
		}
	}
	return h
}

// scored builds a scored event for ip (which need not be an address).
// scored builds a scored event. At score 60 and above two sources agree (validated_by), as for the
// addresses the worked example's agreement playbooks act on; opts change anything.
func scored(id, ip string, score int, opts ...func(*event.Scored)) *event.Scored {
	ind, err := event.ParseIP(ip)
	if err != nil {
		ind = event.Indicator{Type: event.IPv4, Value: ip}
	}
	at := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	ev := &event.Scored{
		SchemaVersion: event.SchemaVersion, EventID: id, ObservedAt: at, ProcessedAt: at.Add(time.Second),
		Source: "paloalto-edge-01", InputFormat: event.FormatNative, Indicator: ind,
		Score: score, Severity: event.SeverityOf(score), Tags: []string{}, Reasons: []event.Reason{},
		Origin: event.Origin{Topic: "indicators", Partition: 1, Offset: 42}, ValidatedBy: []string{},
	}
	if score >= 60 {
		ev.ValidatedBy = []string{"abuseipdb", "criminalip"}
	}
	for _, o := range opts {
		o(ev)
	}
	return ev
}

func withTags(tags ...string) func(*event.Scored) { return func(ev *event.Scored) { ev.Tags = tags } }
func withISP(isp string) func(*event.Scored)      { return func(ev *event.Scored) { ev.ISP = isp } }

// within reports whether got is want give or take slack.
func within(got, want time.Time, slack time.Duration) bool {
	d := got.Sub(want)
	return d >= -slack && d <= slack
}

// waitFor polls cond every 10 ms until it holds, failing after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func header(m kafka.Message, key string) string { return pipelinetest.Header(m, key) }

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// errLedgerDown is what a faultHook makes a Redis command fail with.
var errLedgerDown = errors.New("dial tcp: connection refused (injected)")

// faultHook fails the Redis commands that match, as if Redis were unreachable for them: the next
// `left` matching commands, and every one while `on` is set.
type faultHook struct {
	match func(cmd redis.Cmder) bool
	left  atomic.Int64 // matching commands still to fail
	on    atomic.Bool  // fail every matching command while set
	hits  atomic.Int64 // matching commands failed so far
}

// addFault installs a fault hook on rdb for the commands that match.
func addFault(rdb *redis.Client, match func(cmd redis.Cmder) bool) *faultHook {
	h := &faultHook{match: match}
	rdb.AddHook(h)
	return h
}

func (h *faultHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *faultHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.match(cmd) && (h.on.Load() || h.left.Add(-1) >= 0) {
			h.hits.Add(1)
			cmd.SetErr(errLedgerDown)
			return errLedgerDown
		}
		return next(ctx, cmd)
	}
}

func (h *faultHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// runsScript matches the commands that run s (EVALSHA, or EVAL of its source).
func runsScript(s *redis.Script) func(cmd redis.Cmder) bool {
	return func(cmd redis.Cmder) bool {
		args := cmd.Args()
		if len(args) < 2 {
			return false
		}
		body, _ := args[1].(string)
		switch strings.ToLower(cmd.Name()) {
		case "evalsha", "evalsha_ro":
			return body == s.Hash()
		case "eval", "eval_ro":
			return redis.NewScript(body).Hash() == s.Hash()
		}
		return false
	}
}
