package ingest

import "github.com/prometheus/client_golang/prometheus"

// Skip reasons of threatpipe_ingest_indicators_skipped_total.
const (
	SkipNotIP  = "not_ip"
	SkipRecent = "recent" // published within THREATPIPE_INGEST_REPUBLISH_AFTER (recent.go)
)

// Error stages of threatpipe_ingest_errors_total.
const (
	StagePoll    = "poll"
	StageAuth    = "auth"
	StageEncode  = "encode"
	StagePublish = "publish"
	StageCursor  = "cursor"
	StageRecent  = "recent"
)

// Metrics are the ingest role's Prometheus metrics, labelled by source.
type Metrics struct {
	Polls     *prometheus.CounterVec
	Polled    *prometheus.CounterVec
	Published *prometheus.CounterVec
	Skipped   *prometheus.CounterVec
	Errors    *prometheus.CounterVec
	// CursorLag is how far behind the platform the stored cursor is: now minus the newest
	// Modified of the last page stored while the platform still had more, and 0 once a poll
	// reached the end. A backlog being worked through shows as a falling lag.
	CursorLag *prometheus.GaugeVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "threatpipe_ingest_polls_total",
			Help: "Polls of a threat-intel platform that answered, by source."}, []string{"source"}),
		Polled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "threatpipe_ingest_indicators_polled_total",
			Help: "Indicators returned by the platforms' polls, by source (re-polls of an unacknowledged page count again)."}, []string{"source"}),
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "threatpipe_ingest_events_published_total",
			Help: "Native events acknowledged by Kafka on the input topic, by source."}, []string{"source"}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "threatpipe_ingest_indicators_skipped_total",
			Help: "Indicators not published, by source and reason (not_ip: the value is not one IP address)."}, []string{"source", "reason"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "threatpipe_ingest_errors_total",
			Help: "Failures by source and stage (poll, auth, encode, publish, cursor); each is retried with backoff, auth ones slowly."}, []string{"source", "stage"}),
		CursorLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "threatpipe_ingest_cursor_lag_seconds",
			Help: "Age of the newest indicator of the last page stored while the platform had more; 0 once a poll reached the end."}, []string{"source"}),
	}
	reg.MustRegister(m.Polls, m.Polled, m.Published, m.Skipped, m.Errors, m.CursorLag)
	return m
}
