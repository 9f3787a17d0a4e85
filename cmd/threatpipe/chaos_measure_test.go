package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/kafkax/readback"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// chaosInputs is what of a case's load reached the input topic.
type chaosInputs struct {
	copies     map[string]int       // event id -> messages carrying it (a batch re-sent after an outage repeats some)
	producedAt map[string]time.Time // event id -> when the load produced it
	bound      map[string]bool      // event ids built to be dead-lettered
	addresses  map[string]bool      // valid addresses the events name
}

func readInputs(t *testing.T, msgs []kafka.Message) chaosInputs {
	t.Helper()
	in := chaosInputs{copies: map[string]int{}, producedAt: map[string]time.Time{}, bound: map[string]bool{}, addresses: map[string]bool{}}
	for _, m := range msgs {
		var ev struct {
			EventID   string `json:"event_id"`
			Indicator struct {
				Value string `json:"value"`
			} `json:"indicator"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("input %s: %v", m.Value, err)
		}
		in.copies[ev.EventID]++
		if at, ok := in.producedAt[ev.EventID]; !ok || m.Time.Before(at) {
			in.producedAt[ev.EventID] = m.Time
		}
		if deadLetterBound(m.Value) {
			in.bound[ev.EventID] = true
		} else {
			in.addresses[ev.Indicator.Value] = true
		}
	}
	return in
}

// chaosOutputs is what the enrichers published for a case: each event's latest revision, how
// often each revision was published, and the dead letters.
type chaosOutputs struct {
	latest     map[string]event.Scored
	published  map[string]map[int]int // event id -> revision -> publications
	deadLetter map[string]bool
	// firstAfter is the earliest processed_at at or after the instant given to readOutputs.
	firstAfter time.Time
}

func readOutputs(t *testing.T, scored, dlq []kafka.Message, after time.Time) chaosOutputs {
	t.Helper()
	o := chaosOutputs{latest: map[string]event.Scored{}, published: map[string]map[int]int{}, deadLetter: map[string]bool{}}
	for _, m := range scored {
		var ev event.Scored
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("output is not a scored event: %v", err)
		}
		if o.published[ev.EventID] == nil {
			o.published[ev.EventID] = map[int]int{}
		}
		o.published[ev.EventID][ev.Revision]++
		if cur, ok := o.latest[ev.EventID]; !ok || ev.Revision > cur.Revision {
			o.latest[ev.EventID] = ev
		}
		if !ev.ProcessedAt.Before(after) && (o.firstAfter.IsZero() || ev.ProcessedAt.Before(o.firstAfter)) {
			o.firstAfter = ev.ProcessedAt
		}
	}
	for _, m := range dlq {
		var ev struct {
			EventID string `json:"event_id"`
		}
		if json.Unmarshal(m.Value, &ev) == nil {
			o.deadLetter[ev.EventID] = true
		}
	}
	return o
}

// final reports whether ev carries Criminal IP's verdict (an answer or a not-found), rather than
// a pending or failed lookup.
func final(ev event.Scored) bool {
	o := ev.Providers["criminalip"]
	return o != nil && (o.Status == event.StatusOK || o.Status == event.StatusNotFound)
}

// settled reports whether every input event is dead-lettered or has its final verdict.
func (o chaosOutputs) settled(in chaosInputs) bool {
	for id := range in.copies {
		if ev, ok := o.latest[id]; !o.deadLetter[id] && (!ok || !final(ev)) {
			return false
		}
	}
	return true
}

// chaosRow is one case's row of the reliability table.
type chaosRow struct {
	name, fault string
	// in: distinct events that reached the input topic; scored: those whose latest revision
	// carries the final verdict; lost: neither published nor dead-lettered; unfinished:
	// published, but never with a final verdict; duplicates: publications of an (event,
	// revision) beyond the input messages carrying the event.
	in, scored, deadLettered, lost, unfinished, duplicates int
	// paid: answered (billable) calls to the provider; addresses: distinct valid addresses the
	// events named; maxCalls: the most calls, answered or not, one address cost.
	paid, maxCalls int64
	addresses      int
	// actedOn: indicators with an action done; maxActions: the most done records of one
	// (playbook, step, indicator); maxTickets: the most tickets the Jira stand-in opened for one.
	actedOn, maxActions, maxTickets int
	// resume: from the fault's end to the first event processed after it; allFinal: to the last
	// final verdict of the events produced before it. actsCaughtUp: from the end of the load to
	// the act workers having committed every scored event (their backlog). -1: never.
	resume, allFinal, actsCaughtUp time.Duration
	ready                          *readiness // nil when the case does not expect not-ready
	exits                          []string
	failures                       []string
	notes                          []string
}

const chaosHeader = "| case | fault | in | scored | DLQ | lost | unfinished | dup | paid calls/addr (max) | acted on | actions/indicator | resume | all final | act backlog | /readyz | exits | result |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"

// markdown is the row.
func (r chaosRow) markdown() string {
	dur := func(d time.Duration) string {
		if d < 0 {
			return "never"
		}
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	ready := "n/a"
	if r.ready != nil {
		ready = r.ready.String()
	}
	result := "pass"
	if len(r.failures) > 0 {
		result = "**FAIL**: " + strings.Join(r.failures, "; ")
	}
	return fmt.Sprintf("| %s | %s | %d | %d | %d | %d | %d | %d | %.2f (%d) | %d | %d | %s | %s | %s | %s | %d | %s |\n",
		r.name, r.fault, r.in, r.scored, r.deadLettered, r.lost, r.unfinished, r.duplicates,
		float64(r.paid)/float64(max(r.addresses, 1)), r.maxCalls, r.actedOn, max(r.maxActions, r.maxTickets),
		dur(r.resume), dur(r.allFinal), dur(r.actsCaughtUp), ready, len(r.exits), result)
}

// count fills the event columns from what went in and came out; back is when the fault ended.
func (r *chaosRow) count(in chaosInputs, out chaosOutputs, back time.Time) {
	r.in, r.addresses = len(in.copies), len(in.addresses)
	r.resume, r.allFinal = -1, 0
	if !out.firstAfter.IsZero() {
		r.resume = out.firstAfter.Sub(back)
	}
	var lost []string
	for id, copies := range in.copies {
		ev, published := out.latest[id]
		switch {
		case out.deadLetter[id]:
			r.deadLettered++
		case !published:
			r.lost++
			lost = append(lost, id)
		case final(ev):
			r.scored++
		default:
			r.unfinished++
		}
		for _, n := range out.published[id] {
			r.duplicates += max(n-copies, 0)
		}
		if published && !in.producedAt[id].After(back) && r.allFinal >= 0 {
			if final(ev) {
				r.allFinal = max(r.allFinal, ev.ProcessedAt.Sub(back))
			} else {
				r.allFinal = -1
			}
		}
	}
	if len(lost) > 0 {
		r.failures = append(r.failures, fmt.Sprintf("%d events lost (%s)", r.lost, sample(lost)))
	}
	if r.unfinished > 0 {
		r.failures = append(r.failures, fmt.Sprintf("%d events without a final verdict", r.unfinished))
	}
}

// countActions fills the action columns from the audit records and the Jira stand-in's tickets
// of the case's addresses.
func (r *chaosRow) countActions(records []act.Record, tickets map[string]int, addresses map[string]bool) {
	done := map[string]int{}
	acted := map[string]bool{}
	outcomes := map[string]int{}
	for _, rec := range records {
		if !addresses[rec.Target] {
			continue
		}
		outcomes[string(rec.Outcome)]++
		if rec.Outcome == act.OutcomeDone {
			done[rec.Playbook+"/"+rec.Step+" "+rec.Target]++
			acted[rec.Target] = true
		}
	}
	r.actedOn = len(acted)
	var repeated, ticketed []string
	for key, n := range done {
		r.maxActions = max(r.maxActions, n)
		if n > 1 {
			repeated = append(repeated, fmt.Sprintf("%s x%d", key, n))
		}
	}
	for ip := range addresses {
		r.maxTickets = max(r.maxTickets, tickets[ip])
		if tickets[ip] > 1 {
			ticketed = append(ticketed, fmt.Sprintf("%s x%d", ip, tickets[ip]))
		}
	}
	if len(repeated) > 0 {
		r.failures = append(r.failures, fmt.Sprintf("%d actions done more than once in one window (%s)", len(repeated), sample(repeated)))
	}
	if len(ticketed) > 0 {
		r.failures = append(r.failures, fmt.Sprintf("more than one Jira ticket for %d indicators (%s)", len(ticketed), sample(ticketed)))
	}
	r.notes = append(r.notes, "audit outcomes: "+histogram(outcomes))
}

// readRange reads topic from the offsets in from (all partitions from the start when nil) to
// its end now.
func readRange(t *testing.T, brokers []string, topic string, from map[int]int64) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msgs, err := readback.ReadRange(ctx, brokers, topic, from, pipelinetest.EndOffsets(t, brokers, topic))
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// sample names a few of list, sorted.
func sample(list []string) string {
	sort.Strings(list)
	if len(list) > 3 {
		return "e.g. " + strings.Join(list[:3], ", ")
	}
	return strings.Join(list, ", ")
}

// histogram lists counts, largest first.
func histogram(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s x%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
