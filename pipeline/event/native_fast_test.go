package event

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestNativeFastPathMatchesGeneralPath holds the typed native decoding (no map of the top
// level) to what the general path, which keeps unknown members, makes of the same message.
func TestNativeFastPathMatchesGeneralPath(t *testing.T) {
	fallback := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, msg string
		fast      bool // the typed path takes it
	}{
		{"plain", `{"event_id":"e1","observed_at":"2026-11-27T10:00:00Z","source":"fw","indicator":{"type":"ipv4-addr","value":"20.1.2.3"},"context":{"a":1}}`, true},
		{"white space", " {\n\t\"event_id\" : \"e1\" ,\r\n \"indicator\" : {\"type\":\"ipv4-addr\",\"value\":\"20.1.2.3\"} } \n", true},
		{"nulls", `{"event_id":"e1","observed_at":null,"source":null,"indicator":{"type":"ipv4-addr","value":"20.1.2.3"},"context":null}`, true},
		{"escaped strings", `{"event_id":"e\"1\\","source":"f\u00e9","indicator":{"type":"ipv4-addr","value":"20.1.2.3"}}`, true},
		{"non-canonical address", `{"event_id":"e1","indicator":{"type":"ipv6-addr","value":"2001:DB8:0:0::1"}}`, true},
		{"mapped address", `{"event_id":"e1","indicator":{"type":"ipv6-addr","value":"::ffff:20.1.2.3"}}`, true},
		{"schema version", `{"schema_version":"1","event_id":"e1","indicator":{"type":"ipv4-addr","value":"20.1.2.3"}}`, true},
		{"duplicate member", `{"event_id":"e1","event_id":"e2","indicator":{"type":"ipv4-addr","value":"20.1.2.3"}}`, true},
		{"unknown member", `{"event_id":"e1","indicator":{"type":"ipv4-addr","value":"20.1.2.3"},"tenant":"acme"}`, false},
		{"other case", `{"Event_ID":"e1","event_id":"e2","indicator":{"type":"ipv4-addr","value":"20.1.2.3"}}`, false},
		{"escaped key", `{"event\u005fid":"e1","indicator":{"type":"ipv4-addr","value":"20.1.2.3"}}`, false},
		{"key in a value", `{"event_id":"e1","context":{"tenant":"x","s":"a\"}"},"indicator":{"type":"ipv4-addr","value":"20.1.2.3"}}`, true},
		{"mistyped source", `{"event_id":"e1","source":5,"indicator":{"type":"ipv4-addr","value":"20.1.2.3"}}`, true},
		{"mistyped indicator", `{"event_id":"e1","indicator":"20.1.2.3"}`, true},
		{"null indicator", `{"event_id":"e1","indicator":null}`, true},
		{"context not an object", `{"event_id":"e1","context":[1],"indicator":{"type":"ipv4-addr","value":"20.1.2.3"}}`, true},
		{"trailing data", `{"event_id":"e1","indicator":{"type":"ipv4-addr","value":"20.1.2.3"}} {}`, false},
		{"malformed", `{"event_id":"e1","indicator":{"type":"ipv4-addr","value":"20.1.2.3"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := []byte(tc.msg)
			var doc nativeTop
			if got := doc.parse(msg); got != tc.fast {
				t.Errorf("typed path takes it: %v, want %v", got, tc.fast)
			}
			d := NewDecoder(1<<20, 32)
			got, gotErr := d.Decode(msg, fallback, "x")
			var want *Input
			var wantErr error
			if top, err := topLevel(msg); err != nil {
				wantErr = err
			} else {
				ni := &nativeInput{}
				var extra map[string]json.RawMessage
				ni.top, extra = nativeFromMap(top)
				if want, wantErr = d.decodeNative(ni, extra, fallback); want != nil {
					boundCarried(want, d.limits.MaxContextBytes)
				}
			}
			if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
				t.Fatalf("error %v, the general path's %v", gotErr, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded\n%+v\nthe general path\n%+v", got, want)
			}
		})
	}
}

// TestECSObjectMembers holds the struct read of the ECS address objects to the map read it
// replaced: exact key case, last duplicate wins, nulls and non-strings as before.
func TestECSObjectMembers(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		want      []string // indicator values, in order
		warnings  int
	}{
		{"nested and dotted", `{"source":{"ip":"20.1.2.3","port":1},"destination.ip":"20.1.2.4"}`, []string{"20.1.2.3", "20.1.2.4"}, 0},
		{"other case not read", `{"source":{"IP":"20.1.2.3"},"destination":{"ip":"20.1.2.4"}}`, []string{"20.1.2.4"}, 0},
		{"last duplicate", `{"source":{"ip":"20.1.2.3","ip":"20.1.2.5"}}`, []string{"20.1.2.5"}, 0},
		{"null and list", `{"source":{"ip":null},"related":{"ip":["20.1.2.3",null,"20.1.2.6"]}}`, []string{"20.1.2.3", "20.1.2.6"}, 0},
		{"escaped string", `{"source":{"ip":"20.1.2.\u0033"}}`, []string{"20.1.2.3"}, 0},
		{"not a string", `{"source":{"ip":5},"destination":{"ip":"20.1.2.4"}}`, []string{"20.1.2.4"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := NewDecoder(1<<20, 32).Decode([]byte(tc.msg), time.Time{}, "x")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range in.Sightings {
				got = append(got, s.Indicator.Value)
			}
			if !reflect.DeepEqual(got, tc.want) || len(in.Warnings) != tc.warnings {
				t.Fatalf("indicators %v, warnings %q; want %v and %d warnings", got, in.Warnings, tc.want, tc.warnings)
			}
		})
	}
}
