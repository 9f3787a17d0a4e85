package score

import (
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	yaml3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

var update = flag.Bool("update", false, "rewrite the golden outputs")

// goldenNow is when the golden cases are fused: their evidence dates are relative to it.
var goldenNow = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

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

// TestGolden fuses each testdata/golden case with the default model at goldenNow and compares
// the verdict with its .golden.json (rewrite them with -update, then read the diff).
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
			f := m.Fuse(in.Outcomes, defaultOrder, goldenNow)
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
				switch rng.IntN(4) {
				case 0: // no date
				case 1: // anywhere from the future to 15 half-lives ago
					at := goldenNow.Add(time.Duration(rng.Int64N(int64(480*24*time.Hour))) - 30*24*time.Hour)
					r.LastSeen = &at
				case 2: // years ago, or the zero time
					at := time.Time{}.Add(time.Duration(rng.Int64N(int64(1 << 62))))
					r.LastSeen = &at
				default: // a few hours: decays, by less than the reason shows
					at := goldenNow.Add(-time.Duration(rng.Int64N(int64(8 * time.Hour))))
					r.LastSeen = &at
				}
				if name == "lists" && rng.IntN(2) == 0 {
					kinds := []string{event.ListBlock, event.ListBenign, event.ListTag}
					r.Lists = []event.ListHit{{Name: "l", Kind: kinds[rng.IntN(3)], Prefix: "198.51.100.0/24"}}
				}
				o.Result = r
			}
			outcomes[name] = o
		}
		f := m.Fuse(outcomes, defaultOrder, goldenNow)
		checkInvariants(t, f)
		checkDecayInvariants(t, m, f, outcomes)
		if f.BenignService != "" && !f.BlockListed && f.Score > m.BenignCap {
			t.Fatalf("a benign service scored %d over the cap %d: %+v", f.Score, m.BenignCap, f.Reasons)
		}
		if t.Failed() {
			t.Fatalf("outcomes %+v", outcomes)
		}
	}
}

// checkDecayInvariants: a validator's decayed risk is at least validate_at, and a reason says it
// decayed only for a malicious or suspicious source with evidence older than goldenNow.
func checkDecayInvariants(t *testing.T, m *Model, f Fused, outcomes map[string]*event.ProviderOutcome) {
	t.Helper()
	for _, r := range f.Reasons {
		o := outcomes[r.Source]
		if !strings.Contains(r.Detail, " decay)") {
			continue
		}
		if o == nil || o.Result == nil || o.Result.LastSeen == nil || !o.Result.LastSeen.Before(goldenNow) ||
			(o.Result.Verdict != event.VerdictMalicious && o.Result.Verdict != event.VerdictSuspicious) {
			t.Errorf("reason %+v says it decayed; outcome %+v", r, o)
		}
	}
	for _, v := range f.ValidatedBy {
		o := outcomes[v]
		if o == nil || o.Result == nil {
			continue // a list
		}
		factor, _ := m.decay(o.Result.LastSeen, goldenNow)
		if float64(clamp(o.Result.Score))*factor < float64(m.ValidateAt) {
			t.Errorf("%s validated with score %d decayed ×%.3f", v, o.Result.Score, factor)
		}
	}
}

