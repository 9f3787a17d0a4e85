package taxii

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// TestRealClients reads the server with the reference Python clients: taxii2-client pages
// through every collection, stix2-validator (strict) validates and stix2 parses every object.
// THREATPIPE_TEST_STIX_PYTHON is the python of scripts/stix-venv.sh; without it the test skips,
// unless THREATPIPE_TEST_REQUIRE_STIX=1.
func TestRealClients(t *testing.T) {
	py := os.Getenv("THREATPIPE_TEST_STIX_PYTHON")
	if py == "" {
		if os.Getenv("THREATPIPE_TEST_REQUIRE_STIX") == "1" {
			t.Fatal("THREATPIPE_TEST_REQUIRE_STIX=1 but THREATPIPE_TEST_STIX_PYTHON is unset (export THREATPIPE_TEST_STIX_PYTHON=$(scripts/stix-venv.sh))")
		}
		t.Skip("THREATPIPE_TEST_STIX_PYTHON is unset (scripts/stix-venv.sh prints it)")
	}
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	s := testStore(t, time.Now)
	published := populate(t, s, base, 320)
	srv := testServer(t, s)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, py, "testdata/taxii_check.py", srv.URL+DiscoveryPath, "alice", "secret", "40")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("taxii_check.py: %v\n%s", err, stderr.String())
	}
	var sum struct {
		Title       string `json:"title"`
		Validated   int    `json:"validated"`
		Errors      []string
		Warnings    []string
		ParseErrors []string `json:"parse_errors"`
		Repeats     int
		Collections map[string]struct {
			CanRead  bool           `json:"can_read"`
			CanWrite bool           `json:"can_write"`
			Objects  int            `json:"objects"`
			Types    map[string]int `json:"types"`
			Pages    int            `json:"pages"`
			Manifest int            `json:"manifest"`
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("summary: %v: %s", err, stdout.String())
	}
	report := fmt.Sprintf("TAXII 2.1 server read by taxii2-client, every object checked by stix2-validator (strict) and parsed by stix2: validated %d objects, %d errors, %d warnings, %d parse errors, %d repeats; %s",
		sum.Validated, len(sum.Errors), len(sum.Warnings), len(sum.ParseErrors), sum.Repeats, strings.TrimSpace(stdout.String()))
	t.Log(report)
	if err := os.WriteFile(filepath.Join(pipelinetest.ArtifactDir(t), "taxii-interop.txt"), []byte(report+"\n"), 0o644); err != nil {
		t.Error(err)
	}
	if len(sum.Errors)+len(sum.Warnings)+len(sum.ParseErrors) > 0 || sum.Repeats > 0 {
		t.Fatalf("errors %v\nwarnings %v\nparse errors %v\nrepeats %d", sum.Errors, sum.Warnings, sum.ParseErrors, sum.Repeats)
	}
	all := 0
	for _, sev := range []event.Severity{event.SeverityCritical, event.SeverityHigh, event.SeverityMedium, event.SeverityLow} {
		all += published[sev]
		c := sum.Collections[string(sev)]
		if c.Types["indicator"] != published[sev] || c.Types["sighting"] != published[sev] || c.Objects != 3*published[sev]+1 || c.Manifest != c.Objects {
			t.Errorf("%s: %+v, want %d indicators", sev, c, published[sev])
		}
	}
	c := sum.Collections["all"]
	if len(sum.Collections) != 5 || c.Objects != 3*all+1 || c.Pages < c.Objects/40 || !c.CanRead || c.CanWrite || c.Manifest != c.Objects {
		t.Errorf("all: %+v, want %d objects over %d+ pages", c, 3*all+1, (3*all+1)/40)
	}
	if sum.Validated != 2*(3*all+1)+3 { // "all" and the four severities, each with the identity
		t.Errorf("validated %d objects", sum.Validated)
	}
}
