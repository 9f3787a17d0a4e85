package ingest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/ingest/all"
)

func TestLoadConfigNamesTheVariable(t *testing.T) {
	known := ingest.Names(all.Registrations())
	for _, tc := range []struct{ env, want string }{
		{"", "THREATPIPE_INGEST_SOURCES: is required"},
		{"THREATPIPE_INGEST_SOURCES=taxii,nope", `THREATPIPE_INGEST_SOURCES: unknown source "nope"`},
		{"THREATPIPE_INGEST_SOURCES=taxii,TAXII", `THREATPIPE_INGEST_SOURCES: source "taxii" named twice`},
		{"THREATPIPE_INGEST_INTERVAL=soon", "THREATPIPE_INGEST_INTERVAL"},
		{"THREATPIPE_INGEST_INTERVAL=10ms", "THREATPIPE_INGEST_INTERVAL: 10ms is not between 1s and 24h"},
		{"THREATPIPE_INGEST_PAGE_SIZE=0", "THREATPIPE_INGEST_PAGE_SIZE"},
	} {
		_, err := ingest.LoadConfig([]string{tc.env}, known)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.env, err, tc.want)
		}
	}
	cfg, err := ingest.LoadConfig([]string{"THREATPIPE_INGEST_SOURCES= Taxii "}, known)
	if err != nil || strings.Join(cfg.Sources, ",") != "taxii" || cfg.Interval != time.Minute || cfg.PageSize != 500 {
		t.Fatalf("%+v %v", cfg, err)
	}
	// A listed source's own variables are checked when it is built.
	_, err = ingest.Build(all.Registrations(), cfg, []string{"THREATPIPE_INGEST_TAXII_URL=https://taxii.example/api1/"}, http.DefaultClient)
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_INGEST_TAXII_COLLECTION") {
		t.Errorf("build: %v", err)
	}
	srcs, err := ingest.Build(all.Registrations(), cfg, []string{"THREATPIPE_INGEST_TAXII_URL=https://taxii.example/api1/collections/c1/"}, http.DefaultClient)
	if err != nil || len(srcs) != 1 || srcs[0].Name() != "taxii" {
		t.Errorf("build: %v %v", srcs, err)
	}
}

// TestEveryRegistrationIsDocumented: a platform's variables carry descriptions and its prefix,
// and no two platforms share a name.
func TestEveryRegistrationIsDocumented(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range all.Registrations() {
		if seen[r.Name] || r.Name != strings.ToLower(r.Name) {
			t.Errorf("registration %q twice or not lower-case", r.Name)
		}
		seen[r.Name] = true
		for _, v := range r.Vars() {
			if v.Description == "" || !strings.HasPrefix(v.Name, r.Prefix) {
				t.Errorf("%s: no desc tag or not under %s", v.Name, r.Prefix)
			}
		}
	}
	for _, v := range ingest.Vars() {
		if v.Description == "" {
			t.Errorf("%s has no desc tag", v.Name)
		}
	}
}
