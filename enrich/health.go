package enrich

import (
	"context"
	"slices"

	"errors"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sony/gobreaker/v2"

	"github.com/threatpipe/threatpipe/pipeline/health"
)

// callOutcome is how one request to a provider ended, as health counts it.
type callOutcome uint8

// Call outcomes: the keys of a provider snapshot's Calls.
const (
	callOK callOutcome = iota
	callTransient
	callTimeout // the attempt's deadline (ATTEMPT_TIMEOUT) or a transport timeout
	callRateLimited
	callQuotaExhausted
	callUnauthorized
	callPermanent
	callBreakerOpen // not sent: the circuit breaker is open
	callCanceled    // not finished: the replica is shutting down
	numCallOutcomes
)

var callOutcomeNames = [numCallOutcomes]string{
	callOK: "ok", callTransient: string(KindTransient), callTimeout: "timeout", callRateLimited: string(KindRateLimited),
	callQuotaExhausted: string(KindQuotaExhausted), callUnauthorized: string(KindUnauthorized), callPermanent: string(KindPermanent),
	callBreakerOpen: "breaker_open", callCanceled: "canceled",
}

// failed reports whether the outcome is a failed request: counted as an error, and as a
// failure among the recent calls. A request the breaker held back or a shutdown cut short says
// nothing new about the provider.
func (o callOutcome) failed() bool { return o != callOK && o != callBreakerOpen && o != callCanceled }

// classifyCall names the outcome of one attempt; timedOut says the attempt ran out of time.
func classifyCall(ctx context.Context, err error, timedOut bool) callOutcome {
	switch {
	case err == nil:
		return callOK
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		return callBreakerOpen
	case timedOut:
		return callTimeout
	case errors.Is(ctx.Err(), context.Canceled):
		return callCanceled
	}
	switch KindOf(err) {
	case KindTransient:
		return callTransient
	case KindRateLimited:
		return callRateLimited
	case KindQuotaExhausted:
		return callQuotaExhausted
	case KindUnauthorized:
		return callUnauthorized
	default:
		return callPermanent
	}
}

