package view

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/view/auth"
	"github.com/threatpipe/threatpipe/view/steer"
)

// The analyst actions (issue 14): false positive, unblock, re-enrich and notes for analysts;
// the kill switch and the shared allowlist for admins. Each is a JSON endpoint under /api/v1
// (api_actions.go) and a form on the pages (actions_pages.go); both call view/steer, which
// writes the audit record. The auth layer checks the role and, for cookie sessions, the CSRF
// token before a handler runs, so a refused request changes nothing.

// maxActionBody bounds an action's request body: a reason or note is a few KiB at most.
const maxActionBody = 16 << 10

// actionsOn says whether the analyst actions are wired (UIOptions.Steer).
func (u *UI) actionsOn() bool { return u.opts.Steer != nil }

// guardRole is guard with a higher role than viewer.
func (u *UI) guardRole(role auth.Role, h http.HandlerFunc) http.Handler {
	return u.secure(u.auth.Require(role)(h))
}

// registerActions adds the action routes when the actions are wired.
func (u *UI) registerActions(mux *http.ServeMux) {
	if !u.actionsOn() {
		return
	}
	an, ad, vw := auth.RoleAnalyst, auth.RoleAdmin, auth.RoleViewer
	for path, h := range map[string]http.Handler{
		"POST /api/v1/indicators/{ip}/false-positive": u.guardRole(an, u.apiFalsePositive),
		"POST /api/v1/indicators/{ip}/unblock":        u.guardRole(an, u.apiUnblock),
		"POST /api/v1/indicators/{ip}/refresh":        u.guardRole(an, u.apiRefresh),
		"POST /api/v1/indicators/{ip}/notes":          u.guardRole(an, u.apiAddNote),
		"GET /api/v1/indicators/{ip}/notes":           u.guardRole(vw, u.apiNotes),
		"GET /api/v1/kill-switch":                     u.guardRole(vw, u.apiKillSwitch),
		"PUT /api/v1/kill-switch":                     u.guardRole(ad, u.apiSetKillSwitch),
		"GET /api/v1/allowlist":                       u.guardRole(vw, u.apiAllowlist),
		"POST /api/v1/allowlist":                      u.guardRole(ad, u.apiAllowlistAdd),
		"DELETE /api/v1/allowlist":                    u.guardRole(ad, u.apiAllowlistRemove),
		"POST /indicators/{ip}/false-positive":        u.guardRole(an, u.formFalsePositive),
		"POST /indicators/{ip}/unblock":               u.guardRole(an, u.formUnblock),
		"POST /indicators/{ip}/refresh":               u.guardRole(an, u.formRefresh),
		"POST /indicators/{ip}/notes":                 u.guardRole(an, u.formNote),
		"GET /allowlist":                              u.guardRole(ad, u.serveAllowlist),
		"POST /allowlist":                             u.guardRole(ad, u.formAllowlistAdd),
		"POST /allowlist/remove":                      u.guardRole(ad, u.formAllowlistRemove),
		"POST /kill-switch":                           u.guardRole(ad, u.formKillSwitch),
	} {
		mux.Handle(path, h)
	}
}

// actor is the signed-in caller as steer records them. The guard ran, so there is one.
func actor(r *http.Request) steer.Actor {
	p, _ := auth.FromContext(r.Context())
	return steer.Actor{Name: p.Name, Role: p.Role.String(), Via: p.Via}
}

// parseExpiry reads expires_in: a Go duration ("24h", "90m"), days ("7d"), or seconds (a JSON
// number or a string of digits). steer checks the range (1m to 90d).
func parseExpiry(raw string) (time.Duration, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return 0, &steer.InputError{Field: "expires_in", Msg: "is required (a duration such as 24h or 7d, or seconds)"}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > int64(steer.MaxExpiry/time.Second) {
			return 0, &steer.InputError{Field: "expires_in", Msg: s + " seconds is out of range"}
		}
		return time.Duration(n) * time.Second, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= 366 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, &steer.InputError{Field: "expires_in", Msg: fmt.Sprintf("%q is not a duration (24h, 7d) or seconds", clip(s, maxQuoted, "…"))}
	}
	return d, nil
}

// expiresIn is the JSON expires_in: a number of seconds or a string parseExpiry reads.
type expiresIn string

func (e *expiresIn) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*e = expiresIn(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &steer.InputError{Field: "expires_in", Msg: "is not a string or a number"}
	}
	*e = expiresIn(s)
	return nil
}

// actionStatus maps an action's error to its HTTP status; the caller logs the 5xx ones.
func actionStatus(r *http.Request, err error) int {
	var pe *ParamError
	switch {
	case steer.IsInput(err), errors.As(err, &pe):
		return http.StatusBadRequest
	case errors.Is(err, steer.ErrNotListed):
		return http.StatusNotFound
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return 499
	default:
		return http.StatusServiceUnavailable
	}
}

// actionMessage is what the caller is told of err: input errors in full, failures in short
// (the details go to the log, as for the read endpoints).
func (u *UI) actionMessage(r *http.Request, status int, err error) string {
	if status < 500 {
		return err.Error()
	}
	u.log.Error("view: analyst action failed", zap.String("path", r.URL.Path), zap.String("actor", actor(r).Name), zap.Error(err))
	return "the action failed (the Kafka or Redis of the view did not answer); see the logs"
}

// fieldOf names the field of an input error for the JSON answer.
func fieldOf(err error) string {
	var ie *steer.InputError
	if errors.As(err, &ie) {
		return ie.Field
	}
	var pe *ParamError
	if errors.As(err, &pe) {
		return pe.Param
	}
	return ""
}
