package score

import (
	"encoding/json"
	"flag"
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
