package view

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"iter"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/view/auth"
)

// Playbook preview (admin): a candidate playbook file run in dry-run (act.Preview) over the
// scored events of the indicators seen in the last hours, to see what it would have done before
// it goes live.
//
//	POST /api/v1/playbooks/preview   {"yaml": "<playbook file>", "hours": 1-72 (default 24)}
//	GET  /playbooks/preview          the form
//	POST /playbooks/preview          the form posted (yaml, hours, csrf_token): the result table
//
// The view is not an event log: it keeps each indicator's latest scored event and a score
// history (THREATPIPE_VIEW_HISTORY entries). The preview replays every history entry in the
// range as an event that is the latest event with that entry's event id, revision, time,
// score, severity and source: conditions on anything else (providers, verdicts, tags, lists,
// confidence) see the latest sighting's values. An indicator sighted more often than its
// history holds has lost its older entries (history_capped counts them), and actions taken
// before the range do not suppress repeats within it.

// Bounds of a preview request.
const (
	maxPreviewYAML      = 256 << 10
	maxPreviewBody      = 1 << 20 // a JSON string may take twice its text, plus the envelope
	defaultPreviewHours = 24
	maxPreviewHours     = 72
	// maxPreviewIndicators bounds the indicators read, oldest sighting first; past it the
	// report says truncated.
	maxPreviewIndicators = DefaultMaxIndicators
)

// previewApproximation is repeated in every report, so that nobody reads it as exact.
const previewApproximation = "replays each indicator's score history within the range, every entry with the latest " +
	"scored event's other fields; histories longer than THREATPIPE_VIEW_HISTORY lost their oldest entries; " +
	"actions before the range, the kill switch and the block rate cap are not applied; the never-block list " +
	"is the special ranges only"

// PreviewReport is the body of POST /api/v1/playbooks/preview: act.PreviewResult's fields and
// what was read.
type PreviewReport struct {
	Hours int       `json:"hours"`
	Since time.Time `json:"since"`
	// Indicators is how many indicators seen since Since were read; Truncated says more were
	// seen than a preview reads (maxPreviewIndicators).
	Indicators    int    `json:"indicators"`
	Truncated     bool   `json:"truncated"`
	HistoryCapped int    `json:"history_capped"`
	Approximation string `json:"approximation"`
	*act.PreviewResult
}

type previewRequest struct {
	YAML  string `json:"yaml"`
	Hours int    `json:"hours"`
}

// registerPreview adds the preview's routes, each behind guard for the admin role.
func (u *UI) registerPreview(mux *http.ServeMux, guard func(role auth.Role, h http.Handler) http.Handler) {
	p := &previewPage{u: u, page: u.previewTemplate()}
	mux.Handle("POST /api/v1/playbooks/preview", guard(auth.RoleAdmin, http.HandlerFunc(u.apiPreview)))
	mux.Handle("GET /playbooks/preview", guard(auth.RoleAdmin, http.HandlerFunc(p.serveForm)))
	mux.Handle("POST /playbooks/preview", guard(auth.RoleAdmin, http.HandlerFunc(p.servePost)))
}

// previewTemplate parses the page with the layout. The templates are embedded, so a failure is
// a bug that every test of the page catches: it panics at start rather than serve a broken page.
func (u *UI) previewTemplate() *template.Template {
	return template.Must(template.New("layout.html").Funcs(u.funcs()).
		ParseFS(templateFS, "templates/layout.html", "templates/preview.html"))
}

func (u *UI) apiPreview(w http.ResponseWriter, r *http.Request) {
	var req previewRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPreviewBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: "the body exceeds " + strconv.Itoa(maxPreviewBody) + " bytes"})
			return
		}
		u.fail(w, r, &ParamError{"body", "not a JSON object {\"yaml\": ..., \"hours\": ...}: " + err.Error()})
		return
	}
	if req.Hours == 0 {
		req.Hours = defaultPreviewHours
	}
	rep, err := u.preview(r.Context(), req)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// preview checks req and runs it over the store.
func (u *UI) preview(ctx context.Context, req previewRequest) (*PreviewReport, error) {
	switch {
	case req.Hours < 1 || req.Hours > maxPreviewHours:
		return nil, &ParamError{"hours", "must be 1-" + strconv.Itoa(maxPreviewHours)}
	case strings.TrimSpace(req.YAML) == "":
		return nil, &ParamError{"yaml", "the playbook file is empty"}
	case len(req.YAML) > maxPreviewYAML:
		return nil, &ParamError{"yaml", "the playbook file exceeds " + strconv.Itoa(maxPreviewYAML>>10) + " KiB"}
	}
	now := u.store.opts.Now()
	rep := &PreviewReport{Hours: req.Hours, Since: now.Add(-time.Duration(req.Hours) * time.Hour).UTC(), Approximation: previewApproximation}
	scan := &previewScan{}
	res, err := act.Preview([]byte(req.YAML), u.store.previewEvents(ctx, rep.Since, now, scan), act.PreviewOptions{NeverBlock: u.opts.NeverBlock})
	if err != nil {
		return nil, &ParamError{"yaml", err.Error()}
	}
	if scan.err != nil {
		return nil, scan.err
	}
	rep.PreviewResult, rep.Indicators, rep.Truncated, rep.HistoryCapped = res, scan.indicators, scan.truncated, scan.historyCapped
	return rep, nil
}

// previewScan is what previewEvents read, and the error that stopped it.
type previewScan struct {
	indicators    int
	historyCapped int
	truncated     bool
	err           error
}

