package providers

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/config"
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
	const begin, end = "<!-- BEGIN GENERATED: provider tables -->\n", "<!-- END GENERATED: provider tables -->"
	path := filepath.Join("..", "..", "docs", "configuration.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the provider-table markers", path)
	}
	want := providerTables()
	if doc[i+len(begin):j] != want {
		if *update {
			if err := os.WriteFile(path, []byte(doc[:i+len(begin)]+want+doc[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("%s is out of date; run: go test ./enrich/providers -run TestDocsInSync -update", path)
	}
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
