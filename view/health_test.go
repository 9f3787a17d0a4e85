package view

import (
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/health"
)

// TestAggregateTakesGuardrailFlagsAsStates adds up the replicas' counts but not their guardrail
// flags: two replicas with the kill switch on mean it is on (1), not 2.
func TestAggregateTakesGuardrailFlagsAsStates(t *testing.T) {
	now := time.Now()
	snaps := []health.Snapshot{
		{Component: health.ComponentSink, Name: "edl", Owner: "a-1", At: now, Status: "ok",
			Calls: map[string]int64{"done": 3, act.FlagKillSwitchOn: 1, act.FlagRateCapTripped: 1}},
		{Component: health.ComponentSink, Name: "edl", Owner: "b-2", At: now, Status: "ok",
			Calls: map[string]int64{"done": 4, act.FlagKillSwitchOn: 1, act.FlagRateCapTripped: 0}},
		{Component: health.ComponentSink, Name: "edl", Owner: "c-3", At: now, Status: "ok",
			Calls: map[string]int64{"done": 5}},
	}
	got := Aggregate(snaps)
	if len(got) != 1 {
		t.Fatalf("%d integrations, want 1", len(got))
	}
	calls := got[0].Calls
	if calls["done"] != 12 || calls[act.FlagKillSwitchOn] != 1 || calls[act.FlagRateCapTripped] != 1 || len(calls) != 3 {
		t.Errorf("calls %v, want done 12, %s 1, %s 1", calls, act.FlagKillSwitchOn, act.FlagRateCapTripped)
	}
}
