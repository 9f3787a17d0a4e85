package lists

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzParse feeds arbitrary files to the parser in every format (auto first). Seeds are the
// fixtures, in testdata/fuzz/FuzzParse (regenerate with go run testdata/gen_fuzz_corpus.go).
// Small limits let the fuzzer reach them.
func FuzzParse(f *testing.F) {
	lim := limits{line: 256, file: 8 << 10}
	formats := []string{FormatAuto, FormatPlain, FormatSpamhaus, FormatTorExit, FormatMISP}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range formats {
			p, err := parse(bytes.NewReader(data), format, lim)
			if err != nil {
				continue
			}
			checkParsed(t, data, format, p, lim)
		}
	})
}

// checkParsed asserts what a successful parse promises.
func checkParsed(t *testing.T, data []byte, format string, p parsed, lim limits) {
	t.Helper()
	if int64(len(data)) > lim.file {
		t.Fatalf("%s: accepted %d bytes, limit %d", format, len(data), lim.file)
	}
	if !slices.Contains([]string{FormatPlain, FormatSpamhaus, FormatTorExit, FormatMISP}, p.format) ||
		(format != FormatAuto && p.format != format) {
		t.Fatalf("%s: read as %q", format, p.format)
	}
	if p.format != FormatMISP {
		for i, line := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSuffix(line, []byte("\r"))) > lim.line {
				t.Fatalf("%s: accepted line %d of %d bytes, limit %d", format, i+1, len(line), lim.line)
			}
		}
	}
	if p.skipped < 0 || p.table.Size() > len(data) {
		t.Fatalf("%s: %d entries, %d skipped from %d bytes", format, p.table.Size(), p.skipped, len(data))
	}
	for pfx := range p.table.All() {
		if !pfx.IsValid() || pfx != pfx.Masked() || (pfx.Addr().Is4In6() && pfx.Bits() >= 96) || pfx.Addr().Zone() != "" {
			t.Fatalf("%s: stored %v", format, pfx)
		}
		if !p.table.Contains(pfx.Addr()) {
			t.Fatalf("%s: %v stored but not found", format, pfx)
		}
	}
}
