package taxii

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/view"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sample(ip string, score int, hist ...int) *view.Indicator {
	first := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	ind := &view.Indicator{Row: view.Row{IP: ip, Score: score, Severity: event.SeverityOf(score), Confidence: 80,
		ValidatedBy: []string{"criminalip", "otx"}, Tags: []string{"scanner", "tor"}, Country: "DE", ASN: 64500, ASOrg: "Example",
		FirstSeen: first, LastSeen: first.Add(time.Duration(len(hist)) * time.Hour), Sightings: int64(len(hist))}}
	ind.Latest = scoredEvent(ip, score, ind.LastSeen, "e")
	for i, s := range hist { // newest first
		ind.History = append(ind.History, view.HistoryEntry{At: ind.LastSeen.Add(-time.Duration(i) * time.Hour), Score: s})
	}
	return ind
}

func TestConvertGolden(t *testing.T) {
	c := Convert{Retention: 168 * time.Hour, HistoryCap: 100}
	for name, ind := range map[string]*view.Indicator{
		"ipv4_critical": sample("203.0.113.7", 92, 92, 92, 40), // score changed 1h before the last sighting
		"ipv6_low":      sample("2001:db8::7", 25, 25),
	} {
		got, err := json.MarshalIndent(append([]Object{NewIdentity()}, c.Objects(ind)...), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", name+".golden.json")
		if *update {
			if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(want) != string(got)+"\n" {
			t.Errorf("%s differs from %s (go test -run TestConvertGolden -update):\n%s", name, path, got)
		}
	}
}

func TestConvertVersions(t *testing.T) {
	c := Convert{Retention: time.Hour, HistoryCap: 3}
	ind := sample("203.0.113.7", 92, 92, 92, 40)
	objs := c.Objects(ind)
	in := objs[0].(*Indicator)
	if in.Modified != Timestamp(ind.LastSeen.Add(-time.Hour)) || in.Created != Timestamp(ind.FirstSeen) {
		t.Fatalf("modified %s created %s: want the time the score became 92", in.Modified, in.Created)
	}
	if in.ID != IDsOf("203.0.113.7").Indicator || in.ID != c.Objects(sample("203.0.113.7", 50, 50))[0].StixID() {
		t.Fatal("ids are not stable per address")
	}
	same := c.Objects(sample("203.0.113.7", 92, 92, 92))[0].(*Indicator)
	if same.Modified != same.Created { // one score over an untrimmed history: never changed
		t.Fatalf("modified %s, created %s", same.Modified, same.Created)
	}
	if len(c.Objects(sample("10.0.0.1", 10, 10))) != 0 {
		t.Fatal("info published")
	}
	gated := sample("10.0.0.1", 90, 90)
	gated.Gate = "private"
	if len(c.Objects(gated)) != 0 {
		t.Fatal("gated address published")
	}
}
