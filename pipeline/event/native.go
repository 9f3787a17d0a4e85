package event

import (
	fastjson "github.com/segmentio/encoding/json"

	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unsafe"
)

type nativeIndicator struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// nativeTop holds a native event's known top-level members as they arrived; decodeNative reads
// them. Unknown members are kept apart, as Input.Extra.
type nativeTop struct {
	SchemaVersion json.RawMessage `json:"schema_version"`
	EventID       json.RawMessage `json:"event_id"`
	ObservedAt    json.RawMessage `json:"observed_at"`
	Source        json.RawMessage `json:"source"`
	Indicator     json.RawMessage `json:"indicator"`
	Context       json.RawMessage `json:"context"`
}

// nativeParseFlags decode the known members only, pointing into the message: a member of
// another name, or of another case, fails the parse, so that whatever is not the plain native
// shape takes the general path (topLevel), which keeps unknown members.
const nativeParseFlags = fastjson.DontCopyRawMessage | fastjson.DontMatchCaseInsensitiveStructFields | fastjson.DisallowUnknownFields

// parse reads value into t without a map of its members, when value is a JSON object (or null)
// with no members but the known ones; otherwise it reports false and t is to be ignored.
// This is the native event's common shape and the hot path: decoding every message into a map
// of raw values was the largest cost of decoding.
func (t *nativeTop) parse(value []byte) bool {
	if !nativeKeysOnly(value) {
		return false
	}
	rest, err := fastjson.Parse(value, t, nativeParseFlags)
	return err == nil && len(bytes.TrimSpace(rest)) == 0
}

// nativeKeysOnly reports whether value is a JSON object whose top-level keys are all native
// ones, looking at the keys only (values are skipped, not checked). It may be wrong about
// malformed JSON, which the parser then refuses. It exists so that other shapes (ECS, other
// formats, native events with extra members) cost a glance instead of a failed parse.
func nativeKeysOnly(value []byte) bool {
	i := skipBlank(value, 0)
	if i >= len(value) || value[i] != '{' {
		return false
	}
	for i++; ; {
		i = skipBlank(value, i)
		if i >= len(value) {
			return false
		}
		switch value[i] {
		case '}':
			return true
		case ',':
			i++
			continue
		case '"':
		default:
			return false
		}
		end := scanString(value, i)
		if end < 0 || !isNativeKey(value[i+1:end-1]) {
			return false
		}
		if i = skipBlank(value, end); i >= len(value) || value[i] != ':' {
			return false
		}
		if i = skipValue(value, i+1); i < 0 {
			return false
		}
	}
}

func isNativeKey(k []byte) bool {
	switch string(k) {
	case "schema_version", "event_id", "observed_at", "source", "indicator", "context":
		return true
	}
	return false
}

// skipBlank and scanString are skipSpace and stringEnd for the few short tokens of a
// glance: a loop here costs less than a call per byte or per token.
func skipBlank(data []byte, i int) int {
	for ; i < len(data); i++ {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
		default:
			return i
		}
	}
	return i
}

// scanString returns the index just past the string that opens at data[i], or -1.
func scanString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index just past the value that starts at or after data[i], or -1 if it
// does not end. A scalar ends at the ',' or '}' that follows it.
func skipValue(data []byte, i int) int {
	depth := 0
	for i < len(data) {
		switch data[i] {
		case '"':
			if i = scanString(data, i); i < 0 || depth == 0 {
				return i
			}
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i
			}
			if depth--; depth == 0 {
				return i + 1
			}
			i++
		case ',':
			if depth == 0 {
				return i
			}
			i++
		default:
			i++
		}
	}
	return -1
}

// nativeFromMap splits a parsed top level into the known members and the others.
func nativeFromMap(top map[string]json.RawMessage) (nativeTop, map[string]json.RawMessage) {
	t := nativeTop{SchemaVersion: top["schema_version"], EventID: top["event_id"], ObservedAt: top["observed_at"],
		Source: top["source"], Indicator: top["indicator"], Context: top["context"]}
	var extra map[string]json.RawMessage
	for k, v := range top {
		switch k {
		case "schema_version", "event_id", "observed_at", "source", "indicator", "context":
			continue
		}
		if extra == nil {
			extra = make(map[string]json.RawMessage)
		}
		extra[k] = v
	}
	return t, extra
}

