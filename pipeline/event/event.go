// Package event defines threatpipe's message contracts: the indicator events that SIEM producers
// publish, the scored events the enricher emits, and the decoder that turns raw Kafka message
// values into indicators. The JSON shapes are documented in docs/events.md and docs/schemas/.
package event

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// SchemaVersion is written into every scored and dead-letter message. Bump it on any change that
// a consumer could notice, and document the change in docs/events.md.
const SchemaVersion = "3"

// IndicatorType is the STIX-style type of an indicator.
type IndicatorType string

// Supported indicator types.
const (
	IPv4 IndicatorType = "ipv4-addr"
	IPv6 IndicatorType = "ipv6-addr"
)

// Indicator is one normalised IP address.
type Indicator struct {
	Type IndicatorType `json:"type"`
	// Value is the canonical spelling (netip.Addr.String of the unmapped address); two spellings
	// of one address always have the same Value, so it is safe as a cache and partition key.
	Value string     `json:"value"`
	Addr  netip.Addr `json:"-"`
}

// Format names the shape an input message arrived in.
type Format string

// Input formats.
const (
	FormatNative Format = "native"
	FormatECS    Format = "ecs"
)

// Sighting is one indicator named by an input event, with the ECS fields it was found in.
type Sighting struct {
	Indicator Indicator
	Fields    []string
}

// Input is a decoded input message.
type Input struct {
	Format     Format
	EventID    string
	ObservedAt time.Time
	Source     string
	// Context is carried to every scored event: the native event's context object, or the
	// whole original document of an ECS event, unchanged unless it was over
	// Limits.MaxContextBytes (then Truncated says what was left out).
	Context json.RawMessage
	// Extra holds the native event's unknown top-level fields, kept rather than rejected.
	Extra     map[string]json.RawMessage
	Truncated *Truncation
	Sightings []Sighting
	Warnings  []string
	// Partial is set when the event names more indicators than Limits.MaxIndicators: the
	// Sightings are the first ones, and the input is dead-lettered with this error as well, so
	// that the rest are not lost.
	Partial *DecodeError
}

// Severity buckets a score for routing and display.
type Severity string

// Severities, lowest first.
const (
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// SeverityOf maps a 0-100 score to its severity: 0-19 info, 20-39 low, 40-59 medium,
// 60-79 high, 80-100 critical.
func SeverityOf(score int) Severity {
	switch {
	case score >= 80:
		return SeverityCritical
	case score >= 60:
		return SeverityHigh
	case score >= 40:
		return SeverityMedium
	case score >= 20:
		return SeverityLow
	default:
		return SeverityInfo
	}
}

// Reason explains one contribution to a score.
type Reason struct {
	Source string `json:"source"`
	Detail string `json:"detail"`
	Points int    `json:"points"`
}

// Gate records why an indicator was not looked up.
type Gate struct {
	Reason string `json:"reason"`
	Prefix string `json:"prefix"`
}

// Origin locates the input message a scored event came from.
type Origin struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
}

// ID names an event that carries no id of its own by where it was read:
// <topic>-<partition>-<offset>.
func (o Origin) ID() string {
	var num [20]byte
	b := make([]byte, 0, len(o.Topic)+24)
	b = append(b, o.Topic...)
	b = append(b, '-')
	b = append(b, strconv.AppendInt(num[:0], int64(o.Partition), 10)...)
	b = append(b, '-')
	b = append(b, strconv.AppendInt(num[:0], o.Offset, 10)...)
	return string(b)
}

// Scored is the output contract: one per indicator of an input event.
type Scored struct {
	SchemaVersion string `json:"schema_version"`
	EventID       string `json:"event_id"`
	// Revision counts the publications of this event's verdict for this indicator: 0 first,
	// then one more each time a parked lookup finishes (docs/lifecycle.md). Consumers keep the
	// highest revision of an event_id and indicator.
	Revision    int       `json:"revision"`
	ObservedAt  time.Time `json:"observed_at"`
	ProcessedAt time.Time `json:"processed_at"`
	Source      string    `json:"source"`
	InputFormat Format    `json:"input_format"`
	Indicator   Indicator `json:"indicator"`
	ECSFields   []string  `json:"ecs_fields,omitempty"`
	Score       int       `json:"score"`
	Severity    Severity  `json:"severity"`
	// Confidence (0-100) says how far the sources that answered agree, and how many did.
	Confidence int `json:"confidence"`
	// ValidatedBy lists the sources that independently rate the indicator malicious, sorted.
	ValidatedBy []string `json:"validated_by"`
	Tags        []string `json:"tags"`
	Reasons     []Reason `json:"reasons"`
	Gate        *Gate    `json:"gate,omitempty"`
	// Providers holds each provider's outcome, keyed by provider name; absent for gated
	// indicators.
	Providers map[string]*ProviderOutcome `json:"providers,omitempty"`
	AS        *AS                         `json:"as,omitempty"`
	Geo       *GeoInfo                    `json:"geo,omitempty"`
	ISP       string                      `json:"isp,omitempty"`
	// Fields are the enrichment rules' mapped fields (threat_type, malware_families, ...).
	Fields   map[string]json.RawMessage `json:"fields,omitempty"`
	Warnings []string                   `json:"warnings,omitempty"`
	Context  json.RawMessage            `json:"context,omitempty"`
	Extra    map[string]json.RawMessage `json:"extra,omitempty"`
	// ContextTruncated is set when Context and Extra are not the input's whole context; the
	// whole input is at Origin.
	ContextTruncated *Truncation `json:"context_truncated,omitempty"`
	Origin           Origin      `json:"origin"`
}

// NewScored starts the scored event for one sighting of in, with score 0 and empty
// explanations; the gate and the processor fill in the rest.
func NewScored(in *Input, s Sighting, origin Origin, now time.Time) *Scored {
	return &Scored{
		SchemaVersion: SchemaVersion,
		EventID:       in.EventID,
		ObservedAt:    in.ObservedAt,
		// Milliseconds, as SIEMs keep time: nanoseconds would be six bytes per event of noise.
		ProcessedAt: now.Truncate(time.Millisecond),
		Source:      in.Source,
		InputFormat: in.Format,
		Indicator:   s.Indicator,
		ECSFields:   s.Fields,
		Severity:    SeverityInfo,
		ValidatedBy: []string{},
		Tags:        []string{},
		Reasons:     []Reason{},
		// Clipped: the scored events of one input share its warnings, and a warning appended to
		// one of them must not write into the others' backing array.
		Warnings:         slices.Clip(in.Warnings),
		Context:          in.Context,
		Extra:            in.Extra,
		ContextTruncated: in.Truncated,
		Origin:           origin,
	}
}

// DropCarried removes the event's context and extra fields, which made it too large (why says
// for what), records that in ContextTruncated and warns. It reports whether there was anything
// to drop.
func (s *Scored) DropCarried(why string) bool {
	if s.Context == nil && s.Extra == nil {
		return false
	}
	t := &Truncation{OriginalBytes: len(s.Context) + extraSize(s.Extra)}
	if s.ContextTruncated != nil {
		t.OriginalBytes = s.ContextTruncated.OriginalBytes
	}
	for _, c := range []struct {
		name    string
		present bool
	}{{"context", s.Context != nil}, {"extra", s.Extra != nil}} {
		if c.present {
			t.Omitted = append(t.Omitted, c.name)
		}
	}
	t.OmittedCount = len(t.Omitted)
	s.Context, s.Extra, s.ContextTruncated = nil, nil, t
	s.Warnings = append(s.Warnings, "context and extra fields dropped: "+why)
	return true
}