// previewEvents yields the sightings of the indicators last seen within [since, until], one
// indicator at a time and each one's in time order (what act.Preview needs: its windows are per
// indicator). It walks the seen index from since; an indicator seen again meanwhile moves past
// until, or comes again, and is read once.
func (s *Store) previewEvents(ctx context.Context, since, until time.Time, scan *previewScan) iter.Seq[*event.Scored] {
	return func(yield func(*event.Scored) bool) {
		pos, read := FeedPos{AddedMS: since.UnixMilli() - 1}, map[string]bool{}
		for {
			entries, err := s.FeedAfter(ctx, pos, feedChunk)
			if err != nil {
				scan.err = err
				return
			}
			ips, done := previewChunk(entries, until, read)
			if len(ips) > maxPreviewIndicators-len(read) {
				ips, done, scan.truncated = ips[:maxPreviewIndicators-len(read)], true, true
			}
			for _, ip := range ips {
				read[ip] = true
			}
			if !s.yieldIndicators(ctx, ips, since, until, scan, yield) || done || len(entries) < feedChunk {
				return
			}
			pos = entries[len(entries)-1].Pos()
		}
	}
}

// previewChunk picks the addresses to read from one chunk of the seen index: those not read yet,
// up to the first seen after until (done: the rest is later still).
func previewChunk(entries []FeedEntry, until time.Time, read map[string]bool) (ips []string, done bool) {
	for _, e := range entries {
		if e.AddedMS > until.UnixMilli() {
			return ips, true
		}
		if !read[e.IP] {
			ips = append(ips, e.IP)
		}
	}
	return ips, false
}

// yieldIndicators reads ips and yields their sightings; false when the consumer stopped or the
// read failed (scan.err).
func (s *Store) yieldIndicators(ctx context.Context, ips []string, since, until time.Time, scan *previewScan, yield func(*event.Scored) bool) bool {
	inds, err := s.FeedRead(ctx, ips)
	if err != nil {
		scan.err = err
		return false
	}
	for _, ind := range inds {
		scan.indicators++
		evs, capped := s.sightings(ind, since, until)
		if capped {
			scan.historyCapped++
		}
		for _, ev := range evs {
			if !yield(ev) {
				return false
			}
		}
	}
	return true
}

// sightings rebuilds ind's scored events within [since, until] from its history, oldest first:
// the latest event for its own entry, a copy of it with the entry's own fields for the others.
// capped says the history is full and reaches into the range, so older sightings in the range
// may be lost.
func (s *Store) sightings(ind *Indicator, since, until time.Time) (evs []*event.Scored, capped bool) {
	latest := ind.Latest
	if latest == nil {
		return nil, false // unreadable: nothing to decide on
	}
	inRange := func(at time.Time) bool { return !at.Before(since) && !at.After(until) }
	latestListed := false
	for _, h := range ind.History {
		if !inRange(h.At) {
			continue
		}
		if h.EventID == latest.EventID && h.Revision == latest.Revision {
			latestListed = true
			evs = append(evs, latest)
			continue
		}
		ev := *latest // shallow: act only reads it
		ev.EventID, ev.Revision, ev.Source = h.EventID, h.Revision, h.Source
		ev.Score, ev.Severity, ev.ObservedAt, ev.ProcessedAt = h.Score, h.Severity, h.At, h.At
		evs = append(evs, &ev)
	}
	if at := sightingTime(latest, until); !latestListed && inRange(at) {
		evs = append(evs, latest)
	}
	sort.SliceStable(evs, func(i, j int) bool {
		ti, tj := sightingTime(evs[i], until), sightingTime(evs[j], until)
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return evs[i].Revision < evs[j].Revision
	})
	n := len(ind.History)
	return evs, n >= s.HistoryCap() && n > 0 && inRange(ind.History[n-1].At)
}

// --- the page ---

type previewPage struct {
	u    *UI
	page *template.Template
}

// previewPageData is the form and, once posted, the result or the error.
type previewPageData struct {
	CSRF   string
	YAML   string
	Hours  int
	Error  string
	Report *PreviewReport
	Rows   []previewRow
}

// previewRow is one step's line of the result table.
type previewRow struct {
	act.StepPreview
	NeverBlock, Duplicates int
}

func (p *previewPage) serveForm(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, previewPageData{CSRF: auth.CSRFToken(r), Hours: defaultPreviewHours})
}

func (p *previewPage) servePost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxPreviewBody)
	d := previewPageData{CSRF: auth.CSRFToken(r), Hours: defaultPreviewHours}
	if err := r.ParseForm(); err != nil {
		d.Error = "the form could not be read: " + err.Error()
		p.render(w, r, http.StatusBadRequest, d)
		return
	}
	d.YAML = r.PostFormValue("yaml")
	if h := strings.TrimSpace(r.PostFormValue("hours")); h != "" {
		n, err := strconv.Atoi(h)
		if err != nil {
			n = -1 // preview says what hours must be
		}
		d.Hours = n
	}
	rep, err := p.u.preview(r.Context(), previewRequest{YAML: d.YAML, Hours: d.Hours})
	if err != nil {
		status, body := p.u.classify(r, err)
		d.Error = body.Error
		p.render(w, r, status, d)
		return
	}
	d.Report = rep
	for _, st := range rep.Steps {
		d.Rows = append(d.Rows, previewRow{StepPreview: st, NeverBlock: st.Outcomes[act.OutcomeNeverBlock], Duplicates: st.Outcomes[act.OutcomeDuplicate]})
	}
	p.render(w, r, http.StatusOK, d)
}

// render is UI.render with the preview's own template set (NewUI parses a fixed list).
func (p *previewPage) render(w http.ResponseWriter, r *http.Request, status int, d previewPageData) {
	var buf bytes.Buffer
	if err := p.page.ExecuteTemplate(&buf, "layout", p.u.layout(r, d)); err != nil {
		p.u.log.Error("view: rendering the playbook preview failed", zap.Error(err))
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
