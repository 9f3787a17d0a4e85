package view

import (
	"net/http"
	"net/url"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/allowlist"
	"github.com/threatpipe/threatpipe/view/auth"
	"github.com/threatpipe/threatpipe/view/steer"
)

// The analyst actions on the pages: plain forms (no script, so the Content-Security-Policy
// stays as it is) that post the session's CSRF token as the csrf_token field to the handlers
// below, which call steer and redirect back with ?done=<step> (post/redirect/get: a reload
// does not repeat the action). A refused input renders the error page with status 400.

// expiryOption is a choice of the expiry selects.
type expiryOption struct {
	Value, Label string
	Selected     bool
}

// expiries are the false positive's and the allowlist's expiry choices.
func expiries() []expiryOption {
	return []expiryOption{{"1h", "1 hour", false}, {"24h", "1 day", false}, {"7d", "7 days", true}, {"30d", "30 days", false}, {"90d", "90 days", false}}
}

// flashes are the messages of ?done=<step>: fixed texts, so the query cannot put words on the page.
var flashes = map[string]string{
	steer.StepFalsePositive: "Marked a false positive: the address is allowlisted (the enrichers gate it within their allowlist refresh) " +
		"and act lifts its blocks, resolves its pages and comments its tickets.",
	steer.StepUnblock:         "Unblock sent: act lifts the address's blocks; its pages and tickets stay.",
	steer.StepRefresh:         "Re-enrich requested: the enricher looks the address up again now, within its budgets.",
	steer.StepNote:            "Note added.",
	steer.StepAllowlistAdd:    "Added to the allowlist: the enrichers gate it within their allowlist refresh.",
	steer.StepAllowlistRemove: "Removed from the allowlist: the enrichers look it up again within their allowlist refresh.",
	steer.StepKillSwitchOn:    "Kill switch on: act performs no action and lifts nothing until it is turned off.",
	steer.StepKillSwitchOff:   "Kill switch off: act acts again.",
}

// consolePanel is the actions part of the indicator page; nil when the actions are not wired.
type consolePanel struct {
	Path     string // the indicator page's path, which the forms post under
	CanAct   bool   // analyst or admin: the forms
	CSRF     string
	Flash    string
	Notes    []steer.Note
	NotesErr bool
	Expiries []expiryOption
}

func (u *UI) consolePanel(r *http.Request, ip string) *consolePanel {
	if !u.actionsOn() {
		return nil
	}
	p, _ := auth.FromContext(r.Context())
	c := &consolePanel{Path: indicatorPath(ip), CanAct: p.Has(auth.RoleAnalyst), CSRF: auth.CSRFToken(r), Flash: flashes[r.URL.Query().Get("done")], Expiries: expiries()}
	notes, err := u.opts.Steer.Notes(r.Context(), ip)
	if err != nil {
		u.actionMessage(r, http.StatusServiceUnavailable, err) // logs; the page still shows the indicator
		c.NotesErr = true
	}
	c.Notes = notes
	return c
}

// formIP reads the {ip} of an indicator form and bounds its body (the auth layer may have
// parsed it already for the CSRF token, under its own bound).
func formIP(w http.ResponseWriter, r *http.Request) (string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxActionBody)
	if err := r.ParseForm(); err != nil {
		return "", bodyError(err)
	}
	return pathIP(r)
}

// done redirects to back with the step's flash, or shows why the action did not happen.
func (u *UI) done(w http.ResponseWriter, r *http.Request, back string, rec act.Record, err error) {
	if err != nil {
		status := actionStatus(r, err)
		title := "The action was refused"
		if status >= 500 {
			title = "The action failed"
		}
		u.render(w, r, status, "error", errorPage{Title: title, Message: u.actionMessage(r, status, err), Status: status})
		return
	}
	http.Redirect(w, r, back+"?done="+url.QueryEscape(rec.Step), http.StatusSeeOther)
}

func indicatorPath(ip string) string { return "/indicators/" + url.PathEscape(ip) }

