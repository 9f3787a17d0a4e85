package enrich

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Cost says what a lookup spends. Paid lookups are cached, single-flighted across replicas and
// budgeted; offline lookups (local databases) are none of these.
type Cost string

// Costs.
const (
	CostPaid    Cost = "paid"    // counts against a quota someone pays for
	CostFree    Cost = "free"    // rate-limited but unmetered
	CostOffline Cost = "offline" // local data, no network
)

// Provider looks one indicator up in one threat-intel source.
//
// Implementations must be safe for concurrent use, honour ctx (deadline and cancellation) on
// every request, bound what they read, and classify every failure as an *Error. They do no
// caching, retrying, rate limiting or quota accounting: the Lookuper around them does.
type Provider interface {
	// Name is the provider's stable identifier: cache keys, metric labels, config prefix.
	Name() string
	Cost() Cost
	// Lookup returns the normalised answer. A provider that knows nothing of the indicator
	// returns a Result with Verdict VerdictNotFound, not an error: that answer is cacheable.
	Lookup(ctx context.Context, ind event.Indicator) (*Result, error)
}

// Verdict, Result, Geo and QuotaReport are part of the scored-event contract and live in the
// event package; these aliases keep provider code short.
type (
	Verdict     = event.Verdict
	Result      = event.Intel
	Geo         = event.Geo
	QuotaReport = event.QuotaReport
)

// Verdicts, from worst.
const (
	VerdictMalicious  = event.VerdictMalicious
	VerdictSuspicious = event.VerdictSuspicious
	VerdictBenign     = event.VerdictBenign
	VerdictNotFound   = event.VerdictNotFound
)

// ErrorKind classifies provider failures; each kind drives a policy.
type ErrorKind string

// Error kinds and their policies.
const (
	// KindUnauthorized: the key is wrong or revoked (401/403). Disable the provider, alert.
	KindUnauthorized ErrorKind = "unauthorized"
	// KindQuotaExhausted: the provider's credits are spent (402, or its own quota answer).
	// Skip the provider until the quota resets.
	KindQuotaExhausted ErrorKind = "quota_exhausted"
	// KindRateLimited: too many requests now (429). Wait RetryAfter, then try again.
	KindRateLimited ErrorKind = "rate_limited"
	// KindTransient: 5xx, timeouts, connection errors, garbled bodies. Retry with backoff.
	KindTransient ErrorKind = "transient"
	// KindPermanent: the request itself is wrong (400, an unsupported indicator). Do not retry.
	KindPermanent ErrorKind = "permanent"
	// KindUnavailable: not sent, because the circuit breaker is open after repeated outages.
	// Asking again before the breaker's timeout cannot help.
	KindUnavailable ErrorKind = "unavailable"
)

// Error is the error every Provider returns.
type Error struct {
	Provider   string
	Kind       ErrorKind
	Status     int           // HTTP status, or the status in the body, when there was one
	RetryAfter time.Duration // for KindRateLimited, when the provider said
	Message    string        // the provider's message, truncated; never contains the key
	Err        error         // underlying cause, if any
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s", e.Provider, e.Kind)
	if e.Status != 0 {
		msg += fmt.Sprintf(" (status %d)", e.Status)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a provider error; anything that is not an *Error is transient
// (a context deadline on an attempt, say).
func KindOf(err error) ErrorKind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return KindTransient
}

// ClassifyHTTPStatus maps an HTTP status to an error kind, for providers that signal failures
// the ordinary way. 404 is not here: for most providers it means "not found", an answer.
func ClassifyHTTPStatus(status int) ErrorKind {
	switch {
	case status == 401 || status == 403:
		return KindUnauthorized
	case status == 402:
		return KindQuotaExhausted
	case status == 429:
		return KindRateLimited
	case status == 408 || status >= 500:
		return KindTransient
	default:
		return KindPermanent
	}
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date. Zero if absent or
// unreadable.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
