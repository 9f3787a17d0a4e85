package pipeline

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Dead-letter headers. Their names and meaning are part of the contract in docs/events.md.
const (
	HeaderErrorClass        = "x-threatpipe-error-class"
	HeaderErrorMessage      = "x-threatpipe-error-message"
	HeaderOriginalTopic     = "x-threatpipe-original-topic"
	HeaderOriginalPartition = "x-threatpipe-original-partition"
	HeaderOriginalOffset    = "x-threatpipe-original-offset"
	HeaderOriginalTimestamp = "x-threatpipe-original-timestamp"
	HeaderFailedAt          = "x-threatpipe-failed-at"
	HeaderSchemaVersion     = "x-threatpipe-schema-version"
	HeaderTruncated         = "x-threatpipe-truncated"
)

// maxErrorMessage bounds the error header; decode errors quote input, which may be huge.
const maxErrorMessage = 1024

// deadLetter wraps an input message for the DLQ topic: see DeadLetter.
func (h *EnrichHandler) deadLetter(msg kafka.Message, err error) kafka.Message {
	text := err.Error()
	var de *event.DecodeError
	if errors.As(err, &de) {
		text = de.Msg
	}
	return DeadLetter(msg, h.opts.DLQTopic, string(event.ClassOf(err)), text, h.now())
}

// DeadLetter wraps a message for a dead-letter topic: original key, value and headers unchanged,
// plus headers naming the error class, the reason and where the message came from.
func DeadLetter(msg kafka.Message, topic, class, text string, now time.Time) kafka.Message {
	if len(text) > maxErrorMessage {
		// Cut on a rune boundary: a header is text that consumers will decode.
		text = strings.ToValidUTF8(text[:maxErrorMessage], "")
	}
	headers := make([]kafka.Header, 0, len(msg.Headers)+8)
	headers = append(headers, msg.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderErrorClass, Value: []byte(class)},
		kafka.Header{Key: HeaderErrorMessage, Value: []byte(text)},
		kafka.Header{Key: HeaderOriginalTopic, Value: []byte(msg.Topic)},
		kafka.Header{Key: HeaderOriginalPartition, Value: []byte(strconv.Itoa(msg.Partition))},
		kafka.Header{Key: HeaderOriginalOffset, Value: []byte(strconv.FormatInt(msg.Offset, 10))},
		kafka.Header{Key: HeaderOriginalTimestamp, Value: []byte(msg.Time.UTC().Format(time.RFC3339Nano))},
		kafka.Header{Key: HeaderFailedAt, Value: []byte(now.UTC().Format(time.RFC3339Nano))},
		kafka.Header{Key: HeaderSchemaVersion, Value: []byte(event.SchemaVersion)},
	)
	return kafka.Message{Topic: topic, Key: msg.Key, Value: msg.Value, Headers: headers}
}

// scoredMessage encodes a scored event keyed by its indicator, so that one indicator always
// lands on one output partition. An event that would outgrow the input limit loses its carried
// context (noted in warnings) rather than fail at the broker.
//
// It encodes into a pooled scratch buffer and gives the message an exact-size copy, with the
// key in the same allocation: the writer holds the message's bytes for as long as it takes,
// so only the scratch buffer, whose use ends here, is reused.
func (h *EnrichHandler) scoredMessage(ev *event.Scored) kafka.Message {
	scratch := h.scratch.Get().(*[]byte)
	buf := ev.Append((*scratch)[:0], h.detail)
	if len(buf) > h.opts.MaxEventBytes && ev.DropCarried("the scored event exceeded the size limit") {
		buf = ev.Append(buf[:0], h.detail)
	}
	key := ev.Indicator.Value
	out := make([]byte, len(buf)+len(key))
	n := copy(out, buf)
	copy(out[n:], key)
	if cap(buf) <= maxScratchBytes {
		*scratch = buf
		h.scratch.Put(scratch)
	}
	// The value's capacity ends where the key begins: an append to one never writes the other.
	return kafka.Message{Topic: h.opts.OutputTopic, Key: out[n:], Value: out[:n:n]}
}

// maxScratchBytes bounds the encoding buffers kept between events: a rare huge event's buffer
// is left to the collector rather than held by the pool.
const maxScratchBytes = 64 << 10

// newScratch starts an encoding buffer with room for a typical scored event (0.6-1.3 KB with
// one provider's answer) and what it carries.
func newScratch() any {
	b := make([]byte, 0, 4<<10)
	return &b
}

// truncatedDeadLetterBytes is what is kept of a dead letter the broker refuses as too large.
const truncatedDeadLetterBytes = 64 << 10

// shrinkIfTooLarge makes messages the broker refused for size acceptable: a dead letter keeps
// its first 64 KiB with a header saying so; a scored event loses its carried context. Other
// errors return msgs unchanged.
func shrinkIfTooLarge(msgs []kafka.Message, err error) []kafka.Message {
	var tooLarge kafka.MessageTooLargeError
	if !errors.Is(err, kafka.MessageSizeTooLarge) && !errors.As(err, &tooLarge) {
		return msgs
	}
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		out[i] = m
		switch {
		case hasHeader(m, HeaderErrorClass):
			if len(m.Value) > truncatedDeadLetterBytes {
				out[i].Value = m.Value[:truncatedDeadLetterBytes]
				out[i].Headers = append(append([]kafka.Header(nil), m.Headers...),
					kafka.Header{Key: HeaderTruncated, Value: []byte(strconv.Itoa(len(m.Value)))})
			}
		default:
			var ev event.Scored
			if json.Unmarshal(m.Value, &ev) == nil && ev.DropCarried("the broker refused the scored event as too large") {
				out[i].Value = ev.AppendJSON(nil)
			}
		}
	}
	return out
}

func hasHeader(m kafka.Message, key string) bool {
	for _, h := range m.Headers {
		if h.Key == key {
			return true
		}
	}
	return false
}
