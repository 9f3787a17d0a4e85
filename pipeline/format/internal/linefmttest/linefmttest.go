// Package linefmttest hands the line formats' tests their annotated fixtures (pipeline/format/
// fixture) and the messages of every other format, failing the test on a bad file.
package linefmttest

import (
	"path/filepath"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/format/fixture"
	"github.com/threatpipe/threatpipe/pipeline/format/formattest"
)

// Tests run in their package's directory, pipeline/format/<format>.
const (
	formatRoot    = ".."
	eventMessages = "../../event/testdata/decode/messages"
)

// Fixtures reads the annotated fixtures in path.
func Fixtures(t testing.TB, path string) []formattest.Fixture {
	t.Helper()
	fs, err := fixture.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// Others returns messages of every format but self, for formattest.Options.Others.
func Others(t testing.TB, self string) [][]byte {
	t.Helper()
	out, err := fixture.Others(formatRoot, eventMessages, self)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Messages returns every message of format's testdata files, whatever their annotations (fuzz
// seeds, benchmarks).
func Messages(t testing.TB, format string) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(formatRoot, format, "testdata", "*.txt"))
	var out [][]byte
	for _, f := range files {
		out = append(out, fixture.Values(Fixtures(t, f))...)
	}
	if len(out) == 0 {
		t.Fatalf("no %s fixtures", format)
	}
	return out
}
