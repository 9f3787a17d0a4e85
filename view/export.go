package view

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// CSV export: GET /api/v1/indicators.csv, the JSON list's filters and order as a spreadsheet
// (docs/view.md, "GET /api/v1/indicators.csv").

// MaxExportLimit is the most rows one export holds, and its default: an export is for "all of
// these", and the filtered scan reads at most THREATPIPE_VIEW_SCAN_LIMIT entries anyway.
const MaxExportLimit = 10000

// ExportPath is the export's route.
const ExportPath = "/api/v1/indicators.csv"

// ExportColumns are the CSV's header, in column order.
var ExportColumns = []string{"ip", "score", "severity", "priority", "confidence", "validated_by", "tags",
	"country", "asn", "as_org", "isp", "first_seen", "last_seen", "sightings"}

// registerExport adds the CSV export to mux behind the same guard as /api/v1/indicators
// (security headers, then the viewer role).
func (u *UI) registerExport(mux *http.ServeMux) {
	mux.Handle("GET "+ExportPath, u.guard(u.apiIndicatorsCSV))
}

// ParseExportFilter reads an export's filter: ParseFilter's parameters, with limit 1-10000
// (default 10000) instead of 1-500.
func ParseExportFilter(q url.Values) (Filter, error) {
	rest := url.Values{}
	for k, v := range q {
		if k != "limit" {
			rest[k] = v
		}
	}
	f, err := ParseFilter(rest)
	if err != nil {
		return Filter{}, err
	}
	if f.Limit, err = intParam(q, "limit", MaxExportLimit, 1, MaxExportLimit); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// Export returns up to MaxExportLimit indicators matching f, in ranking order: List without its
// page-size cap.
func (s *Store) Export(ctx context.Context, f Filter) (*Page, error) {
	limit := min(max(f.Limit, 1), MaxExportLimit)
	if f.Limit <= 0 {
		limit = MaxExportLimit
	}
	f = f.withDefaults()
	f.Limit = limit
	return s.list(ctx, f)
}

func (u *UI) apiIndicatorsCSV(w http.ResponseWriter, r *http.Request) {
	f, err := ParseExportFilter(r.URL.Query())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	page, err := u.store.Export(r.Context(), f)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	body, err := EncodeCSV(page.Rows)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	name := "threatpipe-indicators-" + u.store.opts.Now().UTC().Format("20060102T150405Z") + ".csv"
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("X-Threatpipe-Total", strconv.FormatInt(page.Total, 10))
	h.Set("X-Threatpipe-Truncated", strconv.FormatBool(page.Truncated))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// EncodeCSV writes rows as RFC 4180 CSV (CRLF line ends, quoting by encoding/csv) under
// ExportColumns, every cell made safe for spreadsheets (csvCell).
func EncodeCSV(rows []Row) ([]byte, error) {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.UseCRLF = true
	if err := cw.Write(ExportColumns); err != nil {
		return nil, fmt.Errorf("view: write csv: %w", err)
	}
	for _, r := range rows {
		if err := cw.Write(csvRecord(r)); err != nil {
			return nil, fmt.Errorf("view: write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return nil, fmt.Errorf("view: write csv: %w", err)
	}
	return buf.Bytes(), nil
}

func csvRecord(r Row) []string {
	asn := ""
	if r.ASN > 0 {
		asn = strconv.FormatInt(r.ASN, 10)
	}
	rec := []string{r.IP, strconv.Itoa(r.Score), string(r.Severity), strconv.FormatInt(r.Priority, 10),
		strconv.Itoa(r.Confidence), strings.Join(r.ValidatedBy, ";"), strings.Join(r.Tags, ";"),
		r.Country, asn, r.ASOrg, r.ISP, csvTime(r.FirstSeen), csvTime(r.LastSeen), strconv.FormatInt(r.Sightings, 10)}
	for i, c := range rec {
		rec[i] = csvCell(c)
	}
	return rec
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// csvCell defuses formula injection: ISP and AS names, tags and validators come from providers
// and producers, and a spreadsheet runs a cell starting with = + - @ (or a tab or carriage
// return, which some strip first) as a formula. A leading apostrophe makes it text (OWASP's
// advice); the export's own cells (addresses, numbers, times) never start with one of these.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
