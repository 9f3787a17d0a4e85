package view

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Inputs of the view, as metric labels.
const (
	InputScored  = "scored"
	InputResults = "results"
)

// Outcomes of a message besides the Applied values.
const (
	outcomeUnreadable = "unreadable" // not a scored event or audit record: counted, logged, skipped
	// outcomeNotIndicator: an analyst's record about no single address (the kill switch, a CIDR
	// on the allowlist); it stays on the audit topic, which is where it is read.
	outcomeNotIndicator = "not_indicator"
)

// Metrics are the view's Prometheus metrics. Fields are safe for concurrent use.
type Metrics struct {
	Messages    *prometheus.CounterVec
	StoreErrors prometheus.Counter
	Indicators  prometheus.Gauge
	Swept       prometheus.Counter
	SweepErrors prometheus.Counter
	Evicted     prometheus.Counter
}

// NewMetrics registers the view's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "threatpipe_view_messages_total",
			Help: "Messages the view read, by input (scored, results) and outcome (applied, duplicate, expired, gated, unreadable)."},
			[]string{"input", "outcome"}),
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "threatpipe_view_store_errors_total",
			Help: "Failed Redis updates; the message is retried until it is applied or the process stops (it stays uncommitted)."}),
		Indicators: prometheus.NewGauge(prometheus.GaugeOpts{Name: "threatpipe_view_indicators",
			Help: "Indicators in the view's ranking, as of the last sweep."}),
		Swept: prometheus.NewCounter(prometheus.CounterOpts{Name: "threatpipe_view_swept_total",
			Help: "Indicators removed from the view after THREATPIPE_VIEW_RETENTION without a sighting."}),
		SweepErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "threatpipe_view_sweep_errors_total",
			Help: "Sweeps that failed (retried at the next interval)."}),
		Evicted: prometheus.NewCounter(prometheus.CounterOpts{Name: "threatpipe_view_evicted_total",
			Help: "Indicators evicted, lowest-ranked first, to keep the view within THREATPIPE_VIEW_MAX_INDICATORS."}),
	}
	reg.MustRegister(m.Messages, m.StoreErrors, m.Indicators, m.Swept, m.SweepErrors, m.Evicted)
	return m
}

// maxFieldBytes bounds the free-text fields the view keeps of an event (source, ISP, AS
// organisation, city): they come from outside and are shown to analysts.
const maxFieldBytes = 256

// maxEventIDBytes is the contract's bound on event ids (docs/events.md).
const maxEventIDBytes = 256

// DecodeScored reads a scored event (docs/events.md) from a message of the scored topic. The
// indicator is normalised to its canonical spelling; an event without an event id is named by
// where it was read (kafka:<topic>-<partition>-<offset>, stable across redeliveries).
func DecodeScored(msg kafka.Message) (*event.Scored, error) {
	var ev event.Scored
	if err := json.Unmarshal(msg.Value, &ev); err != nil {
		return nil, fmt.Errorf("not a scored event: %w", err)
	}
	ind, err := event.ParseIP(ev.Indicator.Value)
	if err != nil {
		return nil, fmt.Errorf("not a scored event: indicator: %w", err)
	}
	ev.Indicator = ind
	ev.EventID = strings.TrimSpace(ev.EventID)
	if ev.EventID == "" {
		ev.EventID = "kafka:" + event.Origin{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset}.ID()
	}
	if len(ev.EventID) > maxEventIDBytes || !utf8.ValidString(ev.EventID) {
		return nil, errors.New("not a scored event: event_id is over 256 bytes or not UTF-8")
	}
	ev.Source = clip(ev.Source, maxFieldBytes, "")
	ev.ISP = clip(ev.ISP, maxFieldBytes, "")
	if ev.Geo != nil {
		ev.Geo.CityName = clip(ev.Geo.CityName, maxFieldBytes, "")
		ev.Geo.CountryISOCode = clip(ev.Geo.CountryISOCode, maxFieldBytes, "")
	}
	if ev.AS != nil && ev.AS.Organization != nil {
		ev.AS.Organization.Name = clip(ev.AS.Organization.Name, maxFieldBytes, "")
	}
	for _, p := range ev.Providers {
		if p != nil && p.Result != nil {
			r := p.Result
			r.ISP, r.ASOrganization = clip(r.ISP, maxFieldBytes, ""), clip(r.ASOrganization, maxFieldBytes, "")
			r.City, r.CountryISO = clip(r.City, maxFieldBytes, ""), clip(r.CountryISO, maxFieldBytes, "")
		}
	}
	return &ev, nil
}

