package event

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"
)

// requireSameAsEncodingJSON fails unless Append writes what encoding/json writes at both details,
// once the carried raw values are compacted and HTML-escaped as encoding/json does to them
// (Append copies them as they are). The compact encoding is held to encoding/json of the event
// with every provider's result replaced by its Compact.
func requireSameAsEncodingJSON(t *testing.T, s *Scored) {
	t.Helper()
	requireSameEncoding(t, s, s.AppendJSON(nil))
	compact := *s
	compact.Providers = nil
	for name, o := range s.Providers {
		if compact.Providers == nil {
			compact.Providers = make(map[string]*ProviderOutcome, len(s.Providers))
		}
		if o != nil && o.Result != nil {
			c := *o
			c.Result = o.Result.Compact()
			o = &c
		}
		compact.Providers[name] = o
	}
	requireSameEncoding(t, &compact, s.Append(nil, DetailCompact))
}

func requireSameEncoding(t *testing.T, s *Scored, got []byte) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if !json.Valid(got) {
		t.Fatalf("AppendJSON wrote invalid JSON:\n%s", got)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, got); err != nil {
		t.Fatal(err)
	}
	var escaped bytes.Buffer
	json.HTMLEscape(&escaped, compact.Bytes())
	if !bytes.Equal(escaped.Bytes(), want) {
		t.Fatalf("Append differs from encoding/json:\n got %s\nwant %s", escaped.Bytes(), want)
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	base := func() *Scored {
		return &Scored{
			SchemaVersion: SchemaVersion, EventID: "e-1",
			ObservedAt:  time.Date(2024, 3, 1, 10, 0, 0, 123456789, time.UTC),
			ProcessedAt: time.Date(2024, 3, 1, 10, 0, 1, 0, time.FixedZone("x", 3600)),
			Source:      "fw-1", InputFormat: FormatNative,
			Indicator: Indicator{Type: IPv4, Value: "203.0.113.7"},
			Severity:  SeverityInfo, Tags: []string{}, Reasons: []Reason{},
			Origin: Origin{Topic: "in", Partition: 3, Offset: 1 << 40},
		}
	}
	lastSeen := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	retryAt := time.Date(2026, 12, 1, 0, 0, 1, 500, time.UTC)
	full := &Intel{
		Verdict: VerdictMalicious, Score: 92, Detail: "inbound <critical> & \"outbound\" high",
		Tags: []string{"scanner", "tor"}, InboundLevel: "critical", InboundScore: 5, OutboundLevel: "high",
		OutboundScore: 4, ASNumber: 64500, ASOrganization: "Ex\u2028ample", ISP: "ISP\tCo", CountryISO: "NL",
		City: "Amsterdam", Location: &Geo{Lat: 52.37, Lon: -1e-7}, OpenPorts: []int{22, 443},
		CVECount: 3, MaxCVSS: 9.8, Service: "Public <DNS>", LastSeen: &lastSeen,
		Lists: []ListHit{{Name: "drop", Kind: ListBlock, Prefix: "198.51.100.0/24"}, {Name: "tor", Kind: ListTag, Prefix: "198.51.100.7/32", Tag: "tor"}},
		Raw:   []byte(`{"not":"published"}`),
	}
	cases := map[string]func(s *Scored){
		"minimal":   func(*Scored) {},
		"nil lists": func(s *Scored) { s.Tags, s.Reasons, s.ValidatedBy = nil, nil, nil },
		"gated": func(s *Scored) {
			s.Gate = &Gate{Reason: "private", Prefix: "10.0.0.0/8"}
			s.Reasons = []Reason{{Source: "gate", Detail: "private range 10.0.0.0/8: no lookup"}}
		},
		"enriched": func(s *Scored) {
			s.Score, s.Severity, s.Confidence, s.Revision = 92, SeverityCritical, 71, 3
			s.ValidatedBy = []string{"abuseipdb", "criminalip", "list:drop"}
			s.Fields = map[string]json.RawMessage{"threat_type": json.RawMessage(`"scanner"`), "malware_families": json.RawMessage(`["Mirai","a<b"]`)}
			s.Tags = []string{"scanner", "tor"}
			s.Reasons = []Reason{{Source: "criminalip", Detail: "x (cached 3s ago)", Points: 92}}
			s.Providers = map[string]*ProviderOutcome{
				"criminalip": {Status: StatusOK, Result: full, Cache: &CacheInfo{Hit: true, AgeSeconds: 3}},
				"abuseipdb":  {Status: StatusFailed, Error: "HTTP 503"},
				"virustotal": {Status: StatusPending, Error: "rate limited", RetryAt: &retryAt},
				"greynoise":  {Status: StatusOK, Result: &Intel{Verdict: VerdictBenign}, Cache: &CacheInfo{Joined: true}},
				"empty":      nil,
			}
			s.AS = &AS{Number: 64500, Organization: &ASOrgRef{Name: "Example"}}
			s.Geo = &GeoInfo{CountryISOCode: "NL", CityName: "Amsterdam", Location: &Geo{Lat: 1e21, Lon: 0}}
			s.ISP = "ISP"
		},
		"partial AS and geo": func(s *Scored) {
			s.AS = &AS{Organization: &ASOrgRef{Name: "Org only"}}
			s.Geo = &GeoInfo{Location: &Geo{Lat: 1.5e-9, Lon: 123456789.125}}
		},
		"empty AS and geo": func(s *Scored) { s.AS, s.Geo = &AS{}, &GeoInfo{CityName: "c"} },
		"ecs with context": func(s *Scored) {
			s.InputFormat = FormatECS
			s.ECSFields = []string{"source.ip", "related.ip"}
			s.Context = json.RawMessage(`{ "source" : { "ip" : "203.0.113.7" }, "msg": "a<b>&c" }`)
			s.Warnings = []string{"timestamp \"x\" is not RFC 3339"}
		},
		"native with extra": func(s *Scored) {
			s.Context = json.RawMessage(`{"k":[1,2.5e10,null,true]}`)
			s.Extra = map[string]json.RawMessage{"zeta": json.RawMessage(`"z"`), "alpha": json.RawMessage(`{"n": 1}`), "nil": nil}
		},
		"truncated context": func(s *Scored) {
			s.Context = json.RawMessage(`{"rule":"r"}`)
			s.ContextTruncated = &Truncation{OriginalBytes: 307200, Omitted: []string{"context.message", "extra.<b>"}, OmittedCount: 2}
		},
		"dropped context": func(s *Scored) {
			s.ContextTruncated = &Truncation{OriginalBytes: 12, Omitted: nil}
		},
		"awkward strings": func(s *Scored) {
			s.EventID = "ctl\x00\x01\x1f\b\f\n\r\t\\\"/ \u2029 é 😀 \xff\xfe end"
			s.Source = "<script>&amp;</script>"
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			s := base()
			mutate(s)
			requireSameAsEncodingJSON(t, s)
		})
	}
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 9.8, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 123456789012345678, -5e-324, math.MaxFloat64} {
		want, _ := json.Marshal(f)
		if got := appendFloat(nil, f); string(got) != string(want) {
			t.Errorf("appendFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

// FuzzAppendJSON decodes arbitrary input as the pipeline does and checks that every scored event
// it becomes encodes exactly as encoding/json would encode it.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{
		`{"event_id":"e1","source":"s<>&","indicator":{"type":"ipv4-addr","value":"8.8.8.8"},"context":{"a":[1, 2]},"x":{"y":null}}`,
		`{"@timestamp":"2024-06-12T08:15:30Z","event":{"id":"\u2028"},"source":{"ip":"1.1.1.1"},"related":{"ip":["1.1.1.1","::1",7]}}`,
		"{\"event_id\":\"\xff\",\"indicator\":{\"type\":\"ipv6-addr\",\"value\":\"2001:db8::1\"}}",
	} {
		f.Add([]byte(s), "detail", 42)
	}
	d := NewDecoder(fuzzMaxBytes, fuzzMaxIndicators)
	now := time.Date(2024, 5, 1, 12, 0, 0, 5, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, detail string, score int) {
		in, err := d.Decode(data, now, "fuzz-0-1")
		if err != nil {
			return
		}
		for _, sg := range in.Sightings {
			s := NewScored(in, sg, Origin{Topic: "t", Partition: 1, Offset: 2}, now)
			s.Score = score
			s.Reasons = append(s.Reasons, Reason{Source: "p", Detail: detail, Points: score})
			s.Providers = map[string]*ProviderOutcome{"p": {Status: StatusOK, Result: &Intel{Detail: detail, ISP: detail, Tags: []string{detail}}}}
			requireSameAsEncodingJSON(t, s)
		}
	})
}

