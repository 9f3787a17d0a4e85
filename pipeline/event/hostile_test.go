package event_test

import (
	"context"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/event/hostile"
)

// TestHostileCorpus runs every item of the hostile corpus through the decoder with the default
// limits and checks its outcome (the indicators scored, the dead-letter class), then encodes
// its scored events and checks that Go's encoding/json and Python's json both parse every one.
// The end-to-end version, through a real enricher on a real broker, is TestE2EHostileCorpus in
// cmd/threatpipe.
func TestHostileCorpus(t *testing.T) {
	items, err := hostile.Corpus()
	if err != nil {
		t.Fatal(err)
	}
	dec := event.NewDecoder(1<<20, hostile.DefaultMaxIndicators)
	now := time.Date(2026, 3, 14, 9, 27, 1, 0, time.UTC)
	var recs [][]byte
	var names []string
	for i, it := range items {
		origin := event.Origin{Topic: "indicators", Partition: 0, Offset: int64(i)}
		in, err := dec.DecodeRecord(it.Value, now, origin)
		var got []string
		var class string
		switch {
		case err != nil:
			class = string(event.ClassOf(err))
		case in.Partial != nil:
			class = string(in.Partial.Class)
		}
		if in != nil {
			for _, s := range in.Sightings {
				got = append(got, s.Indicator.Value)
				ev := event.NewScored(in, s, origin, now)
				rec := ev.AppendJSON(nil)
				if err := hostile.CheckGo(rec); err != nil {
					t.Errorf("%s: scored event for %s: %v", it.Name, s.Indicator.Value, err)
				}
				if len(ev.Context) > event.DefaultMaxContextBytes {
					t.Errorf("%s: carries %d bytes of context", it.Name, len(ev.Context))
				}
				recs, names = append(recs, rec), append(names, it.Name)
			}
			if (in.Truncated != nil) != it.Want.ContextTruncated {
				t.Errorf("%s: context truncated %+v, want it %v", it.Name, in.Truncated, it.Want.ContextTruncated)
			}
		}
		if !slices.Equal(got, it.Want.Scored) || class != it.Want.DeadLetter {
			t.Errorf("%s: scored %d %.80q, dead letter %q (%v); want %d %.80q, %q",
				it.Name, len(got), got, class, err, len(it.Want.Scored), it.Want.Scored, it.Want.DeadLetter)
		}
		if it.Ordinary && (err != nil || len(got) == 0) {
			t.Errorf("%s: an ordinary event was not scored: %v", it.Name, err)
		}
	}
	if _, err := exec.LookPath("python3"); err != nil && testing.Short() {
		t.Skipf("python3: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bad, err := hostile.CheckPython(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, msg := range bad {
		t.Errorf("%s: python3 json refuses the scored event: %s", names[i], msg)
	}
	t.Logf("%d inputs, %d scored events, all parsed by encoding/json and python3 json", len(items), len(recs))
}