// errNotIndicator: DecodeRecord read an analyst's record that names no single address.
var errNotIndicator = errors.New("an analyst's record about no single address")

// DecodeRecord reads an audit record (docs/schemas/action-record.schema.json) from a message of
// the results topic, with its target normalised to the canonical address. An analyst's record
// about no single address (the kill switch, a CIDR) comes back with errNotIndicator.
func DecodeRecord(msg kafka.Message) (*act.Record, error) {
	var rec act.Record
	if err := json.Unmarshal(msg.Value, &rec); err != nil {
		return nil, fmt.Errorf("not an audit record: %w", err)
	}
	ind, err := event.ParseIP(rec.Target)
	if err != nil && rec.Kind == act.KindAnalyst {
		return &rec, errNotIndicator
	}
	if err != nil {
		return nil, fmt.Errorf("not an audit record: target: %w", err)
	}
	rec.Target = ind.Value
	return &rec, nil
}

// ScoredHandler applies scored events to the store. It is a pipeline.Handler that publishes
// nothing: an unreadable message is counted and logged, not dead-lettered (the enricher's
// contract already guarantees what reaches the scored topic; the view only reads it).
type ScoredHandler struct {
	store *Store
	m     *Metrics
	log   *zap.Logger
}

// RecordHandler applies audit records to the store: the actions taken on each indicator.
type RecordHandler struct {
	store *Store
	m     *Metrics
	log   *zap.Logger
}

var (
	_ pipeline.Handler = (*ScoredHandler)(nil)
	_ pipeline.Handler = (*RecordHandler)(nil)
)

// NewScoredHandler returns the handler of the scored topic.
func NewScoredHandler(s *Store, m *Metrics, log *zap.Logger) *ScoredHandler {
	return &ScoredHandler{store: s, m: m, log: orNop(log)}
}

// NewRecordHandler returns the handler of the audit topic.
func NewRecordHandler(s *Store, m *Metrics, log *zap.Logger) *RecordHandler {
	return &RecordHandler{store: s, m: m, log: orNop(log)}
}

func orNop(l *zap.Logger) *zap.Logger {
	if l == nil {
		return zap.NewNop()
	}
	return l
}

// Handle implements pipeline.Handler. It returns an error only when ctx ends before the event
// is applied; the message then stays uncommitted and is redelivered.
func (h *ScoredHandler) Handle(ctx context.Context, msg kafka.Message) ([]kafka.Message, error) {
	ev, err := DecodeScored(msg)
	if err != nil {
		h.m.Messages.WithLabelValues(InputScored, outcomeUnreadable).Inc()
		h.log.Warn("skipping an unreadable message on the scored topic", located(msg, err)...)
		return nil, nil
	}
	var created bool
	applied, err := retry(ctx, h.m, h.log, func() (applied Applied, err error) {
		applied, created, err = h.store.applyScoredEvent(ctx, ev)
		return applied, err
	})
	if err != nil {
		return nil, err
	}
	h.m.Messages.WithLabelValues(InputScored, string(applied)).Inc()
	if created {
		// The event is applied whatever happens here; the sweeper evicts what this round left.
		// Two per new indicator: one for itself, one to catch up with what concurrent workers
		// added; the sweeper evicts whatever is left.
		n, err := h.store.EnforceCap(ctx, 2)
		h.m.Evicted.Add(float64(n))
		if err != nil && ctx.Err() == nil {
			h.log.Warn("evicting indicators over THREATPIPE_VIEW_MAX_INDICATORS failed; the sweeper retries", zap.Error(err))
		}
	}
	return nil, nil
}

