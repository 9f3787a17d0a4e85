package view

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

func TestEncodeCSVGolden(t *testing.T) {
	seen := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	rows := []Row{
		{IP: "185.220.101.45", Score: 92, Severity: event.SeverityCritical, Priority: 920198765432101, Confidence: 74,
			ValidatedBy: []string{"abuseipdb", "criminalip"}, Tags: []string{"scanner", "tor"}, Country: "DE", ASN: 64500,
			ASOrg: `EXAMPLE "TRANSIT", AS`, ISP: "Hosting\nGmbH", FirstSeen: seen.Add(-5 * time.Minute), LastSeen: seen, Sightings: 2},
		{IP: "2001:db8::1", Score: 15, Severity: event.SeverityInfo, Priority: 150198765432101,
			ValidatedBy: []string{"=HYPERLINK(\"http://x\")"}, Tags: []string{"+cmd", "-2+3", "@SUM(A1)"},
			ASOrg: "\tTAB", ISP: "\rCR", LastSeen: seen, Sightings: 1},
	}
	got, err := EncodeCSV(rows)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "export.golden.csv")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("csv differs from %s (-update rewrites it):\n%s", golden, got)
	}
	// Read back: RFC 4180 quoting round-trips, and no cell a spreadsheet would run.
	recs, err := csv.NewReader(bytes.NewReader(got)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], ExportColumns) || len(recs) != 3 {
		t.Fatalf("records %q", recs)
	}
	if recs[1][9] != `EXAMPLE "TRANSIT", AS` || recs[1][10] != "Hosting\nGmbH" || recs[1][5] != "abuseipdb;criminalip" {
		t.Errorf("row 1 %q", recs[1])
	}
	for _, rec := range recs[1:] {
		for i, c := range rec {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("column %s: %q starts a formula", ExportColumns[i], c)
			}
		}
	}
	if recs[2][5] != `'=HYPERLINK("http://x")` || recs[2][6] != "'+cmd;-2+3;@SUM(A1)" || recs[2][9] != "'\tTAB" {
		t.Errorf("row 2 %q", recs[2])
	}
}

func exportServer(t *testing.T) (*httptest.Server, *Store, *UI) {
	t.Helper()
	s, _ := testStore(t, StoreOptions{})
	ui, err := NewUI(s, UIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ui.registerExport(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, s, ui
}

func TestExportCSVHandler(t *testing.T) {
	srv, s, _ := exportServer(t)
	now := s.opts.Now()
	for i := range 30 {
		score := []int{95, 85, 65, 45, 10}[i%5]
		mustApply(t, s, scored("198.51.100."+strconv.Itoa(i+1), score, now.Add(-time.Duration(i)*time.Minute), withISP("=cmd|' /C calc'!A0")))
	}
	res, body := fetchExport(t, srv.URL+ExportPath+"?severity=critical&q=198.51.100.&limit=7")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), `attachment; filename="threatpipe-indicators-`) ||
		res.Header.Get("X-Threatpipe-Total") != "12" || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 8 {
		t.Fatalf("%d records, want header + 7 (limit)", len(recs))
	}
	page, err := s.List(context.Background(), Filter{Severity: []string{"critical"}, Query: "198.51.100.", Limit: 7})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range page.Rows {
		if recs[i+1][0] != r.IP || recs[i+1][2] != "critical" || recs[i+1][10] != "'=cmd|' /C calc'!A0" {
			t.Errorf("record %d %q, want %s as the JSON list orders it, ISP defused", i+1, recs[i+1], r.IP)
		}
	}
	// Past the JSON list's 500, up to 10000; beyond that, or an unknown parameter, a 400.
	for q, want := range map[string]int{"limit=10000": 200, "limit=10001": 400, "bogus=1": 400, "severity=loud": 400} {
		if res, _ := fetchExport(t, srv.URL+ExportPath+"?"+q); res.StatusCode != want {
			t.Errorf("?%s: %d, want %d", q, res.StatusCode, want)
		}
	}
}

func TestExportNeedsTheViewerRole(t *testing.T) {
	_, _, ui := exportServer(t)
	mux := http.NewServeMux()
	ui.registerExport(mux)
	req := httptest.NewRequest(http.MethodGet, ExportPath, nil)
	req.RemoteAddr = "192.0.2.10:40000" // not loopback: anonymous read is refused
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "ip,score") {
		t.Errorf("anonymous remote export: %d %s", rec.Code, rec.Body.String())
	}
}

func TestExportURLKeepsFilters(t *testing.T) {
	q := url.Values{"severity": {"high,critical"}, "tag": {"tor"}, "since": {"24h"}, "limit": {"20"}, "offset": {"40"}}
	f, err := ParseFilter(q)
	if err != nil {
		t.Fatal(err)
	}
	got := f.ExportURL()
	if got != ExportPath+"?severity=high&severity=critical&since=24h&tag=tor" {
		t.Errorf("export URL %s", got)
	}
	u, _ := url.Parse(got)
	back, err := ParseExportFilter(u.Query())
	if err != nil || back.Tag != "tor" || back.Limit != MaxExportLimit || back.Offset != 0 || len(back.Severity) != 2 {
		t.Errorf("%+v %v", back, err)
	}
}

func fetchExport(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return res, b.String()
}

func TestRankedPageLinksTheExportAndShowsThePriority(t *testing.T) {
	srv, _, _ := testServer(t)
	_, body := get(t, srv.URL+"/?severity=high&tag=tor&limit=20&offset=20")
	for _, want := range []string{
		`<a href="/api/v1/indicators.csv?severity=high&amp;tag=tor" id="export-csv" download>Export CSV</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	_, body = get(t, srv.URL+"/")
	if !strings.Contains(body, `<td title="priority 92`) || !strings.Contains(body, "evidence credit +") {
		t.Error("the score cells do not carry the priority")
	}
}
