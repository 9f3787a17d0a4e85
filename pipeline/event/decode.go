package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	fastjson "github.com/segmentio/encoding/json"
)

// ErrorClass names why a message could not be decoded. It is written to the dead-letter header
// x-threatpipe-error-class, so the values are part of the contract.
type ErrorClass string

// Decode error classes.
const (
	ClassTooLarge             ErrorClass = "too_large"
	ClassInvalidEncoding      ErrorClass = "invalid_encoding"
	ClassMalformedJSON        ErrorClass = "malformed_json"
	ClassUnknownFormat        ErrorClass = "unknown_format"
	ClassMissingField         ErrorClass = "missing_field"
	ClassInvalidField         ErrorClass = "invalid_field"
	ClassInvalidIndicator     ErrorClass = "invalid_indicator"
	ClassUnsupportedIndicator ErrorClass = "unsupported_indicator"
	ClassNoIndicator          ErrorClass = "no_indicator"
	// ClassTooDeep: the message nests deeper than Limits.MaxDepth.
	ClassTooDeep ErrorClass = "too_deep"
	// ClassNumberOutOfRange: the message holds a number beyond a 64-bit float.
	ClassNumberOutOfRange ErrorClass = "number_out_of_range"
	// ClassTooManyIndicators: an ECS event names more distinct indicators than
	// Limits.MaxIndicators; its first ones are scored all the same (Input.Partial).
	ClassTooManyIndicators ErrorClass = "too_many_indicators"
	// ClassInternal marks a bug of threatpipe's own, dead-lettered rather than lost.
	ClassInternal ErrorClass = "internal"
)

// ErrorClasses lists every class, in the order docs/events.md describes them.
var ErrorClasses = [...]ErrorClass{
	ClassTooLarge, ClassInvalidEncoding, ClassTooDeep, ClassNumberOutOfRange, ClassMalformedJSON,
	ClassUnknownFormat, ClassMissingField, ClassInvalidField, ClassInvalidIndicator,
	ClassUnsupportedIndicator, ClassNoIndicator, ClassTooManyIndicators, ClassInternal,
}

// DecodeError is returned for every message the decoder rejects.
type DecodeError struct {
	Class ErrorClass
	Msg   string
}

func (e *DecodeError) Error() string { return string(e.Class) + ": " + e.Msg }

func decodeErr(class ErrorClass, format string, args ...any) error {
	return &DecodeError{Class: class, Msg: fmt.Sprintf(format, args...)}
}

// ClassOf returns the class of a decode error, or "" if err is not one.
func ClassOf(err error) ErrorClass {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Class
	}
	return ""
}

// ECSIPFields are the ECS fields whose addresses become indicators, in the order they are read.
var ECSIPFields = [...]string{"source.ip", "destination.ip", "client.ip", "server.ip", "related.ip"}

// Decoder turns message values into Inputs. The zero value is not usable; use NewDecoder.
// A Decoder is safe for concurrent use.
//
// Native and ECS events are built in. Other formats are FormatDecoders (WithFormats): in auto
// mode a JSON object that is neither native nor ECS goes to the first JSON format whose Sniff
// claims it, and any other value to the first line format that does.
type Decoder struct {
	limits  Limits
	formats []FormatDecoder
	only    FormatDecoder // one format for every message; nil: auto
}

// AutoFormat selects the format of each message by sniffing it.
const AutoFormat Format = "auto"

// WithFormats returns a copy of d that also reads formats (in sniff order), and that reads only
// the one named only unless it is AutoFormat or empty. An unknown name is an error.
func (d *Decoder) WithFormats(only Format, formats ...FormatDecoder) (*Decoder, error) {
	c := *d
	c.formats = append(slices.Clip(c.formats), formats...)
	if only == "" || only == AutoFormat {
		return &c, nil
	}
	for _, f := range append([]FormatDecoder{nativeFormat{d}, ecsFormat{d}}, c.formats...) {
		if f.Name() == only {
			c.only = f
			return &c, nil
		}
	}
	return nil, fmt.Errorf("unknown input format %q", only)
}

// NewDecoder returns a decoder that rejects values over maxBytes and keeps at most maxIndicators
// distinct indicators per event, with the default nesting and context limits.
func NewDecoder(maxBytes, maxIndicators int) *Decoder {
	return NewLimitedDecoder(Limits{MaxBytes: maxBytes, MaxIndicators: maxIndicators})
}

// NewLimitedDecoder returns a decoder that applies l; zero MaxDepth and MaxContextBytes take
// their defaults.
func NewLimitedDecoder(l Limits) *Decoder {
	return &Decoder{limits: l.withDefaults()}
}

