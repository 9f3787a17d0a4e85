// Package telemetry holds what every threatpipe role exposes: Prometheus metrics on a registry
// of its own, a zap logger, and the HTTP server for /healthz, /readyz and /metrics.
package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Stages of the enricher whose latency is measured.
const (
	StageDecode    = "decode"
	StageProcess   = "process"
	StagePublish   = "publish"
	StageEndToEnd  = "end_to_end"
	StageFetchWait = "fetch_wait"
)

// PipelineMetrics are the enricher's metrics. Fields are safe for concurrent use.
type PipelineMetrics struct {
	Consumed       *prometheus.CounterVec
	Produced       *prometheus.CounterVec
	DeadLettered   *prometheus.CounterVec
	Gated          *prometheus.CounterVec
	Indicators     *prometheus.CounterVec
	ProcessErrors  prometheus.Counter
	InFlight       prometheus.Gauge
	InFlightBytes  prometheus.Gauge
	FetchErrors    prometheus.Counter
	StageSeconds   *prometheus.HistogramVec
	CommitLag      *prometheus.GaugeVec
	InFlightByPart *prometheus.GaugeVec
	ConsumerLag    prometheus.Gauge
	Commits        prometheus.Counter
	CommitErrors   prometheus.Counter
	PublishRetries prometheus.Counter
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewPipelineMetrics registers the enricher's metrics on reg.
func NewPipelineMetrics(reg prometheus.Registerer) *PipelineMetrics {
	m := &PipelineMetrics{
		Consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "threatpipe_events_consumed_total", Help: "Input messages fetched.",
		}, []string{"topic"}),
		Produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "threatpipe_events_produced_total", Help: "Messages acknowledged by Kafka, by topic (scored and dead-letter).",
		}, []string{"topic"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "threatpipe_dead_letters_total", Help: "Input messages sent to the dead-letter topic, by error class.",
		}, []string{"class"}),
		Gated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "threatpipe_indicators_gated_total", Help: "Indicators that needed no lookup, by gate reason.",
		}, []string{"reason"}),
		Indicators: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "threatpipe_indicators_total", Help: "Indicators decoded, by input format.",
		}, []string{"format"}),
		ProcessErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "threatpipe_process_errors_total", Help: "Indicators whose processor failed; they are published with the error in warnings.",
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "threatpipe_in_flight_events", Help: "Input messages fetched whose outputs are not all acknowledged yet.",
		}),
		InFlightBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "threatpipe_in_flight_bytes", Help: "Bytes held by in-flight events, inputs and outputs (bounded by THREATPIPE_PIPELINE_MAX_IN_FLIGHT_BYTES).",
		}),
		FetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "threatpipe_fetch_errors_total", Help: "Failed fetches from the input topic (the brokers unreachable, a rebalance); each is retried with backoff.",
		}),
		StageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "threatpipe_stage_duration_seconds", Help: "Latency per stage; end_to_end is from the event's observed_at to acknowledgement.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"stage"}),
		CommitLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "threatpipe_commit_lag_offsets", Help: "Highest fetched offset minus the last committed one, per partition.",
		}, []string{"topic", "partition"}),
		InFlightByPart: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "threatpipe_partition_in_flight_events", Help: "Events in flight per partition.",
		}, []string{"topic", "partition"}),
		ConsumerLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "threatpipe_consumer_lag", Help: "Messages between the reader's position and the end of its partitions (kafka-go ReaderStats.Lag).",
		}),
		Commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "threatpipe_commits_total", Help: "Successful offset commits.",
		}),
		CommitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "threatpipe_commit_errors_total", Help: "Failed offset commits (retried at the next interval).",
		}),
		PublishRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "threatpipe_publish_retries_total", Help: "Output messages re-sent after a failed produce.",
		}),
	}
	reg.MustRegister(m.Consumed, m.Produced, m.DeadLettered, m.Gated, m.Indicators, m.ProcessErrors, m.InFlight,
		m.InFlightBytes, m.FetchErrors, m.StageSeconds, m.CommitLag, m.InFlightByPart, m.ConsumerLag, m.Commits, m.CommitErrors, m.PublishRetries)
	return m
}
