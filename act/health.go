package act

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/health"
	"github.com/threatpipe/threatpipe/sinks"
)

// Guardrail flags a sink snapshot's Calls carry, worth 1 while the guardrail is in force. They
// are states, not counts: the metrics threatpipe_act_kill_switch and
// threatpipe_act_rate_cap_trips_total hold their history.
const (
	FlagKillSwitchOn   = "kill_switch_on"
	FlagRateCapTripped = "rate_cap_tripped"
)

// SinkHealth counts, per sink, the audit outcomes the workers and the lifter record since the
// process started, the sink calls that failed and the last failure, for the sinks' health
// snapshots. It is safe for concurrent use, and cheap where it is fed: a lock-free map read and
// atomic adds, plus a mutex on failures only.
type SinkHealth struct {
	sinks sync.Map // sink name -> *sinkCounters
}

type sinkCounters struct {
	outcomes sync.Map // Outcome -> *atomic.Int64
	errors   atomic.Int64
	recent   health.Recent
	last     health.LastError
}

// NewSinkHealth returns empty counters.
func NewSinkHealth() *SinkHealth { return &SinkHealth{} }

// sinkCall says whether an outcome is a call to the sink that worked (called, ok) or failed
// (called, !ok). The other outcomes (duplicates, suppressions, guardrails, dry runs) never
// reached the sink and say nothing of its health.
func sinkCall(o Outcome) (called, ok bool) {
	switch o {
	case OutcomeDone, OutcomeCommented, OutcomeUpdated, OutcomeRecovered, OutcomeLifted, OutcomeResolved:
		return true, true
	case OutcomeFailed, OutcomeLiftFailed:
		return true, false
	default:
		return false, false
	}
}

func (h *SinkHealth) counters(sink string) *sinkCounters {
	if c, ok := h.sinks.Load(sink); ok {
		return c.(*sinkCounters)
	}
	c, _ := h.sinks.LoadOrStore(sink, &sinkCounters{})
	return c.(*sinkCounters)
}

// Observe counts the audit record rec, written at at, for its sink. Records without a sink or
// an outcome (a condition error, a step cut short by shutdown) are not counted. A nil
// SinkHealth counts nothing.
func (h *SinkHealth) Observe(rec *Record, at time.Time) {
	if h == nil || rec == nil || rec.Sink == "" || rec.Outcome == "" {
		return
	}
	c := h.counters(rec.Sink)
	n, ok := c.outcomes.Load(rec.Outcome)
	if !ok {
		n, _ = c.outcomes.LoadOrStore(rec.Outcome, new(atomic.Int64))
	}
	n.(*atomic.Int64).Add(1)
	called, worked := sinkCall(rec.Outcome)
	if !called {
		return
	}
	c.recent.Add(at, !worked)
	if !worked {
		c.errors.Add(1)
		c.last.Set(at, rec.Error)
	}
}

// Names returns the sinks that recorded anything, sorted.
func (h *SinkHealth) Names() []string {
	var out []string
	h.sinks.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	slices.Sort(out)
	return out
}

// Snapshot is sink's health as this process sees it at now; the reporter fills in Owner, Role
// and the guardrail flags. Status is derived from the sink calls of the last
// health.RecentWindow: failing when the latest health.FailingRun all failed, degraded when
// any failed, ok otherwise (a sink not called lately is ok). "disabled" and "quota_exhausted"
// do not apply to sinks, and Timeouts stays zero: a sink's failure arrives after the sink's own
// retries, as the audit record's error text (LastError).
func (h *SinkHealth) Snapshot(sink string, now time.Time) health.Snapshot {
	s := health.Snapshot{Component: health.ComponentSink, Name: sink, At: now.UTC(), Status: health.StatusOK, Calls: map[string]int64{}}
	v, ok := h.sinks.Load(sink)
	if !ok {
		return s
	}
	c := v.(*sinkCounters)
	c.outcomes.Range(func(k, n any) bool {
		s.Calls[string(k.(Outcome))] = n.(*atomic.Int64).Load()
		return true
	})
	s.Errors = c.errors.Load()
	s.LastError, s.LastErrorAt = c.last.Get()
	if !s.LastErrorAt.IsZero() {
		s.LastErrorAt = s.LastErrorAt.UTC()
	}
	s.Status = c.recent.Counts(now, health.RecentWindow).Status()
	return s
}

// HealthReporter writes a health snapshot of every sink to the store the prioritised view
// reads, every interval, as the ledger's owner. Each block sink's snapshot says whether the
// block rate cap is tripped, and every sink's whether the kill switch is on (FlagKillSwitchOn,
// FlagRateCapTripped in Calls).
type HealthReporter struct {
	Store  *health.Store
	Health *SinkHealth
	// Ledger names the owner and holds the run-time kill switch and the rate-cap trip.
	Ledger *Ledger
	// Sinks are reported whether or not they acted yet: the sinks this process's workers use.
	// Any other sink that records an outcome (one the lifter undoes, say) is reported too.
	Sinks map[string]sinks.Sink
	// KillSwitch is the kill switch set in the environment (THREATPIPE_ACT_KILL_SWITCH).
	KillSwitch bool
	Role       string        // default "act"
	Interval   time.Duration // default health.ReportInterval
	Log        *zap.Logger
}

// Run reports until ctx ends; it returns nil then. Failed writes are logged and retried the
// next interval.
func (r *HealthReporter) Run(ctx context.Context) error {
	role := r.Role
	if role == "" {
		role = "act"
	}
	return health.Report(ctx, r.Store, r.Ledger.Owner(), role, r.Interval, r.snapshots, r.Log)
}

// snapshots takes every sink's snapshot at now, with the guardrails as the ledger holds them.
// A guardrail the ledger cannot tell (Redis down) is left out.
func (r *HealthReporter) snapshots(ctx context.Context, now time.Time) []health.Snapshot {
	kill := r.KillSwitch
	if !kill {
		on, err := r.Ledger.KillSwitch(ctx)
		kill = err == nil && on
	}
	tripped, err := r.Ledger.Tripped(ctx, false)
	tripped = err == nil && tripped
	names := slices.Sorted(maps.Keys(r.Sinks))
	for _, n := range r.Health.Names() {
		if _, ok := r.Sinks[n]; !ok {
			names = append(names, n)
		}
	}
	out := make([]health.Snapshot, 0, len(names))
	for _, name := range names {
		s := r.Health.Snapshot(name, now)
		if kill {
			s.Calls[FlagKillSwitchOn] = 1
		}
		if sk, ok := r.Sinks[name]; ok && tripped && sk.Kind() == sinks.KindBlock {
			s.Calls[FlagRateCapTripped] = 1
		}
		out = append(out, s)
	}
	return out
}
