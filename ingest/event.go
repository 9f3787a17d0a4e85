package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// SourcePrefix is prepended to a platform's name in the events' source field ("tip:misp"), so
// playbooks and the view can tell a threat-library entry from a sensor's sighting.
const SourcePrefix = "tip:"

// nativeEvent is the native input event of docs/events.md, as the runner writes it.
type nativeEvent struct {
	SchemaVersion string          `json:"schema_version"`
	EventID       string          `json:"event_id"`
	ObservedAt    string          `json:"observed_at,omitempty"`
	Source        string          `json:"source"`
	Indicator     event.Indicator `json:"indicator"`
	Context       map[string]any  `json:"context"`
}

// EventID is the event id of value from the platform record (ref, modified) of source. It is a
// hash so that it is stable across re-polls of the same page (the enricher's idempotence keys on
// it), differs between two addresses of one record (a STIX pattern may name several), and stays
// far below event.MaxEventIDBytes however long a platform's ids are.
func EventID(source, ref string, modified time.Time, value string) string {
	h := sha256.New()
	for _, part := range []string{source, ref, modified.UTC().Format(time.RFC3339Nano), value} {
		// Length-prefixed so that no two different tuples hash the same bytes.
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return SourcePrefix + source + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}

// toMessage turns one indicator of source into a native event keyed by the canonical address
// (one address stays on one partition, as every producer keys it). It returns ok=false when the
// value is not one IP address.
func toMessage(topic, source string, ind Indicator) (kafka.Message, bool, error) {
	ip, err := event.ParseIP(ind.Value)
	if err != nil {
		return kafka.Message{}, false, nil
	}
	ev := nativeEvent{
		SchemaVersion: "1",
		EventID:       EventID(source, ind.Ref, ind.Modified, ip.Value),
		Source:        SourcePrefix + source,
		Indicator:     ip,
		Context:       map[string]any{"tip": tipContext(source, ind)},
	}
	if !ind.Modified.IsZero() {
		ev.ObservedAt = ind.Modified.UTC().Format(time.RFC3339Nano)
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return kafka.Message{}, false, fmt.Errorf("encode event for %s: %w", ind.Ref, err)
	}
	return kafka.Message{Topic: topic, Key: []byte(ip.Value), Value: raw}, true, nil
}

// tipContext is the event's context.tip object: the platform's name, record and tags, then the
// source's own context keys. The runner's keys win over a source's of the same name, so a
// platform field named "ref" cannot disguise which record the event came from.
func tipContext(source string, ind Indicator) map[string]any {
	tip := make(map[string]any, len(ind.Context)+3)
	for k, v := range ind.Context {
		tip[k] = v
	}
	tip["name"] = source
	tip["ref"] = ind.Ref
	tags := slices.Clone(ind.Tags)
	if tags == nil {
		tags = []string{}
	}
	tip["tags"] = tags
	return tip
}