// TestDecay pins the decay rule: a malicious or suspicious vote's risk halves every half-life of
// its evidence's age (capped at 10), before weighting; benign and list votes, undated evidence
// and evidence not older than now do not decay; validated_by uses the decayed risk.
func TestDecay(t *testing.T) {
	m := Default()
	ago := func(d time.Duration) *time.Time { at := goldenNow.Add(-d); return &at }
	day := 24 * time.Hour
	for _, tt := range []struct {
		name      string
		verdict   event.Verdict
		score     int
		lastSeen  *time.Time
		want      int // the fused score of this one source
		suffix    string
		validated bool
	}{
		{"no date", event.VerdictMalicious, 100, nil, 100, "", true},
		{"one half-life", event.VerdictMalicious, 100, ago(30 * day), 50, " (evidence 30d old: ×0.50 decay)", false},
		{"45 days", event.VerdictMalicious, 100, ago(45 * day), 35, " (evidence 45d old: ×0.35 decay)", false},
		{"120 days", event.VerdictMalicious, 100, ago(120 * day), 6, " (evidence 120d old: ×0.06 decay)", false},
		{"capped at 10 half-lives", event.VerdictMalicious, 100, ago(3000 * day), 0, " (evidence 3000d old: ×0.00 decay)", false},
		{"the zero time", event.VerdictMalicious, 100, &time.Time{}, 0, " (evidence 106751d old: ×0.00 decay)", false},
		{"still validates", event.VerdictMalicious, 90, ago(10 * day), 71, " (evidence 10d old: ×0.79 decay)", true},
		{"no longer validates", event.VerdictMalicious, 90, ago(20 * day), 57, " (evidence 20d old: ×0.63 decay)", false},
		{"suspicious decays", event.VerdictSuspicious, 60, ago(60 * day), 15, " (evidence 60d old: ×0.25 decay)", false},
		{"hours old: too little to show", event.VerdictMalicious, 95, ago(4 * time.Hour), 95, "", true},
		{"under a day", event.VerdictMalicious, 100, ago(20 * time.Hour), 98, " (evidence 20h old: ×0.98 decay)", true},
		{"in the future", event.VerdictMalicious, 100, ago(-time.Hour), 100, "", true},
		{"benign does not decay", event.VerdictBenign, 20, ago(300 * day), 20, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := map[string]*event.ProviderOutcome{"abuseipdb": {Status: event.StatusOK, Result: &event.Intel{
				Verdict: tt.verdict, Score: tt.score, Detail: "AbuseIPDB", LastSeen: tt.lastSeen}}}
			f := m.Fuse(out, defaultOrder, goldenNow)
			checkInvariants(t, f)
			if f.Score != tt.want || f.Reasons[0].Detail != "AbuseIPDB"+tt.suffix || (len(f.ValidatedBy) == 1) != tt.validated {
				t.Errorf("score %d, reason %q, validated by %v; want %d, %q, validated %v",
					f.Score, f.Reasons[0].Detail, f.ValidatedBy, tt.want, "AbuseIPDB"+tt.suffix, tt.validated)
			}
			if tt.lastSeen != nil {
				if z := m.Fuse(out, defaultOrder, time.Time{}); z.Score != tt.score {
					t.Errorf("fused at the zero time: score %d, want %d (no decay)", z.Score, tt.score)
				}
			}
		})
	}

	// A list vote does not decay, whatever date the lists source gives.
	lists := map[string]*event.ProviderOutcome{"lists": {Status: event.StatusOK, Result: &event.Intel{
		Verdict: event.VerdictMalicious, Score: 90, LastSeen: ago(365 * day),
		Lists: []event.ListHit{{Name: "drop", Kind: event.ListBlock, Prefix: "198.51.100.0/24"}}}}}
	if f := m.Fuse(lists, defaultOrder, goldenNow); f.Score != 90 || strings.Contains(f.Reasons[0].Detail, "decay") {
		t.Errorf("list vote decayed: %d %+v", f.Score, f.Reasons)
	}

	// The half-life is the model's.
	short := Default()
	short.HalfLife = 10 * day
	out := map[string]*event.ProviderOutcome{"otx": {Status: event.StatusOK, Result: &event.Intel{
		Verdict: event.VerdictMalicious, Score: 80, Detail: "OTX", LastSeen: ago(20 * day)}}}
	if f := short.Fuse(out, defaultOrder, goldenNow); f.Score != 20 || f.Reasons[0].Detail != "OTX (evidence 20d old: ×0.25 decay)" {
		t.Errorf("half-life 10d: %d %+v", f.Score, f.Reasons)
	}
	// A hand-built model without a half-life decays by the default one.
	bare := Default()
	bare.HalfLife = 0
	if f := bare.Fuse(out, defaultOrder, goldenNow); f.Score != 50 {
		t.Errorf("half-life unset: %d %+v", f.Score, f.Reasons)
	}
}

// TestHalfLifeSetting: the rules file's scoring.half_life is a duration (decoded as
// enrich/rules decodes it, strictly with yaml.v3); 0 means the default; under 1h is an error.
func TestHalfLifeSetting(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want time.Duration
		err  string // substring of the decode or Validate error
	}{
		{"benign_cap: 30", DefaultHalfLife, ""},
		{"half_life: 720h", 720 * time.Hour, ""},
		{"half_life: 2160h", 90 * 24 * time.Hour, ""},
		{`half_life: "1h30m"`, 90 * time.Minute, ""},
		{"half_life: 0s", DefaultHalfLife, ""},
		{"half_life: 1h", time.Hour, ""},
		{"half_life: 59m", 0, "scoring.half_life: must be at least 1h"},
		{"half_life: -720h", 0, "scoring.half_life: must be at least 1h"},
		{"half_life: 30d", 0, "time.Duration"},
		{"half_life: 720", 0, "time.Duration"},
	} {
		var m Model
		dec := yaml3.NewDecoder(strings.NewReader(tt.yaml))
		dec.KnownFields(true)
		err := dec.Decode(&m)
		if err == nil {
			err = m.WithDefaults().Validate()
		}
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.yaml, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.yaml, err)
		case m.WithDefaults().HalfLife != tt.want:
			t.Errorf("%s: half-life %s, want %s", tt.yaml, m.WithDefaults().HalfLife, tt.want)
		}
	}
}
