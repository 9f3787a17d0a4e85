package servicenow

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

var update = flag.Bool("update", false, "rewrite the golden request bodies in testdata")

func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", name), got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := fixture(t, name); !bytes.Equal(got, want) {
		t.Fatalf("%s differs (run with -update after checking):\n%s", name, got)
	}
}

func TestBuildIncidentGolden(t *testing.T) {
	golden(t, "create_request.golden.json", buildIncident(testAction(), options{category: "security", assignmentGroup: "SOC"}))
}

func TestBuildWorkNoteGolden(t *testing.T) {
	a := testAction()
	a.Score = 97
	golden(t, "patch_request.golden.json", buildWorkNote(a, fixedNow))
}

func TestUrgencyImpact(t *testing.T) {
	for _, tt := range []struct {
		sev      event.Severity
		urg, imp string
	}{
		{event.SeverityCritical, "1", "1"}, {event.SeverityHigh, "1", "2"}, {event.SeverityMedium, "2", "2"},
		{event.SeverityLow, "2", "3"}, {event.SeverityInfo, "3", "3"}, {"", "3", "3"},
	} {
		if u, i := urgencyImpact(tt.sev); u != tt.urg || i != tt.imp {
			t.Errorf("%q: %s/%s, want %s/%s", tt.sev, u, i, tt.urg, tt.imp)
		}
	}
	inc := buildIncident(testAction(), options{category: "c", urgency: "3"})
	if inc.Urgency != "3" || inc.Impact != "1" {
		t.Fatalf("param override: %+v", inc)
	}
}

func TestBuildIncidentEdges(t *testing.T) {
	long := strings.Repeat("é", 400)
	tests := []struct {
		name   string
		action sinks.Action
		short  string
	}{
		{"title with newlines", sinks.Action{Target: "192.0.2.1", Title: "one\r\ntwo\x00"}, "one two"},
		{"no title", sinks.Action{Target: "192.0.2.1", Score: 50, Severity: event.SeverityMedium}, "threatpipe: 192.0.2.1 scored 50 (medium)"},
		{"long title", sinks.Action{Target: "192.0.2.1", Title: long}, strings.Repeat("é", 159) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inc := buildIncident(&tt.action, options{category: "security"})
			if inc.ShortDescription != tt.short {
				t.Fatalf("short_description %q, want %q", inc.ShortDescription, tt.short)
			}
			b, _ := json.Marshal(inc)
			if msg := checkIncident(b); msg != "" {
				t.Fatalf("the fake instance rejects it: %s", msg)
			}
		})
	}
}

func TestDescriptionBounds(t *testing.T) {
	a := testAction()
	for range maxReasons + 5 {
		a.Reasons = append(a.Reasons, event.Reason{Source: "s", Detail: strings.Repeat("d", 1000), Points: -2})
	}
	a.ViewURL = "javascript:alert(1)"
	d := description(a)
	if utf8.RuneCountInString(d) > maxDescription || strings.Contains(d, "javascript") {
		t.Fatalf("description of %d characters: %s", utf8.RuneCountInString(d), d)
	}
	n := buildWorkNote(a, fixedNow)
	if utf8.RuneCountInString(n.WorkNotes) > maxWorkNotes {
		t.Fatal("work note too long")
	}
	if got := correlationID(strings.Repeat("a", 300)); utf8.RuneCountInString(got) > maxCorrelation {
		t.Fatalf("correlation_id %q", got)
	}
}