// attemptTimedOut reports whether an attempt failed for lack of time: its own deadline (the
// policy's ATTEMPT_TIMEOUT, or the retry budget's when that came first) or a transport timeout
// (dial, response headers).
func attemptTimedOut(actx context.Context, err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// providerHealth counts one Lookuper's requests for its health snapshot. Everything on the
// request path is atomic; the last error takes a mutex, on errors only.
type providerHealth struct {
	calls    [numCallOutcomes]atomic.Int64
	errors   atomic.Int64
	timeouts atomic.Int64
	recent   health.Recent
	last     health.LastError
	// quotaSeen is the latest usage this replica saw, packed with its quota period's index.
	quotaSeen atomic.Uint64
	period    QuotaPeriod
}

// observe counts one request that ended at at.
func (h *providerHealth) observe(at time.Time, o callOutcome, err error) {
	h.calls[o].Add(1)
	if o == callBreakerOpen || o == callCanceled {
		return
	}
	failed := o.failed()
	h.recent.Add(at, failed)
	if !failed {
		return
	}
	h.errors.Add(1)
	if o == callTimeout {
		h.timeouts.Add(1)
	}
	if err != nil {
		h.last.Set(at, err.Error())
	}
}

// quotaUsedBits bounds the usage that quotaSeen packs below the period.
const quotaUsedBits = 46

// seeQuota remembers the period's usage as last seen.
func (h *providerHealth) seeQuota(now time.Time, used int64) {
	used = min(max(used, 0), 1<<quotaUsedBits-1)
	h.quotaSeen.Store(h.period.Index(now)<<quotaUsedBits | uint64(used))
}

// quotaUsed is the usage last seen, if it was seen in now's period: the ledger starts every
// period at zero.
func (h *providerHealth) quotaUsed(now time.Time) int64 {
	v := h.quotaSeen.Load()
	if v>>quotaUsedBits != h.period.Index(now) {
		return 0
	}
	return int64(v & (1<<quotaUsedBits - 1))
}

// providerState is what a provider's status is derived from.
type providerState struct {
	disabled     bool // the key was rejected
	exhausted    bool // cache-only until the quota resets
	breaker      gobreaker.State
	recent       health.RecentCounts
	quotaWarning bool // usage past QUOTA_WARN_RATIO
	fileError    bool // a local file failed to reload
}

// providerStatus derives a provider's status; the first rule that holds wins:
//
//   - disabled: the provider rejected its key (until a restart with a good key);
//   - quota_exhausted: the quota is spent, lookups are cache-only until the reset;
//   - failing: the circuit breaker is open, or the latest health.FailingRun requests within
//     health.RecentWindow all failed;
//   - degraded: a request failed within the window, the breaker is half-open (probing after an
//     outage), the quota is past its warning ratio, or a local file's new version failed to
//     load (the previous one is still in use);
//   - ok otherwise, including a provider that has not been asked anything yet.
func providerStatus(s providerState) string {
	switch {
	case s.disabled:
		return health.StatusDisabled
	case s.exhausted:
		return health.StatusQuotaExhausted
	case s.breaker == gobreaker.StateOpen:
		return health.StatusFailing
	}
	status := s.recent.Status()
	if status == health.StatusOK && (s.breaker == gobreaker.StateHalfOpen || s.quotaWarning || s.fileError) {
		status = health.StatusDegraded
	}
	return status
}

// Snapshot is the provider's health as this replica sees it at now; the reporter fills in Owner
// and Role. It does no I/O, so it is cheap and safe to call at any time: the quota used is the
// latest this replica saw of the shared ledger (its own reservations, the provider's reports,
// and ReportHealth's reads of the ledger). The quota resets when this replica's cache-only
// spell ends while the quota is exhausted; otherwise at the provider's reported reset or, when
// it reports none, at the start of the next quota period. Offline sources report calls and
// errors only.
func (l *Lookuper) Snapshot(now time.Time) health.Snapshot {
	c := l.chain
	h := &c.health
	s := health.Snapshot{
		Component: health.ComponentProvider, Name: l.name, At: now.UTC(),
		Breaker: gobreaker.StateClosed.String(), QuotaWarnRatio: l.o.Policy.QuotaWarnRatio,
		Calls:  make(map[string]int64, numCallOutcomes),
		Errors: h.errors.Load(), Timeouts: h.timeouts.Load(),
	}
	for o := range numCallOutcomes {
		if n := h.calls[o].Load(); n > 0 {
			s.Calls[callOutcomeNames[o]] = n
		}
	}
	state := providerState{breaker: gobreaker.StateClosed, recent: h.recent.Counts(now, health.RecentWindow)}
	if c.Breaker != nil {
		state.breaker = c.Breaker.State()
		s.Breaker = state.breaker.String()
	}
	if c.Quota != nil {
		s.QuotaUsed, s.QuotaLimit = h.quotaUsed(now), c.Quota.Ledger().Limit()
		state.exhausted = c.Quota.ExhaustedAt(now)
		s.QuotaReset = c.Quota.ResetAt(now)
	}
	if c.Keys != nil {
		state.disabled, _ = c.Keys.Disabled()
	}
	s.LastError, s.LastErrorAt = h.last.Get()
	if !s.LastErrorAt.IsZero() {
		s.LastErrorAt = s.LastErrorAt.UTC()
	}
	if fr, ok := l.o.Provider.(FileReporter); ok {
		s.Files = fr.Files()
		state.fileError = slices.ContainsFunc(s.Files, func(f health.File) bool { return f.LastError != "" })
	}
	state.quotaWarning = s.QuotaWarning()
	s.Status = providerStatus(state)
	return s
}

// FileReporter is implemented by offline sources that read local files (lists, GeoIP
// databases): the files, as last loaded, go into the provider's health snapshot, and a file
// whose changed version could not be loaded makes the provider degraded.
type FileReporter interface {
	Files() []health.File
}

// QuotaReporter is implemented by providers that can say how many credits are left (Criminal
// IP's POST /v1/user/me); the ledger reconciles with it every reconcileEvery.
type QuotaReporter interface {
	QuotaLeft(ctx context.Context) (int64, error)
}

// reconcileEvery is how often a provider's own count of credits corrects the ledger.
const reconcileEvery = 5 * time.Minute

// reconcileQuota takes the provider's count of credits left as the truth, when it reports one
// and a quota is configured (what the credits are counted against).
func (l *Lookuper) reconcileQuota(ctx context.Context) {
	qr, ok := l.o.Provider.(QuotaReporter)
	if !ok || l.chain.Quota == nil {
		return
	}
	ledger := l.chain.Quota.Ledger()
	now := l.o.Now()
	if limit := ledger.Limit(); limit <= 0 || now.Sub(time.Unix(0, l.reconciled.Load())) < reconcileEvery {
		return
	}
	l.reconciled.Store(now.UnixNano())
	left, err := qr.QuotaLeft(ctx)
	if err != nil {
		l.log.Debug("provider's quota report unavailable", zap.Error(err))
		return
	}
	if err := ledger.Correct(ctx, &QuotaReport{Limit: ledger.Limit(), Remaining: left}); err == nil {
		l.chain.recordQuota(l.o.Metrics, l.name, max(ledger.Limit()-left, 0))
	}
}

// refreshQuota reads the period's usage from the shared ledger, so that the snapshot counts the
// other replicas' lookups too. A failed read keeps the last usage seen.
func (l *Lookuper) refreshQuota(ctx context.Context) {
	if l.chain.Quota == nil {
		return
	}
	l.reconcileQuota(ctx)
	if used, err := l.chain.Quota.Ledger().Used(ctx); err == nil {
		l.chain.health.seeQuota(l.o.Now(), used)
	}
}

// ReportHealth writes a health snapshot of every lookuper's provider to store every interval
// (health.ReportInterval when zero), each valid for three intervals, as owner (this replica)
// in role, until ctx ends; it reads each provider's quota usage from the shared ledger first.
// Failed writes are logged and retried the next interval; it returns nil when ctx ends. The
// enricher runs it with its other enrichment loops.
func ReportHealth(ctx context.Context, store *health.Store, lookupers []*Lookuper, owner, role string, every time.Duration) error {
	if len(lookupers) == 0 {
		return nil
	}
	collect := func(ctx context.Context, now time.Time) []health.Snapshot {
		out := make([]health.Snapshot, 0, len(lookupers))
		for _, l := range lookupers {
			l.refreshQuota(ctx)
			out = append(out, l.Snapshot(now))
		}
		return out
	}
	return health.Report(ctx, store, owner, role, every, collect, lookupers[0].o.Log.Named("health"))
}
