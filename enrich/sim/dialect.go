package sim

import (
	"net/http"
	"time"
)

// Dialect is one provider's API as the simulator speaks it: its routes, where its key travels,
// which addresses it knows, and the exact shape of every answer (success bodies, error bodies,
// rate-limit headers). The engine (API) decides what happens to a request, the same way for
// every provider: latency, forced 429s, keys, rate limit, errors, quota; the dialect only
// speaks. Adding a provider to the simulator is one dialect file plus one line in dialects.
type Dialect interface {
	// Name is the provider's name: the simulator serves it under /<name>/.
	Name() string
	// Route classifies a request by path and method.
	Route(r *http.Request) Route
	// Key returns the API key the request carries; keyless reports an API that takes none
	// (the engine then skips the key check).
	Key(r *http.Request) (key string, keyless bool)
	// Knows reports whether the provider has data on the address; when it has none the engine
	// answers NotFound (which, as with real providers, still spends quota where they bill it).
	Knows(t *Truth) bool
	// Write renders an outcome, status code, headers and body.
	Write(w http.ResponseWriter, o *Outcome)
}

// RouteKind is what a request asks for.
type RouteKind int

// Route kinds.
const (
	RouteUnknown RouteKind = iota // no such endpoint
	RouteLookup                   // an address lookup
	RouteAccount                  // the key and allowance check
)

// Route is a classified request.
type Route struct {
	Kind RouteKind
	// Method is the method the endpoint takes; another method is answered 405.
	Method string
	// IP is the address as the client sent it (lookups only).
	IP string
}

// OutcomeKind is how the engine answers a request.
type OutcomeKind int

// Outcomes, in the order the engine checks for them.
const (
	OutAnswer        OutcomeKind = iota // the address's data
	OutNotFound                         // the provider has no data on the address
	OutAccount                          // the account check's answer
	OutUnknownRoute                     // no such endpoint (404)
	OutMethod                           // wrong method (405)
	OutRateLimited                      // 429: the rate limit or a forced window
	OutRejected                         // missing or invalid key
	OutServerError                      // 500, from ErrorRate
	OutQuotaExceeded                    // the period's quota is spent
	OutBadRequest                       // the ip is not an address
	OutReset                            // connection reset unanswered (ResetRate; the engine writes it)
	OutGarbage                          // a 200 body that is not JSON (GarbageRate; the engine writes it)
)

// Outcome is everything a dialect needs to render an answer.
type Outcome struct {
	Kind  OutcomeKind
	Route Route
	// Truth is the address's simulated reality (OutAnswer, OutNotFound).
	Truth *Truth
	// RetryAfter is the wait before a token is free (OutRateLimited).
	RetryAfter time.Duration
	// Quota is the allowance after this request, for rate-limit headers and account answers:
	// Limit 0 means unmetered.
	Quota Allowance
	// Searches is how many times this address was looked up, this one included.
	Searches int64
	Now      time.Time
}

// Allowance is the quota state a dialect may report.
type Allowance struct {
	Limit     int64
	Remaining int64
	Reset     time.Time
}
