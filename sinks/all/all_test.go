package all

import (
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/sinks"
)

// TestEverySinkPackageIsRegistered: a sink package that exposes a Registration but is missing
// from the list would silently never run.
func TestEverySinkPackageIsRegistered(t *testing.T) {
	listed := map[string]bool{}
	for _, r := range Registrations() {
		if listed[r.Name] {
			t.Errorf("sink %q registered twice", r.Name)
		}
		listed[r.Name] = true
		for _, v := range r.Vars() {
			if v.Description == "" {
				t.Errorf("%s has no desc tag", v.Name)
			}
			if !strings.HasPrefix(v.Name, r.Prefix) {
				t.Errorf("%s is outside the sink's prefix %s", v.Name, r.Prefix)
			}
		}
	}
	// Every package under sinks/ that declares a Registration must be in the list.
	files, err := filepath.Glob("../*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	declaring := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err == nil && !strings.HasSuffix(f, "_test.go") && strings.Contains(string(raw), "Registration = sinks.Register") {
			declaring[filepath.Base(filepath.Dir(f))] = true
		}
	}
	if len(declaring) != len(listed) {
		t.Errorf("%d packages declare a Registration (%v) but %d are listed", len(declaring), declaring, len(listed))
	}
}

// TestEveryBlockSinkRunsTheBlockContract: a sink package that can block (its code names
// sinks.KindBlock) must run sinktest.RunBlockContract in its tests, so that it is proven to
// refuse never-block addresses itself, whatever the act worker checked before.
func TestEveryBlockSinkRunsTheBlockContract(t *testing.T) {
	dirs, err := filepath.Glob("../*")
	if err != nil {
		t.Fatal(err)
	}
	blockers := 0
	for _, dir := range dirs {
		if filepath.Base(dir) == "sinktest" {
			continue // the contract itself
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		var blocks, contract bool
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(f, "_test.go") {
				contract = contract || strings.Contains(string(raw), "sinktest.RunBlockContract(")
			} else {
				blocks = blocks || strings.Contains(string(raw), "sinks.KindBlock")
			}
		}
		if blocks {
			blockers++
			if !contract {
				t.Errorf("sink package %s can block but its tests do not run sinktest.RunBlockContract", filepath.Base(dir))
			}
		}
	}
	if blockers < 3 { // edl, nftables, webhook
		t.Errorf("found %d block sink packages; the scan is broken", blockers)
	}
}

func TestLoadBuildsOnlyConfiguredSinksAndNamesBadVariables(t *testing.T) {
	deps := sinks.Deps{HTTPClient: http.DefaultClient, Mux: http.NewServeMux()}
	got, err := sinks.Load(Registrations(), []string{"THREATPIPE_SINK_KAFKA_ENABLED=false"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("sinks built without configuration: %v", keys(got))
	}
	got, err = sinks.Load(Registrations(), []string{"THREATPIPE_SINK_KAFKA_ENABLED=false", "THREATPIPE_SINK_EDL_ENABLED=true"}, deps)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["edl"]; !ok || len(got) != 1 {
		t.Errorf("built %v, want just edl", keys(got))
	}
	_, err = sinks.Load(Registrations(), []string{"THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY=short"}, deps)
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_SINK_PAGERDUTY_ROUTING_KEY") {
		t.Errorf("bad routing key: err = %v, want one naming the variable", err)
	}
	_, err = sinks.Load(Registrations(), []string{"THREATPIPE_SINK_EDL_ENABLED=maybe"}, deps)
	if err == nil || !strings.Contains(err.Error(), "EDL") {
		t.Errorf("bad bool: err = %v", err)
	}
}

func keys(m map[string]sinks.Sink) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

var update = flag.Bool("update", false, "rewrite the generated sink tables in docs/configuration.md")

// TestDocsInSync fails when docs/configuration.md's sink tables drift from the sink configs;
// `go test ./sinks/all -run TestDocsInSync -update` regenerates them.
func TestDocsInSync(t *testing.T) {
	var b strings.Builder
	for _, r := range Registrations() {
		b.WriteString("\n### " + r.Name + "\n\n")
		b.WriteString(config.MarkdownTableOf(r.Vars()))
	}
	pipelinetest.GeneratedSection(t, filepath.Join("..", "..", "docs", "configuration.md"), "sink tables", b.String(), *update)
}
