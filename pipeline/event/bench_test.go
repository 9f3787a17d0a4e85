package event

import (
	"encoding/json"
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

// BenchmarkAppendJSON encodes a scored event of make bench's hits scenario's shape: one
// provider's cached answer, the rules' mapped fields and a small carried context.
func BenchmarkAppendJSON(b *testing.B) {
	lastSeen := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	s := &Scored{
		SchemaVersion: SchemaVersion, EventID: "bench-17", ObservedAt: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
		ProcessedAt: time.Now(), Source: "bench-fw", InputFormat: FormatNative,
		Indicator: Indicator{Type: IPv4, Value: "20.17.0.7"}, Score: 78, Severity: SeverityHigh, Confidence: 40,
		ValidatedBy: []string{"criminalip"}, Tags: []string{"scanner", "vpn"},
		Reasons: []Reason{{Source: "criminalip", Detail: "inbound dangerous (score 4), outbound critical (score 5)", Points: 78}},
		Providers: map[string]*ProviderOutcome{"criminalip": {Status: StatusOK, Cache: &CacheInfo{Hit: true, AgeSeconds: 12},
			Result: &Intel{Verdict: VerdictMalicious, Score: 78, Detail: "inbound dangerous (score 4), outbound critical (score 5)",
				Tags: []string{"scanner", "vpn"}, InboundLevel: "dangerous", InboundScore: 4, OutboundLevel: "critical", OutboundScore: 5,
				ASNumber: 64500, ASOrganization: "Example Hosting", CountryISO: "NL", City: "Amsterdam",
				Location: &Geo{Lat: 52.37, Lon: 4.89}, OpenPorts: []int{22, 443}, LastSeen: &lastSeen}}},
		AS:      &AS{Number: 64500, Organization: &ASOrgRef{Name: "Example Hosting"}},
		Geo:     &GeoInfo{CountryISOCode: "NL", CityName: "Amsterdam", Location: &Geo{Lat: 52.37, Lon: 4.89}},
		Fields:  map[string]json.RawMessage{"threat_type": json.RawMessage(`"scanner"`), "open_ports": json.RawMessage(`[22,443]`)},
		Context: json.RawMessage(`{"action":"deny","dst_port":18}`),
		Origin:  Origin{Topic: "in", Partition: 3, Offset: 123456},
	}
	buf := s.AppendJSON(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = s.AppendJSON(buf[:0])
	}
}
