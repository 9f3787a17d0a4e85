package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/gate"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// EnrichHandler is the enricher's Handler: it decodes an indicator event, gates each indicator,
// runs the Processor on the rest and encodes one scored event per indicator; input it cannot
// decode becomes a dead letter.
type EnrichHandler struct {
	opts    Options
	proc    Processor
	gate    *gate.Gate
	dec     *event.Decoder
	metrics *telemetry.PipelineMetrics
	now     func() time.Time

	// Resolved once: a label lookup or type assertion per event is measurable on the hot path.
	decodeSeconds, processSeconds interface{ Observe(float64) }
	indicators                    map[event.Format]interface{ Add(float64) }
	gated                         map[string]interface{ Inc() } // by gate reason
	observer                      GateObserver                  // nil when proc is not one
	refreshAllowed                func(kafka.Message) bool      // nil: RefreshHeader is ignored
	enrichOwn                     bool                          // own-range indicators are processed too
	detail                        event.Detail                  // of the scored events published
	scratch                       sync.Pool                     // *[]byte encoding buffers (scoredMessage)
}

var _ Handler = (*EnrichHandler)(nil)

// HandlerOption changes an EnrichHandler's defaults.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	limits  event.Limits
	only    event.Format
	formats []event.FormatDecoder
	detail  event.Detail
	// refreshAllowed says which messages' RefreshHeader is honoured; nil: none.
	refreshAllowed func(kafka.Message) bool
}

// WithScoredDetail sets how much of each provider's answer the scored events carry
// (THREATPIPE_PIPELINE_SCORED_DETAIL; default event.DetailCompact).
func WithScoredDetail(d event.Detail) HandlerOption {
	return func(c *handlerConfig) { c.detail = d }
}

// WithRefreshRequests makes the handler honour RefreshHeader on the messages allow accepts
// (their lookups are forced); without it the header is ignored.
func WithRefreshRequests(allow func(kafka.Message) bool) HandlerOption {
	return func(c *handlerConfig) { c.refreshAllowed = allow }
}

// WithInputLimits sets the nesting depth and carried-context limits of the input decoder
// (THREATPIPE_PIPELINE_MAX_NESTING_DEPTH and THREATPIPE_PIPELINE_MAX_CONTEXT_BYTES); 0 keeps a
// limit's default (event.DefaultMaxDepth, event.DefaultMaxContextBytes).
func WithInputLimits(maxDepth, maxContextBytes int) HandlerOption {
	return func(c *handlerConfig) { c.limits.MaxDepth, c.limits.MaxContextBytes = maxDepth, maxContextBytes }
}

// WithInputFormats makes the decoder read formats besides native and ECS (pipeline/format/all),
// and only the one named only unless it is event.AutoFormat (THREATPIPE_KAFKA_INPUT_FORMAT,
// validated against the formats before).
func WithInputFormats(only event.Format, formats ...event.FormatDecoder) HandlerOption {
	return func(c *handlerConfig) { c.only, c.formats = only, formats }
}

// NewEnrichHandler builds the enricher's handler. It uses opts' output and DLQ topics and its
// event size and indicator limits, and the default nesting and context limits and formats
// (auto: native and ECS) unless an option sets them.
func NewEnrichHandler(opts Options, proc Processor, g *gate.Gate, m *telemetry.PipelineMetrics, options ...HandlerOption) *EnrichHandler {
	cfg := handlerConfig{limits: event.Limits{MaxBytes: opts.MaxEventBytes, MaxIndicators: opts.MaxIndicators}}
	for _, o := range options {
		o(&cfg)
	}
	dec, err := event.NewLimitedDecoder(cfg.limits).WithFormats(cfg.only, cfg.formats...)
	if err != nil {
		panic(err) // the format name is validated with the configuration
	}
	indicators := map[event.Format]interface{ Add(float64) }{}
	for _, f := range append([]event.Format{event.FormatNative, event.FormatECS}, formatNames(cfg.formats)...) {
		indicators[f] = m.Indicators.WithLabelValues(string(f))
	}
	h := &EnrichHandler{
		opts: opts, proc: proc, gate: g, metrics: m, now: time.Now,
		dec:            dec,
		detail:         cfg.detail,
		refreshAllowed: cfg.refreshAllowed,
		indicators:     indicators,
		decodeSeconds:  m.StageSeconds.WithLabelValues(telemetry.StageDecode),
		processSeconds: m.StageSeconds.WithLabelValues(telemetry.StageProcess),
		gated:          make(map[string]interface{ Inc() }),
	}
	h.scratch.New = newScratch
	for _, reason := range gate.Reasons {
		h.gated[reason] = m.Gated.WithLabelValues(reason)
	}
	h.observer, _ = proc.(GateObserver)
	if o, ok := proc.(OwnRangeProcessor); ok {
		h.enrichOwn = o.EnrichesOwnRanges()
	}
	return h
}

