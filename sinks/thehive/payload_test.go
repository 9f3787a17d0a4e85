package thehive

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

func TestBuildAlertGolden(t *testing.T) {
	golden(t, "alert_request.golden.json", buildAlert(testAction(), options{tlp: 2, pap: 2, tags: []string{"edr"}}))
}

func TestBuildCommentGolden(t *testing.T) {
	a := testAction()
	a.Score = 97
	golden(t, "comment_request.golden.json", buildComment(a, fixedNow))
}

func TestBuildLookupGolden(t *testing.T) {
	golden(t, "query_request.golden.json", buildLookup(sourceRef(testAction().Key)))
}

func TestSourceRef(t *testing.T) {
	a, b := sourceRef("k1"), sourceRef("k2")
	if a == b || a != sourceRef("k1") || len(a) != 35 || !strings.HasPrefix(a, "tp-") {
		t.Fatalf("%q %q", a, b)
	}
	if got := sourceRef(strings.Repeat("long key ", 1000)); len(got) != 35 {
		t.Fatalf("%q", got)
	}
}

func TestSeverityOf(t *testing.T) {
	for sev, want := range map[event.Severity]int{
		event.SeverityCritical: 4, event.SeverityHigh: 3, event.SeverityMedium: 2, event.SeverityLow: 1, event.SeverityInfo: 1, "": 1,
	} {
		if got := severityOf(sev); got != want {
			t.Errorf("%q: %d, want %d", sev, got, want)
		}
	}
}

func TestBuildAlertEdges(t *testing.T) {
	tests := []struct {
		name        string
		action      sinks.Action
		title       string
		observables int
	}{
		{"title with newlines", sinks.Action{Key: "k", Target: "192.0.2.1", Title: "one\r\ntwo"}, "one two", 1},
		{"no title", sinks.Action{Key: "k", Target: "2001:db8::1", Score: 50, Severity: event.SeverityMedium}, "threatpipe: 2001:db8::1 scored 50 (medium)", 1},
		{"mapped IPv4", sinks.Action{Key: "k", Target: "::ffff:192.0.2.1", Title: "t"}, "t", 1},
		{"not an address", sinks.Action{Key: "k", Target: "example.com", Title: "t"}, "t", 0},
		{"long title", sinks.Action{Key: "k", Target: "192.0.2.1", Title: strings.Repeat("é", 600)}, strings.Repeat("é", 511) + "…", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			al := buildAlert(&tt.action, options{tlp: 2, pap: 2})
			if al.Title != tt.title || len(al.Observables) != tt.observables {
				t.Fatalf("alert %+v", al)
			}
			if tt.observables == 1 && al.Observables[0].Data == "::ffff:192.0.2.1" {
				t.Fatal("mapped address not unmapped")
			}
			if al.ExternalLink != "" {
				t.Fatalf("link %q without a view URL", al.ExternalLink)
			}
		})
	}
}

func TestMarkdownIsEscaped(t *testing.T) {
	a := testAction()
	a.ISP = "Evil [click](https://evil.example) <img src=x> **bold** `code`"
	a.Reasons = []event.Reason{{Source: "x", Detail: "![img](https://evil.example/i.png)\n# heading", Points: 1}}
	a.ViewURL = "https://threatpipe.example/view/a b>c"
	d := description(a)
	for _, bad := range []string{"[click](", " <img", "**bold**", "`code`", "![img](", "\n# heading", "a b>c"} {
		if strings.Contains(d, bad) {
			t.Errorf("description carries %q: %s", bad, d)
		}
	}
	if !strings.Contains(d, "[Open in threatpipe](<https://threatpipe.example/view/a%20b%3Ec>)") {
		t.Errorf("view link: %s", d)
	}
	a.ViewURL = "javascript:alert(1)"
	if strings.Contains(description(a), "javascript") || buildAlert(a, options{}).ExternalLink != "" {
		t.Error("javascript URL linked")
	}
}

func TestDescriptionBounds(t *testing.T) {
	a := testAction()
	for range maxReasons + 5 {
		a.Reasons = append(a.Reasons, event.Reason{Source: "s", Detail: strings.Repeat("d", 5000), Points: -1})
	}
	for i := range maxTags + 10 {
		a.Tags = append(a.Tags, strings.Repeat("t", i+1))
	}
	a.Tags = append(a.Tags, strings.Repeat("x", 500))
	al := buildAlert(a, options{})
	if utf8.RuneCountInString(al.Description) > maxDescription || !strings.Contains(al.Description, "and 6 more") {
		t.Fatalf("description of %d characters", utf8.RuneCountInString(al.Description))
	}
	if len(al.Tags) != maxTags {
		t.Fatalf("%d tags", len(al.Tags))
	}
	for _, tag := range al.Tags {
		if utf8.RuneCountInString(tag) > maxTag {
			t.Fatalf("tag of %d characters", utf8.RuneCountInString(tag))
		}
	}
}
