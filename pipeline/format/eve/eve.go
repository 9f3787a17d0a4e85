// Package eve reads Suricata's EVE JSON output: one JSON object per message, as Suricata's
// eve-log writes it (file, syslog, Redis or a Kafka shipper), for every event type that names
// the flow's addresses (alert, flow, dns, http, tls, ssh, fileinfo, anomaly, drop, ...).
//
// The addresses are `src_ip` and `dest_ip`. The whole document is the scored events' context,
// as for ECS events, so that the alert's own signature and severity (`alert.signature`,
// `alert.signature_id`, `alert.category`, `alert.severity`) reach the SOC unchanged.
package eve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/internal/jsondoc"
)

// Name is the format's name: a value of THREATPIPE_KAFKA_INPUT_FORMAT and the scored events'
// input_format.
const Name event.Format = "eve"

// AddressFields are the fields whose addresses become indicators, in reading order.
var AddressFields = [...]string{"src_ip", "dest_ip"}

// Decoder reads EVE JSON events. It keeps no state: one value serves every message.
type Decoder struct{}

var _ event.FormatDecoder = (*Decoder)(nil)

// New returns an EVE decoder.
func New() *Decoder { return &Decoder{} }

// Name implements event.FormatDecoder.
func (*Decoder) Name() event.Format { return Name }

// JSON implements event.FormatDecoder: EVE events are JSON objects.
func (*Decoder) JSON() bool { return true }

// doc holds the fields the decoder reads; everything else stays in the raw document, which is
// the context. They are kept raw so that a mistyped one is a warning, not a lost event.
type doc struct {
	Timestamp json.RawMessage `json:"timestamp"`
	FlowID    json.RawMessage `json:"flow_id"`
	EventType json.RawMessage `json:"event_type"`
	TxID      json.RawMessage `json:"tx_id"`
	SrcIP     json.RawMessage `json:"src_ip"`
	DestIP    json.RawMessage `json:"dest_ip"`
	Host      json.RawMessage `json:"host"`
	Alert     json.RawMessage `json:"alert"`
}

// alert is the part of an alert event's `alert` object that tells two alerts on one packet
// apart.
type alert struct {
	GID         json.RawMessage `json:"gid"`
	SignatureID json.RawMessage `json:"signature_id"`
}

// sniffKeys are the top-level keys Sniff looks at.
type sniffKeys struct {
	EventType json.RawMessage `json:"event_type"`
	SrcIP     json.RawMessage `json:"src_ip"`
	DestIP    json.RawMessage `json:"dest_ip"`
	Indicator json.RawMessage `json:"indicator"`
}

// Sniff implements event.FormatDecoder: a JSON object with a top-level `event_type` and a
// top-level `src_ip` or `dest_ip`, and no `indicator` (a native event keeps unknown top-level
// keys). Messages without the key names in their bytes cost one bytes.Contains each.
func (*Decoder) Sniff(value []byte) bool {
	if !bytes.Contains(value, []byte(`"event_type"`)) ||
		!bytes.Contains(value, []byte(`"src_ip"`)) && !bytes.Contains(value, []byte(`"dest_ip"`)) {
		return false
	}
	var k sniffKeys
	return jsondoc.Sniff(value, &k) && k.EventType != nil && (k.SrcIP != nil || k.DestIP != nil) && k.Indicator == nil
}

// Decode implements event.FormatDecoder.
func (*Decoder) Decode(value []byte, rec event.Record) (*event.Input, error) {
	var d doc
	if err := jsondoc.Decode(value, &d); err != nil {
		return nil, err
	}
	in := &event.Input{Format: Name, Context: value}
	seen := event.NewSightings(rec.MaxIndicators)
	jsondoc.AddAddresses(seen, "src_ip", d.SrcIP)
	jsondoc.AddAddresses(seen, "dest_ip", d.DestIP)
	if err := seen.Finish(in, "src_ip or dest_ip"); err != nil {
		return nil, err
	}

	ts, _ := jsondoc.Text(d.Timestamp)
	var warn string
	in.EventID, warn = rec.EventID(eventID(&d, ts, &in.Warnings), "event id")
	in.Warnings = appendNonEmpty(in.Warnings, warn)
	in.ObservedAt = rec.Time.UTC()
	if jsondoc.Present(d.Timestamp) {
		t, warn, ok := jsondoc.ParseISO(ts)
		if ok {
			in.ObservedAt = t
		} else {
			warn = fmt.Sprintf("timestamp %q is not an ISO 8601 time: used the Kafka message time", jsondoc.Truncate(ts, 64))
		}
		in.Warnings = appendNonEmpty(in.Warnings, warn)
	}
	in.Source = jsondoc.String(d.Host)
	if strings.TrimSpace(in.Source) == "" {
		in.Source = "suricata"
	}
	return in, nil
}

// eventID names the event after its flow: flow_id alone is shared by every event of a flow
// (its alerts, its http and dns transactions, the flow record), so the event type, timestamp,
// transaction and, for alerts, signature are added: "<flow_id>:<event_type>:<timestamp>
// [:tx<tx_id>][:<gid>:<signature_id>]". An event without a flow_id gets "" (the record's id).
func eventID(d *doc, ts string, warnings *[]string) string {
	flow, isString := jsondoc.Text(d.FlowID)
	if flow == "" {
		return ""
	}
	if !isString && !isNumber(flow) {
		*warnings = append(*warnings, fmt.Sprintf("flow_id %s is not a number or string: not used as the event id", jsondoc.Truncate(flow, 64)))
		return ""
	}
	typ := jsondoc.String(d.EventType)
	parts := []string{flow, typ}
	if ts != "" {
		parts = append(parts, ts)
	}
	if tx, _ := jsondoc.Text(d.TxID); tx != "" && isNumber(tx) {
		parts = append(parts, "tx"+tx)
	}
	if typ == "alert" && len(d.Alert) > 0 && d.Alert[0] == '{' {
		var a alert
		if jsondoc.Decode(d.Alert, &a) == nil {
			gid, _ := jsondoc.Text(a.GID)
			sid, _ := jsondoc.Text(a.SignatureID)
			switch {
			case sid != "" && gid != "":
				parts = append(parts, gid+":"+sid)
			case sid != "":
				parts = append(parts, sid)
			}
		}
	}
	return strings.Join(parts, ":")
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && c != '-' && c != '.' && c != 'e' && c != 'E' && c != '+' {
			return false
		}
	}
	return true
}

func appendNonEmpty(list []string, s string) []string {
	if s == "" {
		return list
	}
	return append(list, s)
}
