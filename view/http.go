package view

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/neverblock"
	"github.com/threatpipe/threatpipe/view/auth"
	"github.com/threatpipe/threatpipe/view/steer"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ContentSecurityPolicy is sent with every response of the view: only the view's own script,
// stylesheet and API; inline SVG needs no exception. With sign-in configured, form-action also
// allows the provider's origin (contentSecurityPolicy).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// UIOptions configure the HTTP interface.
type UIOptions struct {
	// Refresh is how often the ranked page refreshes its table (THREATPIPE_VIEW_REFRESH).
	Refresh time.Duration
	Log     *zap.Logger
	// Auth guards every page and API route (at least the viewer role) and serves /auth/*;
	// nil: no sign-in configured, so anonymous read from loopback clients only.
	Auth *auth.Authenticator
	// SignInIssuer is the OpenID provider's issuer URL when sign-in is configured: pages then
	// offer a sign-in link, and the logout form may be redirected to the provider.
	SignInIssuer string
	// Steer performs the analyst actions (view/steer); nil: the view is read-only, without
	// the action routes, forms and notes (actions.go).
	Steer *steer.Service
	// NeverBlock is the workers' never-block list, for the playbook preview; nil: the special
	// ranges only.
	NeverBlock *neverblock.List
}

// UI is the view's HTTP interface. It serves server-rendered pages and a JSON API on THREATPIPE_HTTP_ADDR, next to
// /healthz, /readyz and /metrics. Every response carries Cache-Control: no-store (static files
// excepted), X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer and a
// Content-Security-Policy that allows scripts, styles, images and fetches from the view itself
// only (no inline script or style).
//
// Every page and API route needs at least the viewer role (UIOptions.Auth): pages redirect to
// the sign-in, the API answers 401 JSON, a signed-in user in no mapped group gets 403.
//
// Pages:
//
//	GET /                  the ranked list, with filters, live refresh and charts
//	GET /indicators/{ip}   one indicator: reasons, every provider's answer, history, actions
//	GET /health            integration health: providers and sinks, across replicas
//	GET /static/...        the page's stylesheet and script
//
// With UIOptions.Steer the analyst actions are added (actions.go): forms on the indicator page,
// GET /allowlist for admins, and POST/PUT/DELETE endpoints under /api/v1 (api_actions.go).
//
// JSON API (application/json):
//
//	GET /api/v1/indicators        the ranking; query parameters:
//	    severity  info|low|medium|high|critical, repeated or comma-separated (any of them)
//	    tag       a tag the indicator carries (case-insensitive)
//	    country   ISO 3166-1 alpha-2 code
//	    isp       text the ISP contains (case-insensitive)
//	    since     last seen within: a Go duration (15m, 1h, 24h) or days (7d); all = no window
//	    q         address prefix (185.220., 2001:db8:) or CIDR (185.220.0.0/16)
//	    limit     1-500, default 50
//	    offset    0-1000000, default 0
//	  -> {"indicators": [row...], "total": n, "truncated": bool, "scanned": n, "limit": n, "offset": n}
//	     rows by priority (score, then evidence-credited recency; docs/view.md), descending. With filters the view scans at
//	     most THREATPIPE_VIEW_SCAN_LIMIT indicators from the top of the ranking (within the score
//	     range of the selected severities); "truncated" says more may match below.
//	GET /api/v1/indicators/{ip}   one indicator: the row fields plus "latest" (the latest scored
//	                              event), "history" and "actions" (audit records), newest first
//	GET /api/v1/stats             chart data: score_distribution, minutes (events, gated events
//	                              and cache outcomes for the last 60 minutes), quota per
//	                              provider, gated events of the last 24 hours by gate reason
//	GET /api/v1/health            {"integrations": [...], "generated_at": t}: each provider and
//	                              sink aggregated across replicas, with the replicas' snapshots
//
// Errors are {"error": "...", "param": "..."} with status 400 for a bad or unknown query
// parameter or address (param names it), 404 for an indicator the view does not hold, 405 for
// another method, and 503 when Redis does not answer. docs/view.md documents every field.

