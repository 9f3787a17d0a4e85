package view

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// demoAddresses picks the demo's addresses the way cmd/threatpipe/demo_traffic.go's trafficMix
// does (package main, so not importable): hot repeaters, Tor exits and scanners, a long tail.
func demoAddresses() (hot, hostile, tail []string) {
	for i := 0; len(hot) < 60 || len(hostile) < 40 || len(tail) < 3000; i++ {
		ip := fmt.Sprintf("%d.%d.%d.%d", []int{45, 91, 185, 193}[i%4], (i/4)%250+1, (i*7)%250+1, (i*13)%250+1)
		p, ok := sim.CriminalIPProfile(ip)
		tags := strings.Join(p.Tags, ",")
		switch {
		case !ok:
		case len(hostile) < 40 && (strings.Contains(tags, "tor") || strings.Contains(tags, "scanner")):
			hostile = append(hostile, ip)
		case len(hot) < 60:
			hot = append(hot, ip)
		case len(tail) < 3000:
			tail = append(tail, ip)
		}
	}
	return hot, hostile, tail
}

var demoProviders = []string{"abuseipdb", "criminalip", "greynoise", "internetdb", "otx", "virustotal"}

// demoVerdict is a scored verdict with the simulator's spread: each address's simulated reality
// (sim.TruthOf) decides its score band, and whether each provider rates it malicious. Hostile
// addresses mostly hit the score cap, which is what makes the demo's top a wall of equal scores.
func demoVerdict(ip string) (score, confidence int, validatedBy []string) {
	t, _ := sim.TruthOf(ip)
	agree := 0.05
	switch t.Class {
	case sim.ClassHostile:
		score, confidence, agree = 100, t.Between("conf", 55, 100), 0.7
		if !t.Chance("capped", 0.6) {
			score = t.Between("score", 80, 99)
		}
	case sim.ClassSuspect:
		score, confidence, agree = t.Between("score", 40, 79), t.Between("conf", 30, 80), 0.35
	case sim.ClassService:
		score, confidence = t.Between("score", 0, 10), t.Between("conf", 10, 40)
	default:
		score, confidence = t.Between("score", 0, 25), t.Between("conf", 10, 60)
	}
	for _, p := range demoProviders {
		if t.Chance("agree:"+p, agree) {
			validatedBy = append(validatedBy, p)
		}
	}
	return score, confidence, validatedBy
}

// demoEvents draws n public-address events with trafficMix's shares, 200 a second in ticks of
// 100 ms; like the demo's generator, every event of a tick carries the tick's time.
func demoEvents(n int, now time.Time) []*event.Scored {
	hot, hostile, tail := demoAddresses()
	rng := rand.New(rand.NewPCG(14, 3))
	var out []*event.Scored
	for i := 0; len(out) < n; i++ {
		at := now.Add(-time.Duration(n/20-i/20) * 100 * time.Millisecond)
		var ip string
		switch r := rng.Float64(); {
		case r < 0.11: // malformed or private: never an indicator
			continue
		case r < 0.17:
			ip = hot[rng.IntN(len(hot))]
		case r < 0.27:
			ip = hostile[rng.IntN(len(hostile))]
		case r < 0.40:
			ip = tail[rng.IntN(len(tail))]
		default:
			f := rng.Float64()
			ip = hot[int(f*f*float64(len(hot)))]
		}
		score, conf, by := demoVerdict(ip)
		out = append(out, scored(ip, score, at, func(e *event.Scored) { e.Confidence, e.ValidatedBy = conf, by }))
	}
	return out
}

func TestDemoTrafficTopIsSeparated(t *testing.T) {
	s, c := testStore(t, StoreOptions{})
	ctx := context.Background()
	now := c.Now()
	mustApply(t, s, demoEvents(200, now)...)
	page, err := s.List(ctx, Filter{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	priorities, legacy, scores := map[int64]bool{}, map[int64]bool{}, map[int]bool{}
	for _, r := range page.Rows {
		priorities[r.Priority] = true
		legacy[int64(r.Score)*1e10+r.LastSeen.Unix()] = true // the ranking before the priority
		scores[r.Score] = true
	}
	t.Logf("top %d of %d indicators: %d distinct priorities (%d distinct scores, %d distinct legacy ranks)",
		len(page.Rows), page.Total, len(priorities), len(scores), len(legacy))
	if len(page.Rows) != 50 {
		t.Fatalf("%d rows, want 50", len(page.Rows))
	}
	if len(priorities) < 45 {
		t.Errorf("%d distinct priorities in the top 50, want at least 45", len(priorities))
	}
}
