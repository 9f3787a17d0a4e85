package event

import (
	"fmt"
	"time"
)

// FormatDecoder is the port of one input format: one package per format (pipeline/format/...),
// registered in pipeline/format/all. The shared Decoder runs the checks every format needs first
// (size, UTF-8, and for JSON formats nesting depth and number range), then hands the value to the
// format chosen for the input topic, or in auto mode to the first whose Sniff claims it; after
// it, it bounds the carried context.
//
// Implementations are safe for concurrent use and keep no state between messages.
type FormatDecoder interface {
	// Name is the format's name: a value of THREATPIPE_PIPELINE_INPUT_FORMAT and the scored
	// event's input_format.
	Name() Format
	// JSON reports whether the format's messages are JSON documents, which get the nesting and
	// number checks before Decode; line formats (CEF, key=value) do not.
	JSON() bool
	// Sniff reports whether value is probably this format, looking at a few bytes or top-level
	// keys only: it runs for every message in auto mode, in registry order, and must never
	// claim another registered format's messages.
	Sniff(value []byte) bool
	// Decode turns value into an Input, with one Sighting per distinct address it names (at most
	// rec.MaxIndicators; more set Input.Partial) and the format's own severity and signature in
	// Input.Context. A returned error is a *DecodeError with its class.
	Decode(value []byte, rec Record) (*Input, error)
}

// Record is what is known about a message besides its value.
type Record struct {
	// Time is the Kafka timestamp, for a value that carries no time of its own.
	Time time.Time
	// ID gives a stable event id (topic/partition/offset) for a value that carries none; it is
	// called only when needed.
	ID func() string
	// MaxIndicators is the most distinct indicators one message may yield.
	MaxIndicators int
}

// MaxEventIDBytes is the longest event id an input may carry: a native event's is refused
// beyond it, the other formats' is replaced by the record's id.
const MaxEventIDBytes = 256

// EventID returns id, or the record's id when id is empty or longer than MaxEventIDBytes; the
// latter with a warning naming field, the message's key the id came from.
func (r Record) EventID(id, field string) (string, string) {
	switch {
	case id == "":
		return r.ID(), ""
	case len(id) > MaxEventIDBytes:
		fallback := r.ID()
		return fallback, fmt.Sprintf("%s is %d bytes (limit %d): replaced by %s", field, len(id), MaxEventIDBytes, fallback)
	}
	return id, ""
}
