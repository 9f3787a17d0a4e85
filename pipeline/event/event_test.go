package event

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestSeverityOf(t *testing.T) {
	tests := []struct {
		score int
		want  Severity
	}{
		{-5, SeverityInfo},
		{0, SeverityInfo},
		{19, SeverityInfo},
		{20, SeverityLow},
		{39, SeverityLow},
		{40, SeverityMedium},
		{59, SeverityMedium},
		{60, SeverityHigh},
		{79, SeverityHigh},
		{80, SeverityCritical},
		{100, SeverityCritical},
		{150, SeverityCritical},
	}
	for _, tt := range tests {
		if got := SeverityOf(tt.score); got != tt.want {
			t.Errorf("SeverityOf(%d) = %q, want %q", tt.score, got, tt.want)
		}
	}
}

func TestNewScored(t *testing.T) {
	ind, err := ParseIP("2001:DB8::1")
	if err != nil {
		t.Fatal(err)
	}
	observed := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	now := time.Date(2024, 3, 1, 10, 0, 5, 0, time.UTC)
	in := &Input{
		Format:     FormatECS,
		EventID:    "evt-9",
		ObservedAt: observed,
		Source:     "pa-fw-01",
		Context:    json.RawMessage(`{"a":1}`),
		Extra:      map[string]json.RawMessage{"tenant": json.RawMessage(`"acme"`)},
		Sightings:  []Sighting{{Indicator: ind, Fields: []string{"source.ip", "related.ip"}}},
		Warnings:   []string{"w1"},
	}
	origin := Origin{Topic: "siem.events", Partition: 3, Offset: 42}
	got := NewScored(in, in.Sightings[0], origin, now)

	want := &Scored{
		SchemaVersion: SchemaVersion,
		EventID:       "evt-9",
		ObservedAt:    observed,
		ProcessedAt:   now,
		Source:        "pa-fw-01",
		InputFormat:   FormatECS,
		Indicator:     ind,
		ECSFields:     []string{"source.ip", "related.ip"},
		Score:         0,
		Severity:      SeverityInfo,
		ValidatedBy:   []string{},
		Tags:          []string{},
		Reasons:       []Reason{},
		Warnings:      []string{"w1"},
		Context:       json.RawMessage(`{"a":1}`),
		Extra:         map[string]json.RawMessage{"tenant": json.RawMessage(`"acme"`)},
		Origin:        origin,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("NewScored =\n%+v\nwant\n%+v", got, want)
	}

	// Tags and reasons are empty arrays, never null, in the output JSON; the gate is omitted.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"schema_version": `"3"`,
		"confidence":     `0`,
		"validated_by":   `[]`,
		"tags":           `[]`,
		"reasons":        `[]`,
		"severity":       `"info"`,
		"score":          `0`,
		"input_format":   `"ecs"`,
		"indicator":      `{"type":"ipv6-addr","value":"2001:db8::1"}`,
		"ecs_fields":     `["source.ip","related.ip"]`,
		"origin":         `{"topic":"siem.events","partition":3,"offset":42}`,
	} {
		if string(m[k]) != v {
			t.Errorf("JSON %s = %s, want %s", k, m[k], v)
		}
	}
	if _, ok := m["gate"]; ok {
		t.Errorf("JSON has a gate: %s", b)
	}
}

func TestNewScoredNativeOmitsEmpty(t *testing.T) {
	ind, _ := ParseIP("8.8.8.8")
	in := &Input{Format: FormatNative, EventID: "e", Source: "s", Sightings: []Sighting{{Indicator: ind}}}
	sc := NewScored(in, in.Sightings[0], Origin{}, time.Unix(0, 0).UTC())
	b, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ecs_fields", "warnings", "context", "extra", "gate"} {
		if _, ok := m[k]; ok {
			t.Errorf("JSON has %q although it is empty: %s", k, b)
		}
	}
	if string(m["input_format"]) != `"native"` {
		t.Errorf("input_format = %s", m["input_format"])
	}
}

func TestScoredEventsOfOneInputDoNotShareWarningStorage(t *testing.T) {
	warnings := make([]string, 1, 8) // spare capacity: a shared append would land in it
	warnings[0] = "from the decoder"
	in := &Input{EventID: "e", Warnings: warnings}
	a := NewScored(in, Sighting{Indicator: Indicator{Value: "1.1.1.1"}}, Origin{}, time.Now())
	b := NewScored(in, Sighting{Indicator: Indicator{Value: "9.9.9.9"}}, Origin{}, time.Now())
	a.Warnings = append(a.Warnings, "enrichment failed: a")
	b.Warnings = append(b.Warnings, "enrichment failed: b")
	if a.Warnings[1] != "enrichment failed: a" || b.Warnings[1] != "enrichment failed: b" || len(in.Warnings) != 1 {
		t.Fatalf("warnings leaked between events: a=%q b=%q", a.Warnings, b.Warnings)
	}
}

func TestOriginID(t *testing.T) {
	for _, c := range []struct {
		o    Origin
		want string
	}{
		{Origin{Topic: "indicators", Partition: 3, Offset: 1048585}, "indicators-3-1048585"},
		{Origin{Topic: "t", Partition: 0, Offset: 0}, "t-0-0"},
		{Origin{Topic: "a.b-c", Partition: 11, Offset: 1<<63 - 1}, "a.b-c-11-9223372036854775807"},
	} {
		if got := c.o.ID(); got != c.want {
			t.Errorf("%+v.ID() = %q, want %q", c.o, got, c.want)
		}
	}
}
