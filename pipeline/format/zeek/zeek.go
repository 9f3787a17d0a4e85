// Package zeek reads Zeek's JSON logs (LogAscii::use_json=T, or a Kafka writer plugin): one log
// record per message, from conn.log, notice.log and every other log that names a connection
// (`id.orig_h`, `id.resp_h`: http, dns, ssl, ssh, weird, ...) or, for files.log, the hosts a
// file went between (`tx_hosts`, `rx_hosts`).
//
// Zeek writes the connection's addresses as flat dotted keys ({"id.orig_h": …}); some shippers
// and converters nest them ({"id": {"orig_h": …}}), and both are read. The whole record is the
// scored events' context, as for ECS events, so that a notice's own signature (`note`, `msg`,
// `sub`) reaches the SOC unchanged.
package zeek

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/internal/jsondoc"
)

// Name is the format's name: a value of THREATPIPE_KAFKA_INPUT_FORMAT and the scored events'
// input_format.
const Name event.Format = "zeek"

// AddressFields are the fields whose addresses become indicators, in reading order; the nested
// form of id.orig_h and id.resp_h is reported under the same names.
var AddressFields = [...]string{"id.orig_h", "id.resp_h", "src", "dst", "tx_hosts", "rx_hosts"}

// Decoder reads Zeek JSON log records. It keeps no state: one value serves every message.
type Decoder struct{}

var _ event.FormatDecoder = (*Decoder)(nil)

// New returns a Zeek decoder.
func New() *Decoder { return &Decoder{} }

// Name implements event.FormatDecoder.
func (*Decoder) Name() event.Format { return Name }

// JSON implements event.FormatDecoder: Zeek JSON log records are JSON objects.
func (*Decoder) JSON() bool { return true }

// doc holds the fields the decoder reads; everything else stays in the raw document, which is
// the context. They are kept raw so that a mistyped one is a warning, not a lost event.
type doc struct {
	TS         json.RawMessage `json:"ts"`
	UID        json.RawMessage `json:"uid"`
	FUID       json.RawMessage `json:"fuid"`
	Path       json.RawMessage `json:"_path"`
	SystemName json.RawMessage `json:"_system_name"`
	OrigH      json.RawMessage `json:"id.orig_h"`
	RespH      json.RawMessage `json:"id.resp_h"`
	ID         json.RawMessage `json:"id"`
	Src        json.RawMessage `json:"src"`
	Dst        json.RawMessage `json:"dst"`
	TxHosts    json.RawMessage `json:"tx_hosts"`
	RxHosts    json.RawMessage `json:"rx_hosts"`
}

// connID is the nested form of Zeek's conn_id record.
type connID struct {
	OrigH json.RawMessage `json:"orig_h"`
	RespH json.RawMessage `json:"resp_h"`
}

// sniffKeys are the top-level keys Sniff looks at.
type sniffKeys struct {
	TS        json.RawMessage `json:"ts"`
	UID       json.RawMessage `json:"uid"`
	FUID      json.RawMessage `json:"fuid"`
	Note      json.RawMessage `json:"note"`
	OrigH     json.RawMessage `json:"id.orig_h"`
	RespH     json.RawMessage `json:"id.resp_h"`
	ID        json.RawMessage `json:"id"`
	Indicator json.RawMessage `json:"indicator"`
}

// sniffHints are byte strings one of which every Zeek record this package claims contains.
var sniffHints = [...][]byte{[]byte(`"id.orig_h"`), []byte(`"id.resp_h"`), []byte(`"uid"`), []byte(`"fuid"`), []byte(`"note"`), []byte(`"orig_h"`)}

