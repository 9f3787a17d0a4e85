package score

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// cachedHit is one cached Criminal IP answer with tags, AS, geo and evidence three days old.
func cachedHit() map[string]*event.ProviderOutcome {
	seen := goldenNow.Add(-3 * 24 * time.Hour)
	return map[string]*event.ProviderOutcome{"criminalip": {Status: event.StatusOK, Cache: &event.CacheInfo{Hit: true, AgeSeconds: 17},
		Result: &event.Intel{Verdict: event.VerdictMalicious, Score: 80, Detail: "Criminal IP: inbound Dangerous, outbound Low; scanner, tor",
			Tags: []string{"scanner", "tor"}, ASNumber: 64500, ASOrganization: "EXAMPLE-NET", CountryISO: "NL", City: "Amsterdam",
			ISP: "Example Hosting BV", LastSeen: &seen}}}
}

// TestFuseAllocations: fusing a cached answer costs one allocation, the store of the verdict's
// slices, context and built text (a cache age, a decay note, tag points); its working lists
// stay on the stack. Escape analysis decides that, and a small change (a store through a
// pointer to the fusion) silently undoes it.
func TestFuseAllocations(t *testing.T) {
	m, hit := Default(), cachedHit()
	f := m.Fuse(hit, []string{"criminalip"}, goldenNow)
	if want := "Criminal IP: inbound Dangerous, outbound Low; scanner, tor (cached 17s ago) (evidence 3d old: ×0.93 decay)"; f.Reasons[0].Detail != want {
		t.Fatalf("reason %q, want %q", f.Reasons[0].Detail, want)
	}
	if n := testing.AllocsPerRun(100, func() { _ = m.Fuse(hit, []string{"criminalip"}, goldenNow) }); n > 1 {
		t.Errorf("%.0f allocations per fusion of a cached answer, want 1", n)
	}
}

// BenchmarkFuse fuses on the hit path: one cached Criminal IP answer as make bench's hits
// scenario gives it (tags, AS, geo, dated evidence), and every golden case in turn (several
// sources, silences, lists, services).
func BenchmarkFuse(b *testing.B) {
	m, hit := Default(), cachedHit()
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = m.Fuse(hit, []string{"criminalip"}, goldenNow)
		}
	})

	paths, _ := filepath.Glob("testdata/golden/*.yaml")
	var cases []map[string]*event.ProviderOutcome
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		var in struct {
			Outcomes map[string]*event.ProviderOutcome `json:"outcomes"`
		}
		if err := yaml.UnmarshalStrict(raw, &in); err != nil {
			b.Fatal(err)
		}
		cases = append(cases, in.Outcomes)
	}
	b.Run("golden", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_ = m.Fuse(cases[i%len(cases)], defaultOrder, goldenNow)
			i++
		}
	})
}
