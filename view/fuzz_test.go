package view

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// FuzzDecodeScored: whatever arrives on the scored topic either is rejected or yields an event
// with a canonical indicator, a bounded event id and bounded free text, which the store can encode.
func FuzzDecodeScored(f *testing.F) {
	for _, seed := range []string{
		`{"schema_version":"1","event_id":"e1","observed_at":"2026-03-14T09:26:53.589Z","processed_at":"2026-03-14T09:27:01Z","source":"s",` +
			`"input_format":"native","indicator":{"type":"ipv4-addr","value":"185.220.101.45"},"score":85,"severity":"critical","tags":["tor"],` +
			`"reasons":[{"source":"criminalip","detail":"d","points":85}],"providers":{"criminalip":{"status":"ok","result":{"verdict":"malicious",` +
			`"score":85,"isp":"Example","as_number":64500},"cache":{"hit":true,"age_seconds":412}}},"as":{"number":64500,"organization":{"name":"X"}},` +
			`"geo":{"country_iso_code":"DE"},"isp":"Example Hosting GmbH","origin":{"topic":"indicators","partition":3,"offset":1}}`,
		`{"event_id":"","indicator":{"value":"::ffff:10.0.0.1"},"providers":{"x":null}}`,
		`{"event_id":"e","indicator":{"value":"[2001:DB8::1]"},"score":-5,"severity":"bogus","geo":null,"as":{"organization":null}}`,
		`{"indicator":{"value":"1.2.3.4:80"}}`, `null`, `[]`, `{"event_id":1}`, `{"context":{"a":[1,2]},"indicator":{"value":"fe80::1%eth0"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeScored(kafka.Message{Topic: "scored", Partition: 1, Offset: 2, Value: data})
		if err != nil {
			return
		}
		ind, err := event.ParseIP(ev.Indicator.Value)
		if err != nil || ind.Value != ev.Indicator.Value {
			t.Fatalf("indicator %q is not canonical", ev.Indicator.Value)
		}
		if ev.EventID == "" || len(ev.EventID) > maxEventIDBytes || !utf8.ValidString(ev.EventID) {
			t.Fatalf("event id %q", ev.EventID)
		}
		d := describe(ev)
		for _, s := range []string{ev.Source, d.isp, d.city, d.asOrg} {
			if len(s) > maxFieldBytes {
				t.Fatalf("unbounded field of %d bytes", len(s))
			}
		}
		if _, err := json.Marshal(latestCopy(ev)); err != nil {
			t.Fatalf("the store could not encode it: %v", err)
		}
		if tags := normTags(ev.Tags); len(tags) > 32 {
			t.Fatalf("%d tags", len(tags))
		}
	})
}

// FuzzDecodeRecord: an audit record is rejected or names a canonical target.
func FuzzDecodeRecord(f *testing.F) {
	for _, seed := range []string{
		`{"schema_version":"1","at":"2026-03-14T09:27:02Z","outcome":"done","kind":"block","playbook":"p","step":"s","sink":"edl",` +
			`"target":"185.220.101.45","ref":"r","dry_run":false,"until":"2026-03-14T10:27:02Z","score":85,"severity":"critical","worker":"w"}`,
		`{"outcome":"rate_cap_tripped","target":""}`, `{"target":"2001:DB8::1"}`, `{"target":"example.com"}`, `{"until":"x"}`, `7`,
		`{"kind":"analyst","step":"kill_switch_on","sink":"view","target":""}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeRecord(kafka.Message{Value: data})
		if errors.Is(err, errNotIndicator) {
			if rec == nil || rec.Kind != act.KindAnalyst {
				t.Fatalf("errNotIndicator for a record of kind %v", rec)
			}
			return
		}
		if err != nil {
			return
		}
		if ind, err := event.ParseIP(rec.Target); err != nil || ind.Value != rec.Target {
			t.Fatalf("target %q is not canonical", rec.Target)
		}
		if _, err := json.Marshal(rec); err != nil {
			t.Fatalf("the store could not encode it: %v", err)
		}
		_ = RecordDigest(data)
	})
}
