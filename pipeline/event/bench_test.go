package event

import (
	"testing"
	"time"
)

var (
	// benchPlain is make bench's native event: only the native members.
	benchPlain  = []byte(`{"event_id":"bench-17","observed_at":"2026-11-27T10:00:00Z","source":"bench-fw","indicator":{"type":"ipv4-addr","value":"20.17.0.7"},"context":{"action":"deny","dst_port":18}}`)
	benchNative = []byte(`{"event_id":"fw-1","observed_at":"2026-11-27T10:00:00Z","source":"edge-fw","indicator":{"type":"ipv4-addr","value":"185.220.101.4"},"context":{"action":"deny","dst_port":22},"tenant":"acme"}`)
	benchECS    = []byte(`{"@timestamp":"2026-11-27T10:00:00Z","event":{"id":"e1","dataset":"zeek.conn"},"observer":{"name":"sensor"},"source":{"ip":"45.155.205.233","port":51544},"destination":{"ip":"192.168.10.5","port":3389},"related":{"ip":["45.155.205.233","192.168.10.5"]}}`)
)

func BenchmarkDecode(b *testing.B) {
	d := NewDecoder(1<<20, 32)
	for _, c := range []struct {
		name string
		msg  []byte
	}{{"native", benchNative}, {"native-plain", benchPlain}, {"ecs", benchECS}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.msg)))
			for b.Loop() {
				if _, err := d.Decode(c.msg, time.Time{}, "x"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
