package docs_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/sinks"
)

type stubSink struct {
	name string
	kind sinks.Kind
}

func (s stubSink) Name() string     { return s.name }
func (s stubSink) Kind() sinks.Kind { return s.kind }
func (s stubSink) Do(context.Context, *sinks.Action) (sinks.Result, error) {
	return sinks.Result{}, nil
}
func (s stubSink) ValidateParams(map[string]string) error { return nil }

// TestPlaybookExample: the worked example in playbooks.md is the file the act tests compile
// (act/testdata/playbooks.yaml, less its comment line), and it compiles.
func TestPlaybookExample(t *testing.T) {
	md, err := os.ReadFile("playbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindSubmatch(md)
	if m == nil {
		t.Fatal("playbooks.md has no yaml example")
	}
	file, err := os.ReadFile("../act/testdata/playbooks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(file), "\n") {
		if !strings.HasPrefix(line, "# ") {
			kept = append(kept, line)
		}
	}
	if got, want := strings.TrimSpace(string(m[1])), strings.TrimSpace(strings.Join(kept, "\n")); got != want {
		t.Errorf("playbooks.md's example differs from act/testdata/playbooks.yaml:\n--- doc\n%s\n--- file\n%s", got, want)
	}
	configured := map[string]sinks.Sink{
		"edl": stubSink{"edl", sinks.KindBlock}, "pagerduty": stubSink{"pagerduty", sinks.KindAlert},
		"jira": stubSink{"jira", sinks.KindTicket},
	}
	if _, err := act.Parse(m[1], configured); err != nil {
		t.Errorf("the documented example does not compile: %v", err)
	}
}
