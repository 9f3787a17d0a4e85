package view

import (
	"flag"
	"path/filepath"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/view/auth"
)

var update = flag.Bool("update", false, "rewrite the generated view table in docs/configuration.md")

// TestDocsInSync fails when docs/configuration.md's view, TAXII or sign-in table drifts from its Config;
// `go test ./view -run TestDocsInSync -update` regenerates it.
func TestDocsInSync(t *testing.T) {
	doc := filepath.Join("..", "docs", "configuration.md")
	pipelinetest.GeneratedSection(t, doc, "view table", "\n"+config.MarkdownTableOf(Vars()), *update)
	pipelinetest.GeneratedSection(t, doc, "taxii table", "\n"+config.MarkdownTableOf(TAXIIVars()), *update)
	pipelinetest.GeneratedSection(t, doc, "auth table", "\n"+config.MarkdownTableOf(auth.Vars()), *update)
}
