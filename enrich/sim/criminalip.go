package sim

import (
	"net/http"
	"time"
)

// Criminal IP's paths.
const (
	ReportPath  = "/v1/asset/ip/report"
	AccountPath = "/v1/user/me"
)

// CriminalIP speaks Criminal IP's API (shared reference providers.md §1): GET
// /v1/asset/ip/report?ip= and POST /v1/user/me, key in x-api-key, errors as
// {"status":N,"message":"..."}. Its answers:
//
//   - unknown path: HTTP 404 {"status":404,"message":"not found"}; wrong method: HTTP 405;
//   - rate limited: HTTP 429, Retry-After, {"status":429,...}; rejected key: HTTP 401
//     {"status":401,"message":"invalid api key"}; ErrorRate: HTTP 500 {"status":500,...};
//   - quota spent: HTTP 200 with body {"status":402,"message":"..."}, the in-body form
//     third-party clients report for exhausted keys;
//   - an ip that is not an address: HTTP 200 {"status":400,...}; an address Criminal IP does
//     not know (CriminalIPProfile): HTTP 200 {"status":404,"message":"..."}; otherwise HTTP 200
//     with the full report and "status":200;
//   - user/me: {"status":200,"message":"api success","data":{...,"max_search":N}} where N is
//     the quota left today (DailyQuota - used), or 1,000,000 - used when unmetered.
type CriminalIP struct{}

var _ Dialect = CriminalIP{}

// Name implements Dialect.
func (CriminalIP) Name() string { return "criminalip" }

// Route implements Dialect.
func (CriminalIP) Route(r *http.Request) Route {
	switch r.URL.Path {
	case ReportPath:
		return Route{Kind: RouteLookup, Method: http.MethodGet, IP: r.URL.Query().Get("ip")}
	case AccountPath:
		return Route{Kind: RouteAccount, Method: http.MethodPost}
	}
	return Route{}
}

// Key implements Dialect.
func (CriminalIP) Key(r *http.Request) (string, bool) { return r.Header.Get("x-api-key"), false }

// Knows implements Dialect.
func (CriminalIP) Knows(t *Truth) bool { return !t.CIP.NotFound }

type errorBody struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// Write implements Dialect.
func (CriminalIP) Write(w http.ResponseWriter, o *Outcome) {
	switch o.Kind {
	case OutUnknownRoute:
		WriteJSON(w, http.StatusNotFound, errorBody{404, "not found"})
	case OutMethod:
		WriteJSON(w, http.StatusMethodNotAllowed, errorBody{405, "method not allowed"})
	case OutRateLimited:
		w.Header().Set("Retry-After", RetryAfterSeconds(o.RetryAfter))
		WriteJSON(w, http.StatusTooManyRequests, errorBody{429, "too many requests: rate limit exceeded"})
	case OutRejected:
		WriteJSON(w, http.StatusUnauthorized, errorBody{401, "invalid api key"})
	case OutServerError:
		WriteJSON(w, http.StatusInternalServerError, errorBody{500, "internal server error (simulated)"})
	case OutQuotaExceeded:
		WriteJSON(w, http.StatusOK, errorBody{402, "daily search credits exhausted: upgrade your plan or wait for the reset"})
	case OutBadRequest:
		WriteJSON(w, http.StatusOK, errorBody{400, "invalid ip address"})
	case OutNotFound:
		WriteJSON(w, http.StatusOK, errorBody{404, "no data found for this ip"})
	case OutAccount:
		WriteJSON(w, http.StatusOK, criminalIPAccount(o.Quota.Remaining, o.Now))
	default:
		WriteJSON(w, http.StatusOK, buildReport(&o.Truth.CIP, o.Searches, o.Now))
	}
}

func criminalIPAccount(left int64, now time.Time) any {
	type data struct {
		Name           string `json:"name"`
		Email          string `json:"email"`
		LastAccessDate string `json:"last_access_date"`
		MaxSearch      int64  `json:"max_search"`
		Plan           string `json:"plan"`
	}
	return struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
		Data    data   `json:"data"`
	}{200, "api success", data{"threatpipe simulator", "sim@example.test", now.UTC().Format(time.DateTime), left, "Simulator"}}
}
