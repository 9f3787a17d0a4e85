package auth

import (
	"encoding/json"
	"html/template"
	"net/http"

	"go.uber.org/zap"
)

// The auth layer's own answers are small and self-contained (the view's templates are not
// ours to depend on): a JSON object for API clients, a minimal page for browsers.

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} - threatpipe</title></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p>{{if .SignIn}}<p><a href="{{.SignIn}}">Sign in</a></p>{{end}}</body></html>
`))

// fail answers status with a short code or title and a message for people.
func (a *Authenticator) fail(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if a.isAPI(r) {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": title, "message": msg})
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	data := struct{ Title, Message, SignIn string }{Title: title, Message: msg}
	if a.rp != nil && status != http.StatusForbidden {
		data.SignIn = LoginPath
	}
	if err := errorPage.Execute(w, data); err != nil {
		a.log.Debug("view/auth: writing an error page failed", zap.Error(err))
	}
}

// internal logs err and answers 500 without details.
func (a *Authenticator) internal(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("view/auth: internal error", zap.String("path", r.URL.Path), zap.Error(err))
	a.fail(w, r, http.StatusInternalServerError, "internal error", "Something went wrong on our side; try again shortly.")
}
