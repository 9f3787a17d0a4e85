package enrich

import (
	"context"
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

func TestUnscoredSaysItDidNotLookUp(t *testing.T) {
	ind, _ := event.ParseIP("8.8.8.8")
	ev := event.NewScored(&event.Input{EventID: "e"}, event.Sighting{Indicator: ind}, event.Origin{}, event.Scored{}.ProcessedAt)
	ev.Score = 55
	if err := (Unscored{}).Process(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if ev.Score != 0 || len(ev.Reasons) != 1 || ev.Reasons[0].Detail != "no enrichment provider configured" {
		t.Fatalf("score %d reasons %+v", ev.Score, ev.Reasons)
	}
}
