package score

import (
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

var update = flag.Bool("update", false, "rewrite the golden outputs")

// defaultOrder is the default rules' cascade: offline, free, paid.
var defaultOrder = []string{"lists", "geoip", "internetdb", "greynoise", "criminalip", "abuseipdb", "otx", "virustotal"}

type golden struct {
	Score       int            `json:"score"`
	Severity    event.Severity `json:"severity"`
	Confidence  int            `json:"confidence"`
	ValidatedBy []string       `json:"validated_by"`
	Tags        []string       `json:"tags"`
	Reasons     []event.Reason `json:"reasons"`
	BlockListed bool           `json:"block_listed,omitempty"`
	Benign      string         `json:"benign_service,omitempty"`
	AS          *event.AS      `json:"as,omitempty"`
	Geo         *event.GeoInfo `json:"geo,omitempty"`
	ISP         string         `json:"isp,omitempty"`
}

// TestGolden fuses each testdata/golden case with the default model and compares the verdict
// with its .golden.json (rewrite them with -update, then read the diff).
func TestGolden(t *testing.T) {
	cases, _ := filepath.Glob("testdata/golden/*.yaml")
	if len(cases) < 10 {
		t.Fatalf("only %d golden cases", len(cases))
	}
	m := Default()
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var in struct {
				Outcomes map[string]*event.ProviderOutcome `json:"outcomes"`
			}
			if err := yaml.UnmarshalStrict(raw, &in); err != nil {
				t.Fatal(err)
			}
			f := m.Fuse(in.Outcomes, defaultOrder)
			checkInvariants(t, f)
			got, _ := json.MarshalIndent(golden{f.Score, f.Severity, f.Confidence, f.ValidatedBy, f.Tags, f.Reasons,
				f.BlockListed, f.BenignService, f.AS, f.Geo, f.ISP}, "", "  ")
			want := strings.TrimSuffix(path, ".yaml") + ".golden.json"
			if *update {
				if err := os.WriteFile(want, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			exp, err := os.ReadFile(want)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if strings.TrimSpace(string(exp)) != string(got) {
				t.Errorf("fused verdict differs from %s:\n got %s\nwant %s", want, got, exp)
			}
		})
	}
}

// checkInvariants holds for every fusion: the points add up to the score, the severity is the
// score's, every voter that validated has a reason, and values stay in range.
func checkInvariants(t *testing.T, f Fused) {
	t.Helper()
	sum := 0
	for _, r := range f.Reasons {
		sum += r.Points
	}
	if sum != f.Score {
		t.Errorf("points add up to %d, score is %d: %+v", sum, f.Score, f.Reasons)
	}
	if f.Severity != event.SeverityOf(f.Score) {
		t.Errorf("severity %s for score %d", f.Severity, f.Score)
	}
	if f.Score < 0 || f.Score > 100 || f.Confidence < 0 || f.Confidence > 100 {
		t.Errorf("score %d confidence %d out of range", f.Score, f.Confidence)
	}
	for _, v := range f.ValidatedBy {
		found := false
		for _, r := range f.Reasons {
			found = found || r.Source == v
		}
		if !found {
			t.Errorf("validator %s has no reason", v)
		}
	}
}

// TestFuseInvariantsOnRandomOutcomes fuses thousands of random mixes of answers, silences and
// list hits: the invariants hold for every one, and a known-benign service never scores above
// the cap unless a block list matched.
func TestFuseInvariantsOnRandomOutcomes(t *testing.T) {
	m := Default()
	rng := rand.New(rand.NewPCG(7, 7))
	verdicts := []event.Verdict{event.VerdictMalicious, event.VerdictSuspicious, event.VerdictBenign, event.VerdictUnrated, event.VerdictNotFound}
	statuses := []event.ProviderStatus{event.StatusOK, event.StatusOK, event.StatusOK, event.StatusNotFound, event.StatusFailed, event.StatusSkipped}
	tags := []string{"tor", "scanner", "proxy", "hosting", "darkweb", "vpn"}
	for range 5000 {
		outcomes := map[string]*event.ProviderOutcome{}
		for _, name := range defaultOrder {
			if rng.IntN(4) == 0 {
				continue
			}
			st := statuses[rng.IntN(len(statuses))]
			o := &event.ProviderOutcome{Status: st}
			if st == event.StatusOK || st == event.StatusNotFound {
				r := &event.Intel{Verdict: verdicts[rng.IntN(len(verdicts))], Score: rng.IntN(101), Detail: name}
				if rng.IntN(3) == 0 {
					r.Tags = []string{tags[rng.IntN(len(tags))]}
				}
				if rng.IntN(12) == 0 {
					r.Service = "svc"
				}
				if name == "lists" && rng.IntN(2) == 0 {
					kinds := []string{event.ListBlock, event.ListBenign, event.ListTag}
					r.Lists = []event.ListHit{{Name: "l", Kind: kinds[rng.IntN(3)], Prefix: "198.51.100.0/24"}}
				}
				o.Result = r
			}
			outcomes[name] = o
		}
		f := m.Fuse(outcomes, defaultOrder)
		checkInvariants(t, f)
		if f.BenignService != "" && !f.BlockListed && f.Score > m.BenignCap {
			t.Fatalf("a benign service scored %d over the cap %d: %+v", f.Score, m.BenignCap, f.Reasons)
		}
		if t.Failed() {
			t.Fatalf("outcomes %+v", outcomes)
		}
	}
}
