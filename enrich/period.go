package enrich

import (
	"fmt"
	"time"
)

// QuotaPeriod is how a provider counts its quota: per UTC day or per calendar month (UTC), as
// each vendor bills.
type QuotaPeriod string

// Quota periods.
const (
	PeriodDay   QuotaPeriod = "day"
	PeriodMonth QuotaPeriod = "month"
)

// ParseQuotaPeriod reads a period name.
func ParseQuotaPeriod(s string) (QuotaPeriod, error) {
	switch p := QuotaPeriod(s); p {
	case PeriodDay, PeriodMonth:
		return p, nil
	}
	return "", fmt.Errorf("%q is not a quota period (day or month)", s)
}

// ID names the period t falls in: 2026-12-06 for a day, 2026-12 for a month.
func (p QuotaPeriod) ID(t time.Time) string {
	if p == PeriodMonth {
		return t.UTC().Format("2006-01")
	}
	return t.UTC().Format(time.DateOnly)
}

// Index numbers the periods (days or months since 1970), for cheap comparisons.
func (p QuotaPeriod) Index(t time.Time) uint64 {
	t = t.UTC()
	if p == PeriodMonth {
		return uint64((t.Year()-1970)*12 + int(t.Month()) - 1)
	}
	return uint64(t.Unix() / 86400)
}

// Next is when the period after t's begins: the next UTC midnight, or the first of next month.
func (p QuotaPeriod) Next(t time.Time) time.Time {
	t = t.UTC()
	if p == PeriodMonth {
		return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	}
	return t.Truncate(24 * time.Hour).Add(24 * time.Hour)
}

// Label is how the period reads in messages: "daily" or "monthly".
func (p QuotaPeriod) Label() string {
	if p == PeriodMonth {
		return "monthly"
	}
	return "daily"
}
