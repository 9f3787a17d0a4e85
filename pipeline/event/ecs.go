package event

import (
	fastjson "github.com/segmentio/encoding/json"

	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

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
			_ = Unmarshal(raw, m.dst)
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
	if in.EventID == "" || len(in.EventID) > MaxEventIDBytes {
		fallbackID = fallbackIDFunc()
	}
	switch {
	case in.EventID == "":
		in.EventID = fallbackID
	case len(in.EventID) > MaxEventIDBytes:
		in.Warnings = append(in.Warnings, fmt.Sprintf("event.id is %d bytes (limit %d): replaced by %s", len(in.EventID), MaxEventIDBytes, fallbackID))
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
	if Unmarshal(raw, &m) != nil {
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
	if Unmarshal(raw, &list) == nil {
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
