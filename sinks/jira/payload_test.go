package jira

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
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := fixture(t, name); !bytes.Equal(got, want) {
		t.Fatalf("%s differs (run with -update after checking):\n%s", name, got)
	}
}

func TestBuildCreateGolden(t *testing.T) {
	golden(t, "create_request.golden.json", buildCreate(testAction(), options{project: "SOC", issueType: "Task", priority: "High", labels: []string{"edr"}}))
}

func TestBuildCommentGolden(t *testing.T) {
	a := testAction()
	a.Score = 97
	golden(t, "comment_request.golden.json", buildComment(a, fixedNow))
}

func TestBuildCreateEdges(t *testing.T) {
	long := strings.Repeat("é", 300)
	tests := []struct {
		name    string
		action  sinks.Action
		summary string
		labels  string
	}{
		{"title with newlines", sinks.Action{Key: "k", Target: "192.0.2.1", Title: "line one\r\nline\ttwo\x00"}, "line one line two", "threatpipe,tp-8254c329a92850f6"},
		{"no title", sinks.Action{Key: "k", Target: "192.0.2.1", Score: 50, Severity: event.SeverityMedium}, "threatpipe: 192.0.2.1 scored 50 (medium)", "threatpipe,tp-8254c329a92850f6"},
		{"no title, no severity", sinks.Action{Key: "k", Target: "2001:db8::1"}, "threatpipe: 2001:db8::1 scored 0 (unknown)", "threatpipe,tp-8254c329a92850f6"},
		{"long title", sinks.Action{Key: "k", Target: "192.0.2.1", Title: long}, strings.Repeat("é", 254) + "…", "threatpipe,tp-8254c329a92850f6"},
		{"tag sanitising", sinks.Action{Key: "k", Target: "192.0.2.1", Title: "t", Tags: []string{"known scanner", "  ", "tor", "tor", "threatpipe", "a\nb", "tp-8254c329a92850f6"}},
			"t", "threatpipe,tp-8254c329a92850f6,known-scanner,tor,a-b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := buildCreate(&tt.action, options{project: "SOC", issueType: "Task"})
			if req.Fields.Summary != tt.summary {
				t.Fatalf("summary %q, want %q", req.Fields.Summary, tt.summary)
			}
			if utf8.RuneCountInString(req.Fields.Summary) > maxSummary {
				t.Fatal("summary too long")
			}
			if got := strings.Join(req.Fields.Labels, ","); got != tt.labels {
				t.Fatalf("labels %q, want %q", got, tt.labels)
			}
			b, _ := json.Marshal(req.Fields.Description)
			if err := checkADF(b); err != nil {
				t.Fatalf("description is not valid ADF: %v\n%s", err, b)
			}
		})
	}
}

func TestDescriptionContent(t *testing.T) {
	b, _ := json.Marshal(description(testAction()))
	for _, want := range []string{"203.0.113.7", "92", "critical", "tor, scanner", "Example Hosting", "DE", "abuseipdb (+40): confidence 100",
		`"href":"https://threatpipe.example/view/203.0.113.7"`, "pb1 / ticket"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("description lacks %q: %s", want, b)
		}
	}
}

func TestDescriptionBounds(t *testing.T) {
	a := testAction()
	a.Reasons = nil
	for range maxReasons + 10 {
		a.Reasons = append(a.Reasons, event.Reason{Source: "s", Detail: strings.Repeat("d", 2000), Points: -3})
	}
	for range maxLabels + 10 {
		a.Tags = append(a.Tags, "t"+strings.Repeat("x", len(a.Tags)))
	}
	a.ViewURL = "javascript:alert(1)"
	req := buildCreate(a, options{project: "SOC", issueType: "Task"})
	b, _ := json.Marshal(req.Fields.Description)
	if err := checkADF(b); err != nil {
		t.Fatal(err)
	}
	if len(b) > 32767 {
		t.Fatalf("description is %d bytes", len(b))
	}
	if bytes.Contains(b, []byte("javascript")) || !bytes.Contains(b, []byte("and 10 more")) {
		t.Fatalf("unsafe link or missing overflow note: %s", b)
	}
	if len(req.Fields.Labels) != maxLabels {
		t.Fatalf("%d labels", len(req.Fields.Labels))
	}
}

func TestCommentWithoutReasonsOrLink(t *testing.T) {
	a := &sinks.Action{Target: "192.0.2.1", Score: 10, Prior: "SOC-1"}
	b, _ := json.Marshal(buildComment(a, fixedNow).Body)
	if err := checkADF(b); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}
