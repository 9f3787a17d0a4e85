package providers

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

var update = flag.Bool("update", false, "rewrite the generated provider tables in docs/configuration.md")

func providerTables() string {
	var b strings.Builder
	for _, r := range All() {
		b.WriteString("\n### " + r.Name + "\n\n")
		b.WriteString(config.MarkdownTableOf(r.Vars()))
	}
	return b.String()
}

// TestDocsInSync fails when docs/configuration.md's provider tables drift from the provider
// configs; `go test ./enrich/providers -run TestDocsInSync -update` regenerates them.
func TestDocsInSync(t *testing.T) {
	pipelinetest.GeneratedSection(t, filepath.Join("..", "..", "docs", "configuration.md"), "provider tables", providerTables(), *update)
}

func TestEveryProviderIsDistinctAndDocumented(t *testing.T) {
	seen := map[string]bool{}
	core := map[string]bool{}
	for _, v := range config.Vars() {
		core[v.Name] = true
	}
	for _, r := range All() {
		if seen[r.Name] {
			t.Errorf("provider %s registered twice", r.Name)
		}
		seen[r.Name] = true
		for _, v := range r.Vars() {
			if !strings.HasPrefix(v.Name, r.Prefix) || v.Description == "" || core[v.Name] {
				t.Errorf("%s: variable %s must carry the prefix %s, a description, and not clash with core settings", r.Name, v.Name, r.Prefix)
			}
		}
	}
	var _ []enrich.Registration = All()
}