type UI struct {
	store *Store
	opts  UIOptions
	log   *zap.Logger
	pages map[string]*template.Template
	auth  *auth.Authenticator
	csp   string
}

// NewUI parses the templates and returns the HTTP interface over store.
func NewUI(store *Store, o UIOptions) (*UI, error) {
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	u := &UI{store: store, opts: o, log: orNop(o.Log), pages: map[string]*template.Template{}, auth: o.Auth, csp: contentSecurityPolicy(o.SignInIssuer)}
	if u.auth == nil {
		a, err := defaultAuth()
		if err != nil {
			return nil, err
		}
		u.auth = a
	}
	layout, err := template.New("layout.html").Funcs(u.funcs()).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("view: templates: %w", err)
	}
	for _, page := range []string{"index", "indicator", "health", "error", "allowlist"} {
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("view: template %s: %w", page, err)
		}
		u.pages[page] = t
	}
	return u, nil
}

// Register adds the view's routes and the sign-in routes (/auth/*) to mux (the telemetry
// server's, in threatpipe view). /static/ stays public: the files are the same for everyone.
func (u *UI) Register(mux *http.ServeMux) {
	u.auth.Register(mux)
	mux.Handle("GET /{$}", u.guard(u.serveIndex))
	mux.Handle("GET /indicators/{ip}", u.guard(u.serveIndicator))
	mux.Handle("GET /health", u.guard(u.serveHealth))
	mux.Handle("GET /api/v1/indicators", u.guard(u.apiIndicators))
	u.registerExport(mux) // GET /api/v1/indicators.csv
	u.registerPreview(mux, func(role auth.Role, h http.Handler) http.Handler { return u.secure(u.auth.Require(role)(h)) })
	mux.Handle("GET /api/v1/indicators/{ip}", u.guard(u.apiIndicator))
	mux.Handle("GET /api/v1/stats", u.guard(u.apiStats))
	mux.Handle("GET /api/v1/health", u.guard(u.apiHealth))
	u.registerActions(mux)
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", u.secureStatic(files))
}

// Handler returns a mux serving only the view (for tests and embedding).
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	u.Register(mux)
	return mux
}

// --- pages ---

// render writes page with data inside the layout, which also shows who is signed in.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	if err := u.pages[page].ExecuteTemplate(&buf, "layout", u.layout(r, data)); err != nil {
		u.log.Error("view: rendering a page failed", zap.String("page", page), zap.Error(err))
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorPage struct {
	Title, Message string
	Status         int
}

func (u *UI) failPage(w http.ResponseWriter, r *http.Request, err error) {
	status, body := u.classify(r, err)
	title := http.StatusText(status)
	if title == "" {
		title = "Error"
	}
	u.render(w, r, status, "error", errorPage{Title: title, Message: body.Error, Status: status})
}

// indexPage is the data of the ranked list.
type indexPage struct {
	Filter       Filter
	Page         *Page
	First, Last  int
	Prev, Next   string
	APIURL       string
	RefreshMS    int64
	RefreshSec   int64
	Windows      []windowOption
	SinceCustom  string
	Severities   []severityOption
	ScoreChart   template.HTML
	EventChart   template.HTML
	HitChart     template.HTML
	QuotaChart   template.HTML
	Quotas       []Quota
	EventsLastHr int64
	// Gated and GatedTotal are the gated events counted, not listed, in the last 24 hours;
	// AtCap says the ranking is full (THREATPIPE_VIEW_MAX_INDICATORS), so the lowest-ranked go.
	Gated      []GatedReasonCount
	GatedTotal int64
	AtCap      bool
	MaxInd     int
}

type windowOption struct {
	Value, Label string
	Selected     bool
}

type severityOption struct {
	Value   string
	Checked bool
}

