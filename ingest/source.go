// Package ingest polls threat-intel platforms (ThreatQ, MISP, TAXII 2.1 collections) for new
// and updated IP indicators and publishes them to the input topic as native events, so that
// every new address in the team's threat library is enriched. Each platform is one package
// under ingest/ implementing Source; the runner keeps each source's cursor in Redis and moves it
// only after the broker acknowledged the events read before it.
package ingest

import (
	"context"
	"time"
)

// Indicator is one IP address a platform holds, as the runner publishes it.
type Indicator struct {
	// Value is the address as the platform spells it; the runner canonicalises it and skips
	// what is not an IP address (counted, never silently).
	Value string
	// Ref identifies the platform's record (ThreatQ indicator id, MISP attribute uuid, STIX
	// object id); it becomes part of the event id, so a redelivered page is the same event.
	Ref string
	// Modified is when the platform last changed the record: the event's observed_at.
	Modified time.Time
	// Tags and Context are carried in the event's context (tip.tags, tip.*) for playbooks and
	// the view.
	Tags    []string
	Context map[string]string
}

// Page is one poll's result.
type Page struct {
	Indicators []Indicator
	// Next is the cursor to store once every indicator of this page is acknowledged: the next
	// poll resumes from it. It must be opaque to the runner and stable: polling again from the
	// same cursor returns the same indicators or later ones, never skips one.
	Next string
	// More says the platform has more after Next now: the runner polls again at once rather
	// than waiting for the interval.
	More bool
}

// Source is one platform's poller.
//
// Poll returns the indicators changed since cursor ("" on the first poll: from Since), at most
// limit of them, oldest first. It must honour ctx, bound what it reads, and return an error
// that says what failed (status, platform message) without the credentials. A transient error
// is retried by the runner with backoff from the same cursor, so Poll must not advance any
// state of its own.
type Source interface {
	Name() string
	Poll(ctx context.Context, cursor string, limit int) (Page, error)
}