// indicatorForm runs an indicator form's action and answers it.
func (u *UI) indicatorForm(w http.ResponseWriter, r *http.Request, do func(who steer.Actor, ip string) (act.Record, error)) {
	ip, err := formIP(w, r)
	if err != nil {
		u.done(w, r, "", act.Record{}, err)
		return
	}
	rec, err := do(actor(r), ip)
	u.done(w, r, indicatorPath(ip), rec, err)
}

func (u *UI) formFalsePositive(w http.ResponseWriter, r *http.Request) {
	u.indicatorForm(w, r, func(who steer.Actor, ip string) (act.Record, error) {
		d, err := parseExpiry(r.PostFormValue("expires_in"))
		if err != nil {
			return act.Record{}, err
		}
		return u.opts.Steer.FalsePositive(r.Context(), who, ip, r.PostFormValue("reason"), d)
	})
}

func (u *UI) formUnblock(w http.ResponseWriter, r *http.Request) {
	u.indicatorForm(w, r, func(who steer.Actor, ip string) (act.Record, error) {
		return u.opts.Steer.Unblock(r.Context(), who, ip, r.PostFormValue("reason"))
	})
}

func (u *UI) formRefresh(w http.ResponseWriter, r *http.Request) {
	u.indicatorForm(w, r, func(who steer.Actor, ip string) (act.Record, error) {
		return u.opts.Steer.Refresh(r.Context(), who, ip)
	})
}

func (u *UI) formNote(w http.ResponseWriter, r *http.Request) {
	u.indicatorForm(w, r, func(who steer.Actor, ip string) (act.Record, error) {
		return u.opts.Steer.Note(r.Context(), who, ip, r.PostFormValue("text"))
	})
}

// allowlistPage is the admins' page: the kill switch and the shared allowlist.
type allowlistPage struct {
	KillSwitch bool
	Entries    []allowlist.Entry
	CSRF       string
	Flash      string
	Expiries   []expiryOption
}

func (u *UI) serveAllowlist(w http.ResponseWriter, r *http.Request) {
	on, err := u.opts.Steer.KillSwitch(r.Context())
	if err != nil {
		u.done(w, r, "", act.Record{}, err)
		return
	}
	entries, err := u.opts.Steer.Allowlist(r.Context())
	if err != nil {
		u.done(w, r, "", act.Record{}, err)
		return
	}
	u.render(w, r, http.StatusOK, "allowlist", allowlistPage{KillSwitch: on, Entries: entries, CSRF: auth.CSRFToken(r),
		Flash: flashes[r.URL.Query().Get("done")], Expiries: expiries()})
}

// adminForm runs an admin form's action and answers it, back on the allowlist page.
func (u *UI) adminForm(w http.ResponseWriter, r *http.Request, do func(who steer.Actor) (act.Record, error)) {
	r.Body = http.MaxBytesReader(w, r.Body, maxActionBody)
	if err := r.ParseForm(); err != nil {
		u.done(w, r, "", act.Record{}, bodyError(err))
		return
	}
	rec, err := do(actor(r))
	u.done(w, r, "/allowlist", rec, err)
}

func (u *UI) formAllowlistAdd(w http.ResponseWriter, r *http.Request) {
	u.adminForm(w, r, func(who steer.Actor) (act.Record, error) {
		d, err := parseExpiry(r.PostFormValue("expires_in"))
		if err != nil {
			return act.Record{}, err
		}
		return u.opts.Steer.AllowlistAdd(r.Context(), who, r.PostFormValue("target"), r.PostFormValue("reason"), d)
	})
}

func (u *UI) formAllowlistRemove(w http.ResponseWriter, r *http.Request) {
	u.adminForm(w, r, func(who steer.Actor) (act.Record, error) {
		return u.opts.Steer.AllowlistRemove(r.Context(), who, r.PostFormValue("target"), r.PostFormValue("reason"))
	})
}

func (u *UI) formKillSwitch(w http.ResponseWriter, r *http.Request) {
	u.adminForm(w, r, func(who steer.Actor) (act.Record, error) {
		on := r.PostFormValue("on")
		if on != "true" && on != "false" {
			return act.Record{}, &steer.InputError{Field: "on", Msg: "is not true or false"}
		}
		return u.opts.Steer.SetKillSwitch(r.Context(), who, on == "true", r.PostFormValue("reason"))
	})
}
