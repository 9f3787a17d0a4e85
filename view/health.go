package view

import (
	"sort"
	"time"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/health"
)

// Integration is one provider or sink across every replica that reports it.
type Integration struct {
	Component string `json:"component"`
	Name      string `json:"name"`
	// Status and Breaker are the worst any replica reports.
	Status  string `json:"status"`
	Breaker string `json:"breaker,omitempty"`
	// Quota is the freshest report (the quota ledger is shared, so replicas agree but for
	// timing). QuotaWarning is set past the provider's warning ratio (80% unless configured).
	QuotaUsed    int64     `json:"quota_used"`
	QuotaLimit   int64     `json:"quota_limit"`
	QuotaReset   time.Time `json:"quota_reset,omitzero"`
	QuotaWarning bool      `json:"quota_warning"`
	// Errors, Timeouts and Calls add up every replica's counts since it started, but for the
	// guardrail flags in Calls (act.FlagKillSwitchOn, act.FlagRateCapTripped): they are states,
	// 1 when on, so they take the highest any replica reports.
	Errors   int64            `json:"errors"`
	Timeouts int64            `json:"timeouts"`
	Calls    map[string]int64 `json:"calls"`
	// LastError is the latest error any replica saw.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Files are an offline source's local files as the freshest report has them (every
	// replica reads its own copy; they differ only while a new version is rolled out).
	Files    []health.File     `json:"files,omitempty"`
	Replicas []health.Snapshot `json:"replicas"`
}

// statusRank orders health statuses from best; unknown ones count as degraded.
func statusRank(s string) int {
	switch s {
	case health.StatusOK:
		return 0
	case health.StatusDegraded, "":
		return 1
	case health.StatusFailing:
		return 3
	case health.StatusQuotaExhausted:
		return 4
	case health.StatusDisabled:
		return 5
	default:
		return 2
	}
}

func breakerRank(s string) int {
	switch s {
	case "":
		return 0
	case "closed":
		return 1
	case "half-open":
		return 2
	default: // open, or anything unknown
		return 3
	}
}

// guardrailFlag reports whether a key of Snapshot.Calls is a guardrail state rather than a count.
func guardrailFlag(key string) bool {
	return key == act.FlagKillSwitchOn || key == act.FlagRateCapTripped
}

// Aggregate groups snapshots (as health.Store.All returns them) by component and name:
// providers first, then sinks, each by name.
func Aggregate(snaps []health.Snapshot) []Integration {
	byKey := map[[2]string]*Integration{}
	quotaAt, filesAt := map[[2]string]time.Time{}, map[[2]string]time.Time{}
	var order [][2]string
	for _, sn := range snaps {
		k := [2]string{sn.Component, sn.Name}
		in, ok := byKey[k]
		if !ok {
			in = &Integration{Component: sn.Component, Name: sn.Name, Status: sn.Status, Calls: map[string]int64{}}
			byKey[k] = in
			order = append(order, k)
		}
		if statusRank(sn.Status) > statusRank(in.Status) {
			in.Status = sn.Status
		}
		if breakerRank(sn.Breaker) > breakerRank(in.Breaker) {
			in.Breaker = sn.Breaker
		}
		if sn.QuotaLimit > 0 && (in.QuotaLimit <= 0 || sn.At.After(quotaAt[k])) {
			quotaAt[k] = sn.At
			in.QuotaUsed, in.QuotaLimit, in.QuotaReset, in.QuotaWarning = sn.QuotaUsed, sn.QuotaLimit, sn.QuotaReset, sn.QuotaWarning()
		}
		if len(sn.Files) > 0 && (in.Files == nil || sn.At.After(filesAt[k])) {
			filesAt[k], in.Files = sn.At, sn.Files
		}
		in.Errors += sn.Errors
		in.Timeouts += sn.Timeouts
		for outcome, n := range sn.Calls {
			if guardrailFlag(outcome) {
				in.Calls[outcome] = max(in.Calls[outcome], n)
			} else {
				in.Calls[outcome] += n
			}
		}
		if sn.LastError != "" && !sn.LastErrorAt.Before(in.LastErrorAt) {
			in.LastError, in.LastErrorAt = sn.LastError, sn.LastErrorAt
		}
		in.Replicas = append(in.Replicas, sn)
	}
	out := make([]Integration, 0, len(order))
	for _, k := range order {
		out = append(out, *byKey[k])
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Component != b.Component {
			return a.Component == health.ComponentProvider // providers first
		}
		return a.Name < b.Name
	})
	return out
}