// Sniff implements event.FormatDecoder: a JSON object with a top-level `id.orig_h` or
// `id.resp_h`, a nested `id` object with `orig_h` or `resp_h`, or `ts` with `uid` (any
// connection log), `fuid` (files.log) or `note` (notice.log), and no `indicator` (a native
// event keeps unknown top-level keys). Messages without one of the key names in their bytes
// cost a few bytes.Contains each.
func (*Decoder) Sniff(value []byte) bool {
	hinted := false
	for _, h := range sniffHints {
		if bytes.Contains(value, h) {
			hinted = true
			break
		}
	}
	var k sniffKeys
	if !hinted || !jsondoc.Sniff(value, &k) || k.Indicator != nil {
		return false
	}
	if k.OrigH != nil || k.RespH != nil {
		return true
	}
	if k.TS != nil && (k.UID != nil || k.FUID != nil || k.Note != nil) {
		return true
	}
	var id connID
	return len(k.ID) > 0 && k.ID[0] == '{' && jsondoc.Decode(k.ID, &id) == nil && (id.OrigH != nil || id.RespH != nil)
}

// Decode implements event.FormatDecoder.
func (*Decoder) Decode(value []byte, rec event.Record) (*event.Input, error) {
	var d doc
	if err := jsondoc.Decode(value, &d); err != nil {
		return nil, err
	}
	in := &event.Input{Format: Name, Context: value}
	seen := event.NewSightings(rec.MaxIndicators)
	jsondoc.AddAddresses(seen, "id.orig_h", d.OrigH)
	jsondoc.AddAddresses(seen, "id.resp_h", d.RespH)
	if len(d.ID) > 0 && d.ID[0] == '{' {
		var id connID
		if jsondoc.Decode(d.ID, &id) == nil {
			jsondoc.AddAddresses(seen, "id.orig_h", id.OrigH)
			jsondoc.AddAddresses(seen, "id.resp_h", id.RespH)
		}
	}
	jsondoc.AddAddresses(seen, "src", d.Src)
	jsondoc.AddAddresses(seen, "dst", d.Dst)
	jsondoc.AddAddresses(seen, "tx_hosts", d.TxHosts)
	jsondoc.AddAddresses(seen, "rx_hosts", d.RxHosts)
	if err := seen.Finish(in, "id.orig_h, id.resp_h, src, dst, tx_hosts or rx_hosts"); err != nil {
		return nil, err
	}

	ts, tsIsString := jsondoc.Text(d.TS)
	path := jsondoc.String(d.Path)
	var warn string
	in.EventID, warn = rec.EventID(eventID(path, jsondoc.String(d.UID), jsondoc.String(d.FUID), ts), "event id")
	in.Warnings = appendNonEmpty(in.Warnings, warn)
	in.ObservedAt, warn = observedAt(ts, tsIsString, rec)
	in.Warnings = appendNonEmpty(in.Warnings, warn)
	in.Source = firstNonBlank(jsondoc.String(d.SystemName), path, "zeek")
	return in, nil
}

// eventID names the record after its connection (uid) or file (fuid). A uid is shared by every
// log of one connection (conn, http, dns, notice, ...) and by the several records of one log
// (two dns queries), so the log's path, when the record carries one, and its time are added:
// "[<_path>:]<uid>[:<fuid>]:<ts>". A record with neither gets "" (the record's id).
func eventID(path, uid, fuid, ts string) string {
	var parts []string
	for _, p := range []string{path, uid, fuid} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if uid == "" && fuid == "" {
		return ""
	}
	if ts != "" {
		parts = append(parts, ts)
	}
	return strings.Join(parts, ":")
}

// observedAt reads ts: epoch seconds as a number (Zeek's default JSON::TS_EPOCH) or whole
// milliseconds (JSON::TS_MILLIS), an ISO 8601 string (JSON::TS_ISO8601), or epoch seconds as a
// string (some shippers); else the record's time, with a warning when ts was there.
func observedAt(ts string, isString bool, rec event.Record) (t time.Time, warning string) {
	if ts == "" {
		return rec.Time.UTC(), ""
	}
	if t, ok := jsondoc.ParseEpoch(ts); ok {
		return t, ""
	}
	if isString {
		if t, warn, ok := jsondoc.ParseISO(ts); ok {
			return t, warn
		}
	}
	return rec.Time.UTC(), fmt.Sprintf("ts %q is neither epoch seconds nor an ISO 8601 time: used the Kafka message time", jsondoc.Truncate(ts, 64))
}

func firstNonBlank(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

func appendNonEmpty(list []string, s string) []string {
	if s == "" {
		return list
	}
	return append(list, s)
}
