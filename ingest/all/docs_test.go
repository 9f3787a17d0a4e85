package all

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

var update = flag.Bool("update", false, "rewrite the generated ingest tables in docs/configuration.md")

// TestDocsInSync fails when docs/configuration.md's ingest tables drift from the role's and the
// platforms' configs; `go test ./ingest/all -run TestDocsInSync -update` regenerates them.
func TestDocsInSync(t *testing.T) {
	var b strings.Builder
	b.WriteString("\n" + config.MarkdownTableOf(ingest.Vars()))
	for _, r := range Registrations() {
		b.WriteString("\n### " + r.Name + "\n\n")
		b.WriteString(config.MarkdownTableOf(r.Vars()))
	}
	pipelinetest.GeneratedSection(t, filepath.Join("..", "..", "docs", "configuration.md"), "ingest tables", b.String(), *update)
}