// Decode parses one message value. fallbackTime (the Kafka message timestamp) is used when the
// event carries no time of its own, and fallbackID when an ECS event carries no event.id.
// A returned error is always a *DecodeError.
func (d *Decoder) Decode(value []byte, fallbackTime time.Time, fallbackID string) (*Input, error) {
	return d.decode(value, fallbackTime, idSource{fixed: fallbackID, named: true})
}

// DecodeRecord is Decode for a Kafka record read at origin: an ECS event without event.id is
// named origin.ID(), built only when needed.
func (d *Decoder) DecodeRecord(value []byte, recordTime time.Time, origin Origin) (*Input, error) {
	return d.decode(value, recordTime, idSource{origin: origin})
}

// idSource names an event that carries no id of its own: fixed when named, else its origin. It
// is a value rather than a func so that the events that carry an id (most) cost no closure.
type idSource struct {
	origin Origin
	fixed  string
	named  bool
}

func (s idSource) id() string {
	if s.named {
		return s.fixed
	}
	return s.origin.ID()
}

// record is what the format decoders are told about a message besides its value.
func (d *Decoder) record(fallbackTime time.Time, ids idSource) Record {
	return Record{Time: fallbackTime, ID: ids.id, MaxIndicators: d.limits.MaxIndicators}
}

func (d *Decoder) decode(value []byte, fallbackTime time.Time, ids idSource) (*Input, error) {
	in, err := d.decodeAny(value, fallbackTime, ids)
	if err != nil {
		return nil, err
	}
	boundCarried(in, d.limits.MaxContextBytes)
	return in, nil
}

func (d *Decoder) decodeAny(value []byte, fallbackTime time.Time, ids idSource) (*Input, error) {
	if len(value) > d.limits.MaxBytes {
		return nil, decodeErr(ClassTooLarge, "message is %d bytes, the limit is %d", len(value), d.limits.MaxBytes)
	}
	if !utf8.Valid(value) {
		return nil, decodeErr(ClassInvalidEncoding, "message is not valid UTF-8")
	}
	if d.only != nil {
		return d.decodeAs(d.only, value, d.record(fallbackTime, ids))
	}
	if !isJSONObject(value) {
		for _, f := range d.formats {
			if !f.JSON() && f.Sniff(value) {
				return f.Decode(value, d.record(fallbackTime, ids))
			}
		}
	}
	// Before any parser: the fast one would skip a deep value it does not decode and carry it on.
	if err := checkStructure(value, d.limits.MaxDepth); err != nil {
		return nil, err
	}
	if nativeKeysOnly(value) {
		ni := new(nativeInput)
		if ni.top.parse(value) && ni.top.Indicator != nil {
			return d.decodeNative(ni, nil, fallbackTime)
		}
	}
	top, err := topLevel(value)
	if err != nil {
		return nil, err
	}
	if _, ok := top["indicator"]; ok {
		ni := &nativeInput{}
		var extra map[string]json.RawMessage
		ni.top, extra = nativeFromMap(top)
		return d.decodeNative(ni, extra, fallbackTime)
	}
	if hasECSAddressField(top) {
		return d.decodeECS(value, top, fallbackTime, ids.id)
	}
	// Before ECS by @timestamp alone: shippers add one to other formats' documents (Filebeat to
	// raw Suricata EVE, say), which would otherwise be ECS events naming no address.
	for _, f := range d.formats {
		if f.JSON() && f.Sniff(value) {
			return f.Decode(value, d.record(fallbackTime, ids))
		}
	}
	if isECS(top) {
		return d.decodeECS(value, top, fallbackTime, ids.id)
	}
	return nil, decodeErr(ClassUnknownFormat,
		"neither a native indicator event (no \"indicator\"), an ECS event (no source/destination/client/server/related IP field) nor any other input format threatpipe reads")
}

// decodeAs decodes value as format f, with the JSON checks when f reads JSON.
func (d *Decoder) decodeAs(f FormatDecoder, value []byte, rec Record) (*Input, error) {
	if f.JSON() {
		if err := checkStructure(value, d.limits.MaxDepth); err != nil {
			return nil, err
		}
	}
	return f.Decode(value, rec)
}

// topLevel parses a JSON object's top-level members.
func topLevel(value []byte) (map[string]json.RawMessage, error) {
	// Sized for a typical event: the fast decoder would otherwise allocate room for 64 keys.
	top := make(map[string]json.RawMessage, 8)
	if err := unmarshal(value, &top); err != nil {
		return nil, decodeErr(ClassMalformedJSON, "%s", jsonErrMsg(err))
	}
	if top == nil {
		return nil, decodeErr(ClassMalformedJSON, "message is JSON null, not an object")
	}
	return top, nil
}