func (u *UI) serveIndex(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r.URL.Query())
	if err != nil {
		u.failPage(w, r, err)
		return
	}
	page, err := u.store.List(r.Context(), f)
	if err != nil {
		u.failPage(w, r, err)
		return
	}
	st, err := u.store.Stats(r.Context())
	if err != nil {
		u.failPage(w, r, err)
		return
	}
	f = f.withDefaults()
	d := indexPage{
		Filter: f, Page: page,
		RefreshMS: u.opts.Refresh.Milliseconds(), RefreshSec: int64(max(u.opts.Refresh/time.Second, 1)),
		Quotas: st.Quotas, Gated: st.Gated, MaxInd: st.MaxIndicators,
		AtCap: st.Indicators >= int64(st.MaxIndicators),
	}
	for _, g := range st.Gated {
		d.GatedTotal += g.Count
	}
	if len(page.Rows) > 0 {
		d.First, d.Last = f.Offset+1, f.Offset+len(page.Rows)
	}
	api := url.URL{Path: "/api/v1/indicators", RawQuery: f.Values().Encode()}
	d.APIURL = api.String()
	if f.Offset > 0 {
		p := f
		p.Offset = max(f.Offset-f.Limit, 0)
		d.Prev = pageURL(p)
	}
	if int64(f.Offset+f.Limit) < page.Total {
		n := f
		n.Offset = f.Offset + f.Limit
		d.Next = pageURL(n)
	}
	since := ""
	if f.Since > 0 {
		since = FormatSince(f.Since)
	}
	matched := false
	for _, win := range Windows {
		sel := win.Value == since || (since == "" && win.Value == "all")
		matched = matched || sel
		d.Windows = append(d.Windows, windowOption{win.Value, win.Label, sel})
	}
	if !matched {
		d.SinceCustom = since
	}
	for _, s := range Severities {
		d.Severities = append(d.Severities, severityOption{s, slices.Contains(f.Severity, s)})
	}
	d.ScoreChart, d.EventChart, d.HitChart, d.QuotaChart = charts(st)
	for _, m := range st.Minutes {
		d.EventsLastHr += m.Events
	}
	u.render(w, r, http.StatusOK, "index", d)
}

func pageURL(f Filter) string {
	return (&url.URL{Path: "/", RawQuery: f.Values().Encode()}).String()
}

// charts draws the four charts of the ranked page.
func charts(st *Stats) (scores, events, hits, quota template.HTML) {
	bars := make([]Bar, len(st.Scores))
	for i, b := range st.Scores {
		bars[i] = Bar{Label: fmt.Sprintf("%d-%d", b.From, b.To), Value: float64(b.Count), Class: "sev-" + string(event.SeverityOf(b.From))}
	}
	scores = BarChart(bars, ChartOptions{Width: 360, Height: 140, LabelEvery: 2, Title: "indicators per score bucket"})
	ev := make([]Bar, len(st.Minutes))
	pts := make([]Point, len(st.Minutes))
	for i, m := range st.Minutes {
		label := m.Start.UTC().Format("15:04")
		ev[i] = Bar{Label: label, Value: float64(m.Events)}
		pts[i] = Point{Label: label, Missing: m.HitRate == nil}
		if m.HitRate != nil {
			pts[i].Value = *m.HitRate
		}
	}
	events = BarChart(ev, ChartOptions{Width: 360, Height: 140, LabelEvery: 15, Title: "scored events per minute (UTC)"})
	hits = LineChart(pts, ChartOptions{Width: 360, Height: 140, Max: 1, Percent: true, LabelEvery: 15, Title: "cache hit rate per minute (UTC)"})
	qb := make([]Bar, len(st.Quotas))
	for i, q := range st.Quotas {
		class := "quota"
		if q.Warning {
			class = "quota warn"
		}
		qb[i] = Bar{Label: q.Provider, Value: float64(q.Used) / float64(q.Limit), Class: class}
	}
	quota = BarChart(qb, ChartOptions{Width: 360, Height: 140, Max: 1, Percent: true, Title: "quota used per provider"})
	return scores, events, hits, quota
}

// indicatorPage is the data of the detail page.
type indicatorPage struct {
	*Indicator
	Providers []providerRow
	Sparkline template.HTML
	Warnings  []string
	Console   *consolePanel // the analyst actions and notes; nil when not wired
}

type providerRow struct {
	Name string
	*event.ProviderOutcome
	// Detail is the answer's summary: the result's own in a full scored event, else the
	// source's reason (a compact event carries it there only).
	Detail string
}

