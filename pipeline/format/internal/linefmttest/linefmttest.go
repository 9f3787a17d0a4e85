// Package linefmttest reads the annotated fixture files of the line formats and gathers the
// messages of every other format, for their contract tests (formattest.Run).
package linefmttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/formattest"
)

// Fixtures reads a testdata file of one message per line. Comment lines before a message set
// what it must give: "# want: <addresses>", "# class: <class>", "# context: <substring>"
// (repeatable); other comments are notes (the fixture's source, say). Each fixture is named
// after its line number.
func Fixtures(t *testing.T, path string) []formattest.Fixture {
	t.Helper()
	data, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		t.Fatal(err)
	}
	var out []formattest.Fixture
	var next formattest.Fixture
	for n, l := range strings.Split(string(data), "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case l == "":
		case strings.HasPrefix(l, "# want:"):
			next.Indicators = strings.Fields(strings.TrimPrefix(l, "# want:"))
		case strings.HasPrefix(l, "# class:"):
			next.Class = event.ErrorClass(strings.TrimSpace(strings.TrimPrefix(l, "# class:")))
		case strings.HasPrefix(l, "# context:"):
			next.Context = append(next.Context, strings.TrimSpace(strings.TrimPrefix(l, "# context:")))
		case strings.HasPrefix(l, "#"):
		default:
			if len(next.Indicators) == 0 && next.Class == "" {
				t.Fatalf("%s:%d: a message with neither # want nor # class", path, n+1)
			}
			next.Name = filepath.Base(path) + ":" + itoa(n+1)
			next.Value = []byte(l)
			out = append(out, next)
			next = formattest.Fixture{}
		}
	}
	return out
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		if n /= 10; n == 0 {
			return string(b[i:])
		}
	}
}

// Others returns messages of every format but self: the native and ECS samples of
// pipeline/event/testdata/decode/messages (one message a file) and the lines of every other
// format's testdata files under pipeline/format/*/testdata.
func Others(t *testing.T, self string) [][]byte {
	t.Helper()
	root := moduleRoot(t)
	var out [][]byte
	files, _ := filepath.Glob(filepath.Join(root, "pipeline/event/testdata/decode/messages/*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	if len(out) == 0 {
		t.Fatal("no native or ECS samples found")
	}
	others, _ := filepath.Glob(filepath.Join(root, "pipeline/format/*/testdata/*"))
	for _, f := range others {
		if filepath.Base(filepath.Dir(filepath.Dir(f))) == self {
			continue
		}
		if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
			continue
		}
		out = append(out, formattest.Lines(t, f)...)
	}
	return out
}

// Messages returns the message lines of format's testdata files (for the fuzz seed corpus
// and the end-to-end test), whatever their annotations.
func Messages(t testing.TB, format string) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(moduleRoot(t), "pipeline/format", format, "testdata/*.txt"))
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimRight(l, "\r"); l != "" && !strings.HasPrefix(l, "#") {
				out = append(out, []byte(l))
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s fixtures", format)
	}
	return out
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}
