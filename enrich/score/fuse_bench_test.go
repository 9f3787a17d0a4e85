package score

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// BenchmarkFuse fuses on the hit path: one cached Criminal IP answer as make bench's hits
// scenario gives it (tags, AS, geo, dated evidence), and every golden case in turn (several
// sources, silences, lists, services).
func BenchmarkFuse(b *testing.B) {
	m := Default()
	seen := goldenNow.Add(-3 * 24 * time.Hour)
	hit := map[string]*event.ProviderOutcome{"criminalip": {Status: event.StatusOK, Cache: &event.CacheInfo{Hit: true, AgeSeconds: 17},
		Result: &event.Intel{Verdict: event.VerdictMalicious, Score: 80, Detail: "Criminal IP: inbound Dangerous, outbound Low; scanner, tor",
			Tags: []string{"scanner", "tor"}, ASNumber: 64500, ASOrganization: "EXAMPLE-NET", CountryISO: "NL", City: "Amsterdam",
			ISP: "Example Hosting BV", LastSeen: &seen}}}
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