// isJSONObject reports whether value starts, after white space, with '{'.
func isJSONObject(value []byte) bool {
	for _, c := range value {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c == '{'
	}
	return false
}

// nativeFormat and ecsFormat are the built-in formats behind the FormatDecoder port, for a
// topic configured with one of them.
type nativeFormat struct{ d *Decoder }
type ecsFormat struct{ d *Decoder }

var (
	_ FormatDecoder = nativeFormat{}
	_ FormatDecoder = ecsFormat{}
)

func (nativeFormat) Name() Format { return FormatNative }
func (nativeFormat) JSON() bool   { return true }
func (nativeFormat) Sniff(value []byte) bool {
	if nativeKeysOnly(value) {
		var doc nativeTop
		if doc.parse(value) {
			return doc.Indicator != nil
		}
	}
	top, err := topLevel(value)
	_, ok := top["indicator"]
	return err == nil && ok
}
func (f nativeFormat) Decode(value []byte, rec Record) (*Input, error) {
	ni := new(nativeInput)
	var extra map[string]json.RawMessage
	if !ni.top.parse(value) {
		top, err := topLevel(value)
		if err != nil {
			return nil, err
		}
		ni.top, extra = nativeFromMap(top)
	}
	if ni.top.Indicator == nil {
		return nil, decodeErr(ClassMissingField, "indicator: missing (the input topic is configured for native events)")
	}
	return f.d.decodeNative(ni, extra, rec.Time)
}

func (ecsFormat) Name() Format { return FormatECS }
func (ecsFormat) JSON() bool   { return true }
func (ecsFormat) Sniff(value []byte) bool {
	top, err := topLevel(value)
	return err == nil && isECS(top)
}
func (f ecsFormat) Decode(value []byte, rec Record) (*Input, error) {
	top, err := topLevel(value)
	if err != nil {
		return nil, err
	}
	return f.d.decodeECS(value, top, rec.Time, rec.ID)
}

func jsonErrMsg(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("message is a JSON %s, not an object", te.Value)
	}
	return err.Error()
}

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
	if len(in.EventID) > 256 {
		return nil, decodeErr(ClassInvalidField, "event_id is %d bytes, the limit is 256", len(in.EventID))
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
	if err := unmarshal(top.Indicator, indicator); err != nil {
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
	return s, unmarshal(raw, &s) == nil
}

func isECS(top map[string]json.RawMessage) bool {
	if _, ok := top["@timestamp"]; ok {
		return true
	}
	return hasECSAddressField(top)
}

// hasECSAddressField reports whether top has one of the ECS address fields, nested or dotted.
func hasECSAddressField(top map[string]json.RawMessage) bool {
	for _, f := range ECSIPFields {
		obj, _, _ := strings.Cut(f, ".")
		if raw, ok := top[obj]; ok && len(raw) > 0 && raw[0] == '{' {
			return true
		}
		if _, ok := top[f]; ok {
			return true
		}
	}
	return false
}

// ecsDoc holds the few ECS fields the decoder reads; everything else stays in the raw document.
type ecsDoc struct {
	Timestamp string `json:"@timestamp"`
	Event     struct {
		ID      string `json:"id"`
		Dataset string `json:"dataset"`
		Created string `json:"created"`
	} `json:"event"`
	Observer struct {
		Name     string `json:"name"`
		Hostname string `json:"hostname"`
	} `json:"observer"`
	Agent struct {
		Name string `json:"name"`
	} `json:"agent"`
	Host struct {
		Name string `json:"name"`
	} `json:"host"`
}

func (d *Decoder) decodeECS(value []byte, top map[string]json.RawMessage, fallbackTime time.Time, fallbackIDFunc func() string) (*Input, error) {
	in := &Input{Format: FormatECS, Context: value}
	// The few metadata objects are decoded from the top-level map, not by parsing the whole
	// document a second time. A mistyped one (event.id as a number, say) is skipped, not fatal:
	// the IPs are what matter, and everything else is carried in Context.
	doc := new(ecsDoc)
	for _, m := range [...]struct {
		key string
		dst any
	}{{"@timestamp", &doc.Timestamp}, {"event", &doc.Event}, {"observer", &doc.Observer}, {"agent", &doc.Agent}, {"host", &doc.Host}} {
		if raw, ok := top[m.key]; ok {
			_ = unmarshal(raw, m.dst)
		}
	}

	// Producers that flatten ECS write dotted keys ({"event.id": …}); read those where the
	// nested form is absent.
	dotted := func(nested, key string) string {
		raw, ok := top[key]
		if nested != "" || !ok {
			return nested
		}
		s, _ := rawString(raw)
		return s
	}
	in.EventID = strings.TrimSpace(dotted(doc.Event.ID, "event.id"))
	var fallbackID string
	if in.EventID == "" || len(in.EventID) > 256 {
		fallbackID = fallbackIDFunc()
	}
	switch {
	case in.EventID == "":
		in.EventID = fallbackID
	case len(in.EventID) > 256:
		in.Warnings = append(in.Warnings, fmt.Sprintf("event.id is %d bytes (limit 256): replaced by %s", len(in.EventID), fallbackID))
		in.EventID = fallbackID
	}
	in.Source = firstNonEmpty(dotted(doc.Observer.Name, "observer.name"), dotted(doc.Observer.Hostname, "observer.hostname"),
		dotted(doc.Agent.Name, "agent.name"), dotted(doc.Host.Name, "host.name"), dotted(doc.Event.Dataset, "event.dataset"), "ecs")
	in.ObservedAt = fallbackTime.UTC()
	for _, ts := range []string{doc.Timestamp, dotted(doc.Event.Created, "event.created")} {
		if ts == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			in.ObservedAt = t
			break
		}
		in.Warnings = append(in.Warnings, fmt.Sprintf("timestamp %q is not RFC 3339", truncate(ts, 64)))
	}

	seen := NewSightings(d.limits.MaxIndicators)
	var values []string
	obj := new(ecsIPObject)
	for _, field := range ECSIPFields {
		values = ecsValues(values[:0], obj, top, field)
		for _, raw := range values {
			seen.Add(field, raw)
		}
	}
	if err := seen.Finish(in, "source.ip, destination.ip, client.ip, server.ip or related.ip"); err != nil {
		return nil, err
	}
	return in, nil
}