// Handle implements pipeline.Handler, as ScoredHandler.Handle.
func (h *RecordHandler) Handle(ctx context.Context, msg kafka.Message) ([]kafka.Message, error) {
	rec, err := DecodeRecord(msg)
	if errors.Is(err, errNotIndicator) {
		h.m.Messages.WithLabelValues(InputResults, outcomeNotIndicator).Inc()
		h.log.Debug("an analyst's record about no single address: not stored per indicator", located(msg, err)...)
		return nil, nil
	}
	if err != nil {
		h.m.Messages.WithLabelValues(InputResults, outcomeUnreadable).Inc()
		h.log.Warn("skipping an unreadable message on the audit topic", located(msg, err)...)
		return nil, nil
	}
	digest := RecordDigest(msg.Value)
	applied, err := retry(ctx, h.m, h.log, func() (Applied, error) { return h.store.ApplyRecord(ctx, rec, digest) })
	if err != nil {
		return nil, err
	}
	h.m.Messages.WithLabelValues(InputResults, string(applied)).Inc()
	return nil, nil
}

func located(msg kafka.Message, err error) []zap.Field {
	return []zap.Field{zap.String("topic", msg.Topic), zap.Int("partition", msg.Partition),
		zap.Int64("offset", msg.Offset), zap.Error(err)}
}

// retry runs a store update until it succeeds or ctx ends, backing off from 100 ms to 5 s with
// jitter (pipeline.DependencyBackOff): skipping an update would lose a sighting, so the message
// waits (uncommitted) for Redis.
func retry(ctx context.Context, m *Metrics, log *zap.Logger, op func() (Applied, error)) (Applied, error) {
	wait := pipeline.DependencyBackOff()
	for attempt := 1; ; attempt++ {
		applied, err := op()
		if err == nil {
			return applied, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		m.StoreErrors.Inc()
		delay := wait.NextBackOff()
		log.Warn("view update failed; retrying", zap.Int("attempt", attempt), zap.Duration("backoff", delay), zap.Error(err))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		}
	}
}

// NoPublisher is the engine's publisher for handlers that never return outputs: the view
// publishes nothing, so it opens no producer connection.
func NoPublisher(func([]kafka.Message, error)) pipeline.Publisher { return noPublisher{} }

type noPublisher struct{}

func (noPublisher) WriteMessages(context.Context, ...kafka.Message) error {
	return errors.New("view: the view publishes nothing")
}

func (noPublisher) Close() error { return nil }

// RunSweeper sweeps expired indicators and evicts those over the cap (EnforceCap) every interval
// until ctx ends, keeping the indicators gauge current. A failed sweep is counted and logged, and
// retried at the next interval.
func RunSweeper(ctx context.Context, s *Store, interval time.Duration, m *Metrics, log *zap.Logger) error {
	log = orNop(log)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.Sweep(ctx)
		m.Swept.Add(float64(n))
		if err != nil && ctx.Err() == nil {
			m.SweepErrors.Inc()
			log.Warn("view sweep failed; retrying next interval", zap.Error(err))
		} else if n > 0 {
			log.Info("expired indicators removed from the view", zap.Int("removed", n))
		}
		evicted, err := s.EnforceCap(ctx, math.MaxInt)
		m.Evicted.Add(float64(evicted))
		if err != nil && ctx.Err() == nil {
			m.SweepErrors.Inc()
			log.Warn("evicting indicators over THREATPIPE_VIEW_MAX_INDICATORS failed; retrying next interval", zap.Error(err))
		} else if evicted > 0 {
			log.Info("lowest-ranked indicators evicted to keep the view within THREATPIPE_VIEW_MAX_INDICATORS",
				zap.Int("evicted", evicted), zap.Int("max_indicators", s.opts.MaxIndicators))
		}
		if c, err := s.Count(ctx); err == nil {
			m.Indicators.Set(float64(c))
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
	}
}