// nativeInput is a native event's Input allocated together with its parsed top level and
// indicator (which the parser must be handed by pointer) and its one sighting: a native event costs one
// allocation. The Input's address keeps the rest alive, for as long as the Input lives.
type nativeInput struct {
	in        Input
	top       nativeTop
	indicator nativeIndicator
	one       [1]Sighting
}

// decodeNative builds the Input of a native event from its known top-level members (ni.top) and
// its unknown ones (extra, nil when there are none).
func (d *Decoder) decodeNative(ni *nativeInput, extra map[string]json.RawMessage, fallbackTime time.Time) (*Input, error) {
	in, top := &ni.in, &ni.top
	in.Format = FormatNative

	var err error
	if in.EventID, err = stringField(top.EventID, "event_id"); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.EventID) == "" {
		return nil, decodeErr(ClassMissingField, "event_id is missing or empty")
	}
	if len(in.EventID) > MaxEventIDBytes {
		return nil, decodeErr(ClassInvalidField, "event_id is %d bytes, the limit is %d", len(in.EventID), MaxEventIDBytes)
	}
	if in.Source, err = stringField(top.Source, "source"); err != nil {
		return nil, err
	}
	observed, err := stringField(top.ObservedAt, "observed_at")
	if err != nil {
		return nil, err
	}
	if observed == "" {
		in.ObservedAt = fallbackTime.UTC()
		in.Warnings = append(in.Warnings, "observed_at missing: used the Kafka message time")
	} else {
		t, err := time.Parse(time.RFC3339Nano, observed)
		if err != nil {
			return nil, decodeErr(ClassInvalidField, "observed_at %q is not RFC 3339", truncate(observed, 64))
		}
		in.ObservedAt = t
	}

	indicator := &ni.indicator
	if err := Unmarshal(top.Indicator, indicator); err != nil {
		return nil, decodeErr(ClassInvalidField, "indicator must be an object with string type and value")
	}
	typ := IndicatorType(strings.ToLower(strings.TrimSpace(indicator.Type)))
	switch typ {
	case IPv4, IPv6:
	case "":
		return nil, decodeErr(ClassMissingField, "indicator.type is missing")
	default:
		return nil, decodeErr(ClassUnsupportedIndicator, "indicator.type %q is not supported (want ipv4-addr or ipv6-addr)", truncate(indicator.Type, 64))
	}
	ind, err := ParseIP(indicator.Value)
	if err != nil {
		return nil, decodeErr(ClassInvalidIndicator, "indicator.value: %v", err)
	}
	if ind.Type != typ {
		in.Warnings = append(in.Warnings, fmt.Sprintf("indicator.type %s corrected to %s", typ, ind.Type))
	}
	ni.one[0] = Sighting{Indicator: ind}
	in.Sightings = ni.one[:]

	if ctx := top.Context; ctx != nil && string(ctx) != "null" {
		if len(ctx) == 0 || ctx[0] != '{' {
			return nil, decodeErr(ClassInvalidField, "context must be a JSON object")
		}
		in.Context = ctx
	}
	in.Extra = extra
	if in.Source == "" {
		in.Source = "unknown"
	}
	return in, nil
}

// stringField reads an optional string member (nil: absent); a present non-string value is an
// error.
func stringField(raw json.RawMessage, name string) (string, error) {
	if raw == nil || string(raw) == "null" {
		return "", nil
	}
	s, ok := rawString(raw)
	if !ok {
		return "", decodeErr(ClassInvalidField, "%s must be a string", name)
	}
	return s, nil
}

// rawString decodes a parsed JSON value as a string; ok is false when it is not one.
func rawString(raw json.RawMessage) (string, bool) {
	if n := len(raw); n >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		// Already checked by the parser that delimited it, and valid UTF-8 as the whole message
		// is: without escapes the string is its bytes, which it points into (see unmarshal).
		return unsafe.String(&raw[1], n-2), true
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	return s, Unmarshal(raw, &s) == nil
}
