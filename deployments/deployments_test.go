package deployments

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/threatpipe/threatpipe/enrich/providers"
	"github.com/threatpipe/threatpipe/ingest"
	ingestall "github.com/threatpipe/threatpipe/ingest/all"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/view"
	"github.com/threatpipe/threatpipe/view/auth"
)

// Paths are relative to this package's directory, where `go test` runs.
const (
	repoRoot = ".."
	kubeDir  = "kubernetes"
)

// knownVars is the set of THREATPIPE_* variables of the enricher, the view and ingest:
// pipeline/config's, every enrichment provider's, the view's (its TAXII server's included) and
// the ingest role's with each platform's (`threatpipe config` lists them all, with the sinks').
func knownVars() map[string]config.Var {
	m := make(map[string]config.Var)
	vars := config.Vars()
	for _, r := range providers.All() {
		vars = append(vars, r.Vars()...)
	}
	vars = append(vars, view.Vars()...)
	vars = append(vars, view.TAXIIVars()...)
	vars = append(vars, auth.Vars()...)
	vars = append(vars, ingest.Vars()...)
	for _, r := range ingestall.Registrations() {
		vars = append(vars, r.Vars()...)
	}
	for _, v := range vars {
		m[v.Name] = v
	}
	return m
}

// checkVarName fails when name has the THREATPIPE_ prefix but is not a variable of pipeline/config.
func checkVarName(t *testing.T, where, name string) {
	t.Helper()
	if !strings.HasPrefix(name, config.Prefix) {
		return
	}
	if _, ok := knownVars()[name]; !ok {
		t.Errorf("%s sets %s, which is not a threatpipe variable (see docs/configuration.md; closest: %s)",
			where, name, closestVar(name))
	}
}

// closestVar names the known variable sharing the longest prefix with name, for error messages.
func closestVar(name string) string {
	best, bestLen := "", -1
	for _, v := range knownActVars() {
		n := 0
		for n < len(name) && n < len(v.Name) && name[n] == v.Name[n] {
			n++
		}
		if n > bestLen {
			best, bestLen = v.Name, n
		}
	}
	return best
}

// environ turns a variable map into os.Environ form, sorted for stable messages.
func environ(vars map[string]string) []string {
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// loadConfig runs config.Load on vars and fails the test with every problem it reports.
func loadConfig(t *testing.T, where string, vars map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.Load(environ(vars))
	if err != nil {
		t.Fatalf("%s: config.Load rejects the settings:\n%v", where, err)
	}
	return cfg
}

// decodeStrict decodes one YAML document into obj the way the API server reads JSON: unknown
// fields and duplicate keys are errors, and field names match case-sensitively (encoding/json
// alone would accept "readinessprobe" for readinessProbe).
func decodeStrict(doc []byte, obj any) error {
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return err
	}
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := sigsjson.UnmarshalStrict(js, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

// splitDocuments splits a YAML stream into documents, dropping empty and comment-only ones.
func splitDocuments(data []byte) ([][]byte, error) {
	var docs [][]byte
	for _, d := range docSeparator.Split(string(data), -1) {
		var probe any
		if err := yaml.Unmarshal([]byte(d), &probe); err != nil {
			return nil, err
		}
		if probe == nil {
			continue
		}
		docs = append(docs, []byte(d))
	}
	return docs, nil
}

// yamlFiles lists the .yaml/.yml files under dir, relative to it, sorted.
func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	sort.Strings(files)
	return files
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

// writeTemp writes content to a new file in the test's temporary directory and returns its path.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sameStrings reports whether a and b hold the same strings, ignoring order.
func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestSplitDocuments(t *testing.T) {
	docs, err := splitDocuments([]byte("# only a comment\n---\na: 1\n--- # next\nb: 2\n---\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || !bytes.Contains(docs[0], []byte("a: 1")) || !bytes.Contains(docs[1], []byte("b: 2")) {
		t.Fatalf("splitDocuments: got %d documents %q", len(docs), docs)
	}
}

// TestDecodeStrictCatchesTypos proves the strict decoder is strict: a misspelt field, a
// wrongly-cased field and a duplicate key each fail.
func TestDecodeStrictCatchesTypos(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":   "metadata: {name: x}\nspec: {replicas: 1, readinesProbe: {}}\n",
		"wrong case":      "metadata: {name: x}\nspec: {Replicas: 1}\n",
		"duplicate field": "metadata: {name: x}\nspec: {replicas: 1}\nspec: {replicas: 2}\n",
	} {
		t.Run(name, func(t *testing.T) {
			var obj struct {
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
				Spec struct {
					Replicas int `json:"replicas"`
				} `json:"spec"`
			}
			if err := decodeStrict([]byte(doc), &obj); err == nil {
				t.Fatalf("decodeStrict accepted %q", doc)
			}
		})
	}
}

// fmtList formats a list for messages.
func fmtList(s []string) string { return fmt.Sprintf("[%s]", strings.Join(s, ", ")) }