// ecsValues returns the strings in an ECS IP field, nested ({"source":{"ip":…}}) or dotted
// ({"source.ip":…}); each may hold a string or an array of strings. Values of other types are
// returned as their JSON text so that they are reported, not ignored.
func ecsValues(out []string, scratch *ecsIPObject, top map[string]json.RawMessage, field string) []string {
	obj, key, _ := strings.Cut(field, ".")
	if raw, ok := top[obj]; ok && len(raw) > 0 && raw[0] == '{' {
		out = appendIPValues(out, ecsMember(scratch, raw, key))
	}
	return appendIPValues(out, top[field])
}

// ecsIPObject is an ECS object ("source", "destination", ...) as far as its "ip" is concerned.
type ecsIPObject struct {
	IP json.RawMessage `json:"ip"`
}

// ecsMember returns the member key of the JSON object raw (nil if absent). The ECS objects
// read are keyed "ip", which a struct (o, reused) reads without a map of the object's members.
func ecsMember(o *ecsIPObject, raw json.RawMessage, key string) json.RawMessage {
	if key == "ip" {
		*o = ecsIPObject{}
		rest, err := fastjson.Parse(raw, o, fastjson.DontCopyRawMessage|fastjson.DontMatchCaseInsensitiveStructFields)
		if err == nil && len(bytes.TrimSpace(rest)) == 0 {
			return o.IP
		}
	}
	m := make(map[string]json.RawMessage, 4)
	if unmarshal(raw, &m) != nil {
		return nil
	}
	return m[key]
}

func appendIPValues(out []string, raw json.RawMessage) []string {
	if len(raw) == 0 || string(raw) == "null" {
		return out
	}
	if s, ok := rawString(raw); ok {
		return append(out, s)
	}
	var list []json.RawMessage
	if unmarshal(raw, &list) == nil {
		for _, item := range list {
			if string(item) == "null" {
				continue
			}
			if v, ok := rawString(item); ok {
				out = append(out, v)
			} else {
				out = append(out, string(item))
			}
		}
		return out
	}
	return append(out, string(raw))
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func limit(list []string, n int) []string {
	if len(list) <= n {
		return list
	}
	return append(list[:n:n], fmt.Sprintf("and %d more", len(list)-n))
}

// unmarshal decodes with segmentio/encoding (several times faster than encoding/json on this
// hot path) and falls back to encoding/json when that fails: bad input is rare, and the standard
// library's error messages and its keep-going handling of mistyped fields are the contract.
// Decoded strings and raw values point into data instead of copying it: the message value lives
// as long as the event it becomes.
func unmarshal(data []byte, v any) error {
	rest, err := fastjson.Parse(data, v, fastjson.DontCopyRawMessage|fastjson.DontCopyString|fastjson.DontCopyNumber)
	if err != nil || len(bytes.TrimSpace(rest)) != 0 {
		return json.Unmarshal(data, v)
	}
	return nil
}
