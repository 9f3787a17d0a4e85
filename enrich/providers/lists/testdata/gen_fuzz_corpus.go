//go:build ignore

// gen_fuzz_corpus writes the list fixtures as FuzzParse's seed corpus, in Go's corpus format:
//
//	cd enrich/providers/lists && go run testdata/gen_fuzz_corpus.go
package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
)

// extra seeds reach what the fixtures do not: a one-line MISP document, CRLF and a BOM, mapped
// and zoned addresses, a DROP text line, a long line.
var extra = map[string]string{
	"misp-one-line": `{"name":"x","type":"string","list":["192.0.2.1","example.com",7,"2001:db8::/33"]}`,
	"crlf-bom":      "\ufeff192.0.2.1\r\n# c\r\n::ffff:198.51.100.0/120\r\nfe80::1%eth0\r\n",
	"drop-text":     "; DROP\n192.0.2.9/24 ; SBL1\n",
	"long-line":     strings.Repeat("1", 300) + "\n",
}

func main() {
	fixtures, err := filepath.Glob("testdata/*")
	if err != nil {
		log.Fatal(err)
	}
	out := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(out, 0o755); err != nil {
		log.Fatal(err)
	}
	for name, data := range extra {
		write(filepath.Join(out, "extra-"+name), []byte(data))
	}
	for _, f := range fixtures {
		if fi, err := os.Stat(f); err != nil || fi.IsDir() || strings.HasSuffix(f, ".go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			log.Fatal(err)
		}
		name := "fixture-" + strings.NewReplacer(".", "-", "_", "-").Replace(filepath.Base(f))
		write(filepath.Join(out, name), data)
	}
}

func write(path string, data []byte) {
	seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(path, []byte(seed), 0o644); err != nil {
		log.Fatal(err)
	}
}