// TestCompactKeepsWhatConsumersRead pins the compact result's members: the fused score's inputs
// that the playbooks and the view read, nothing the event carries elsewhere.
func TestCompactKeepsWhatConsumersRead(t *testing.T) {
	s := &Scored{SchemaVersion: SchemaVersion, Providers: map[string]*ProviderOutcome{"criminalip": {Status: StatusOK, Result: &Intel{
		Verdict: VerdictBenign, Score: 5, Detail: "d", Tags: []string{"dns"}, InboundLevel: "Safe", ASNumber: 15169,
		ISP: "Google", CountryISO: "US", Location: &Geo{Lat: 1, Lon: 2}, OpenPorts: []int{53}, Service: "Google Public DNS",
		Lists: []ListHit{{Name: "resolvers", Kind: ListBenign, Prefix: "8.8.8.0/24"}},
	}}}}
	var got struct {
		Providers map[string]struct {
			Result map[string]json.RawMessage `json:"result"`
		} `json:"providers"`
	}
	full, compact := s.Append(nil, DetailFull), s.Append(nil, DetailCompact)
	if err := json.Unmarshal(compact, &got); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range got.Providers["criminalip"].Result {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"lists", "score", "service", "tags", "verdict"}; !slices.Equal(keys, want) {
		t.Errorf("compact result members = %v, want %v", keys, want)
	}
	if len(compact) >= len(full) {
		t.Errorf("compact is %d bytes, full %d", len(compact), len(full))
	}
}
