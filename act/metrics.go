package act

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the playbook workers' Prometheus metrics.
type Metrics struct {
	Actions    *prometheus.CounterVec
	Seconds    *prometheus.HistogramVec
	Unreadable prometheus.Counter
	Trips      prometheus.Counter
	KillSwitch prometheus.Gauge
	Lifts      *prometheus.CounterVec
	// Signatures counts records checked against THREATPIPE_SIGNING_KEY, by purpose (scored,
	// change) and result (verified, unsigned_accepted, refused_<reason>).
	Signatures *prometheus.CounterVec
	// Health counts the same outcomes per sink for the sinks' health snapshots (HealthReporter).
	Health *SinkHealth
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "threatpipe_act_actions_total",
			Help: "Playbook steps considered, by action kind, sink and outcome (docs/playbooks.md)."}, []string{"kind", "sink", "outcome"}),
		Seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "threatpipe_act_action_seconds",
			Help: "Time to settle one step, sink calls and retries included.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"sink"}),
		Unreadable: prometheus.NewCounter(prometheus.CounterOpts{Name: "threatpipe_act_unreadable_total",
			Help: "Scored-topic messages that were not scored events, and changes-topic messages that were not change records (dead-lettered)."}),
		Trips: prometheus.NewCounter(prometheus.CounterOpts{Name: "threatpipe_act_rate_cap_trips_total",
			Help: "Times the block rate cap tripped blocking to alert-only."}),
		KillSwitch: prometheus.NewGauge(prometheus.GaugeOpts{Name: "threatpipe_act_kill_switch",
			Help: "1 while the run-time kill switch is on."}),
		Lifts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "threatpipe_act_lifts_total",
			Help: "Expired blocks lifted and pages resolved, by sink and outcome."}, []string{"sink", "outcome"}),
		Signatures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "threatpipe_act_signatures_total",
			Help: "Scored events and changes checked against THREATPIPE_SIGNING_KEY, by purpose and result; refused_* records were dead-lettered, not acted on."},
			[]string{"purpose", "result"}),
		Health: NewSinkHealth(),
	}
	reg.MustRegister(m.Actions, m.Seconds, m.Unreadable, m.Trips, m.KillSwitch, m.Lifts, m.Signatures)
	return m
}