func newProviderRow(name string, p *event.ProviderOutcome, reasons []event.Reason) providerRow {
	row := providerRow{Name: name, ProviderOutcome: p}
	if p.Result == nil {
		return row
	}
	if row.Detail = p.Result.Detail; row.Detail != "" {
		return row
	}
	for _, r := range reasons {
		if r.Source == name {
			row.Detail = r.Detail
			break
		}
	}
	return row
}

func (u *UI) serveIndicator(w http.ResponseWriter, r *http.Request) {
	if raw := r.PathValue("ip"); raw != "" {
		if ip, ok := canonicalIP(raw); ok && ip != raw {
			http.Redirect(w, r, "/indicators/"+url.PathEscape(ip), http.StatusMovedPermanently)
			return
		}
	}
	ip, err := pathIP(r)
	if err != nil {
		u.failPage(w, r, err)
		return
	}
	ind, err := u.store.Get(r.Context(), ip)
	if err != nil {
		u.failPage(w, r, err)
		return
	}
	d := indicatorPage{Indicator: ind, Console: u.consolePanel(r, ip)}
	if ind.Latest != nil {
		names := make([]string, 0, len(ind.Latest.Providers))
		for n := range ind.Latest.Providers {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if p := ind.Latest.Providers[n]; p != nil {
				d.Providers = append(d.Providers, newProviderRow(n, p, ind.Latest.Reasons))
			}
		}
		d.Warnings = ind.Latest.Warnings
	}
	scores := make([]float64, len(ind.History))
	for i, h := range ind.History {
		scores[len(scores)-1-i] = float64(h.Score) // oldest first
	}
	d.Sparkline = Sparkline(scores, 240, 40, 100)
	u.render(w, r, http.StatusOK, "indicator", d)
}

func (u *UI) serveHealth(w http.ResponseWriter, r *http.Request) {
	rep, err := u.healthReport(r.Context())
	if err != nil {
		u.failPage(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "health", rep)
}

// --- template helpers ---

func (u *UI) funcs() template.FuncMap {
	return template.FuncMap{
		"ago":      func(t time.Time) string { return Ago(u.store.opts.Now(), t) },
		"ts":       timestamp,
		"sevClass": sevClass,
		"join":     func(s []string) string { return strings.Join(s, ", ") },
		"pct": func(used, limit int64) string {
			if limit <= 0 {
				return ""
			}
			return strconv.FormatFloat(float64(used)*100/float64(limit), 'f', 1, 64) + "%"
		},
		"add":          func(a, b int) int { return a + b },
		"actionsOn":    u.actionsOn,
		"dur":          func(s int64) string { return (time.Duration(s) * time.Second).String() },
		"outcomeClass": outcomeClass,
		"statusClass":  statusClass,
		"untilTime": func(t *time.Time) string {
			if t == nil {
				return ""
			}
			return timestamp(*t)
		},
		"calls": func(m map[string]int64) string {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = k + " " + strconv.FormatInt(m[k], 10)
			}
			return strings.Join(parts, ", ")
		},
	}
}

// Ago writes how long before now t was, coarsely (45s ago, 12m ago, 3h ago, 2d ago).
func Ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
	}
}

func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// sevClass is the CSS class of a severity (an event.Severity or a string).
func sevClass(v any) string {
	s := event.Severity(fmt.Sprint(v))
	if _, known := severityRanges[s]; known {
		return "sev-" + string(s)
	}
	return "sev-info"
}

func outcomeClass(o act.Outcome) string {
	switch o {
	case act.OutcomeDone, act.OutcomeCommented, act.OutcomeRecovered, act.OutcomeLifted, act.OutcomeResolved:
		return "ok"
	case act.OutcomeFailed, act.OutcomeLiftFailed, act.OutcomeBadCondition:
		return "bad"
	default:
		return "muted"
	}
}

func statusClass(s string) string {
	switch statusRank(s) {
	case 0:
		return "ok"
	case 1, 2:
		return "warn"
	default:
		return "bad"
	}
}