func formatNames(formats []event.FormatDecoder) []event.Format {
	out := make([]event.Format, len(formats))
	for i, f := range formats {
		out[i] = f.Name()
	}
	return out
}

// Handle implements Handler.
func (h *EnrichHandler) Handle(ctx context.Context, msg kafka.Message) ([]kafka.Message, error) {
	start := h.now()
	origin := event.Origin{Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset}
	in, err := h.dec.DecodeRecord(msg.Value, msg.Time, origin)
	h.decodeSeconds.Observe(h.now().Sub(start).Seconds())
	if err != nil {
		h.metrics.DeadLettered.WithLabelValues(string(event.ClassOf(err))).Inc()
		return []kafka.Message{h.deadLetter(msg, err)}, nil
	}
	h.indicators[in.Format].Add(float64(len(in.Sightings)))

	if h.refreshRequested(msg) {
		ctx = WithForcedLookup(ctx)
	}
	outs := make([]kafka.Message, 0, len(in.Sightings)+1)
	for _, s := range in.Sightings {
		ev := event.NewScored(in, s, origin, start)
		process := true
		if v, gated := h.gate.Check(s.Indicator.Addr); gated {
			prefix := v.Prefix.String()
			ev.Gate = &event.Gate{Reason: v.Reason, Prefix: prefix}
			process = h.enrichOwn && v.Reason == gate.ReasonOwnRange
			detail := v.Reason + " range " + prefix + ": no lookup"
			if process {
				detail = v.Reason + " range " + prefix + ": only the sources the rules ask about own ranges"
			}
			ev.Reasons = append(ev.Reasons, event.Reason{Source: "gate", Detail: detail, Points: 0})
			h.gated[v.Reason].Inc()
			if h.observer != nil {
				h.observer.Gated()
			}
		}
		if process {
			t := h.now()
			err := h.proc.Process(ctx, ev)
			h.processSeconds.Observe(h.now().Sub(t).Seconds())
			if err != nil {
				if ctx.Err() != nil {
					return nil, err // hard stop: redelivered whole
				}
				h.metrics.ProcessErrors.Inc()
				ev.Warnings = append(ev.Warnings, "enrichment failed: "+err.Error())
			}
		}
		ev.Score = min(max(ev.Score, 0), 100)
		ev.Severity = event.SeverityOf(ev.Score)
		outs = append(outs, h.scoredMessage(ev))
	}
	if in.Partial != nil {
		// Over the indicator limit: the first ones are scored, and the input goes to the
		// dead-letter topic too, so that the others are not lost.
		h.metrics.DeadLettered.WithLabelValues(string(in.Partial.Class)).Inc()
		outs = append(outs, h.deadLetter(msg, in.Partial))
	}
	return outs, nil
}

// refreshRequested reports whether msg asks for its indicators to be looked up again now and
// may (RefreshHeader, WithRefreshRequests).
func (h *EnrichHandler) refreshRequested(msg kafka.Message) bool {
	if h.refreshAllowed == nil {
		return false
	}
	for _, hd := range msg.Headers {
		if hd.Key == RefreshHeader {
			return string(hd.Value) == "1" && h.refreshAllowed(msg)
		}
	}
	return false
}
