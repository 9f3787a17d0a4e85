package view

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"go.uber.org/zap"
)

// The JSON API (/api/v1/...): the same data as the pages, for scripts and dashboards.

type apiError struct {
	Error string `json:"error"`
	Param string `json:"param,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// fail answers an API request with the status err calls for.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body := u.classify(r, err)
	writeJSON(w, status, body)
}

func (u *UI) classify(r *http.Request, err error) (int, apiError) {
	var pe *ParamError
	switch {
	case errors.As(err, &pe):
		return http.StatusBadRequest, apiError{Error: pe.Error(), Param: pe.Param}
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, apiError{Error: err.Error()}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return 499, apiError{Error: "request cancelled"}
	default:
		u.log.Error("view request failed", zap.String("path", r.URL.Path), zap.Error(err))
		return http.StatusServiceUnavailable, apiError{Error: "the view's store is unavailable; see the logs"}
	}
}

func (u *UI) apiIndicators(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r.URL.Query())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	page, err := u.store.List(r.Context(), f)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// pathIP reads and normalises the {ip} path value.
func pathIP(r *http.Request) (string, error) {
	raw := r.PathValue("ip")
	ip, ok := canonicalIP(raw)
	if !ok {
		return "", &ParamError{"ip", fmt.Sprintf("%q is not an IP address", clip(raw, maxQuoted, "…"))}
	}
	return ip, nil
}

func (u *UI) apiIndicator(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.RawQuery) > 0 {
		u.fail(w, r, unknownParams(r.URL.Query()))
		return
	}
	ip, err := pathIP(r)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	ind, err := u.store.Get(r.Context(), ip)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ind)
}

func unknownParams(q url.Values) error {
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) == 0 {
		names = []string{"?"}
	}
	return &ParamError{names[0], "unknown parameter (this endpoint takes none)"}
}

func (u *UI) apiStats(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.RawQuery) > 0 {
		u.fail(w, r, unknownParams(r.URL.Query()))
		return
	}
	st, err := u.store.Stats(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// HealthReport is the body of /api/v1/health.
type HealthReport struct {
	GeneratedAt  time.Time     `json:"generated_at"`
	Integrations []Integration `json:"integrations"`
}

func (u *UI) healthReport(ctx context.Context) (*HealthReport, error) {
	snaps, err := u.store.Health(ctx)
	if err != nil {
		return nil, err
	}
	return &HealthReport{GeneratedAt: u.store.opts.Now().UTC(), Integrations: Aggregate(snaps)}, nil
}

func (u *UI) apiHealth(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.RawQuery) > 0 {
		u.fail(w, r, unknownParams(r.URL.Query()))
		return
	}
	rep, err := u.healthReport(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
