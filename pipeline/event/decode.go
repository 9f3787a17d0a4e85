package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

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
	if !IsJSONObject(value) {
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
	// A message that cannot be native or ECS (neither key appears anywhere in it) goes straight
	// to the other JSON formats: the map of its members would be parsed only to say no.
	if !mayBeNativeOrECS(value) {
		for _, f := range d.formats {
			if f.JSON() && f.Sniff(value) {
				return f.Decode(value, d.record(fallbackTime, ids))
			}
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

// nativeOrECSKeys are the top-level keys that make a message native or ECS by address; a message
// holding none of them anywhere cannot be either (a key spelled with escapes is the exception,
// and is still read by whichever format claims it).
var nativeOrECSKeys = [][]byte{[]byte(`"indicator"`), []byte(`"source`), []byte(`"destination`),
	[]byte(`"client`), []byte(`"server`), []byte(`"related`)}

func mayBeNativeOrECS(value []byte) bool {
	for _, k := range nativeOrECSKeys {
		if bytes.Contains(value, k) {
			return true
		}
	}
	return false
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
	if err := Unmarshal(value, &top); err != nil {
		return nil, decodeErr(ClassMalformedJSON, "%s", jsonErrMsg(err))
	}
	if top == nil {
		return nil, decodeErr(ClassMalformedJSON, "message is JSON null, not an object")
	}
	return top, nil
}

// DecodeObject parses value, which must be one JSON object, into v as the built-in formats are
// parsed: strings and raw values in v point into value instead of copying it (the value lives
// as long as the event it becomes). Anything else is a malformed_json *DecodeError. It is for
// the formats behind the FormatDecoder port (pipeline/format).
func DecodeObject(value []byte, v any) error {
	if !IsJSONObject(value) {
		return decodeErr(ClassMalformedJSON, "message is not a JSON object")
	}
	if err := Unmarshal(value, v); err != nil {
		return decodeErr(ClassMalformedJSON, "%s", jsonErrMsg(err))
	}
	return nil
}

// IsJSONObject reports whether value starts, after white space, with '{'.
func IsJSONObject(value []byte) bool {
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

// Unmarshal decodes with segmentio/encoding (several times faster than encoding/json on this
// hot path; the formats of pipeline/format use it too) and falls back to encoding/json when that
// fails: bad input is rare, and the standard library's error messages and its keep-going
// handling of mistyped fields are the contract.
// Decoded strings and raw values point into data instead of copying it: the message value lives
// as long as the event it becomes.
func Unmarshal(data []byte, v any) error {
	rest, err := fastjson.Parse(data, v, fastjson.DontCopyRawMessage|fastjson.DontCopyString|fastjson.DontCopyNumber)
	if err != nil || len(bytes.TrimSpace(rest)) != 0 {
		return json.Unmarshal(data, v)
	}
	return nil
}
