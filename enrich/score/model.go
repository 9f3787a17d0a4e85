// Package score fuses what the sources said about an address into one explainable verdict:
// a score 0-100 with its severity, a confidence 0-100 saying how far the sources agree and how
// many answered, the sources that independently rate the address malicious (validated_by),
// tags, and one reason per source with the points it brought. docs/scoring.md explains the
// model with worked examples; testdata/*.yaml are its golden cases.
//
// The model, in short: every source that has an opinion (a malicious, suspicious or benign
// verdict; a block list hit) casts a vote of its own risk (0-100) with a weight; the score is
// the weighted mean of the votes, plus points for tags that carry risk wherever they came from
// (tor, scanner, ...), capped below the block threshold when a source knows the address as a
// known-benign service. Benign votes weigh less than malicious ones (benign_weight): a clean
// scan proves less than a detection. The risk of a malicious or suspicious vote decays with the
// age of its evidence (half_life): what a source saw months ago says less about the address
// today. Sources without an opinion (not found, unrated context, failures) cast no vote and say
// so in their reason.
package score

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// DefaultHalfLife is the default half-life of malicious and suspicious evidence.
const DefaultHalfLife = 30 * 24 * time.Hour

// MinHalfLife is the shortest half-life Validate accepts.
const MinHalfLife = time.Hour

// Model is the fusion's tunables; the rules file's scoring section sets them (zero values there
// mean the defaults below).
type Model struct {
	// Weights by source name; sources not listed weigh DefaultWeight.
	Weights map[string]float64 `yaml:"weights"`
	// DefaultWeight is the weight of a source Weights does not name.
	DefaultWeight float64 `yaml:"default_weight"`
	// BenignWeight multiplies the weight of benign votes.
	BenignWeight float64 `yaml:"benign_weight"`
	// FullCoverage is the summed vote weight at which coverage, one factor of the confidence,
	// is complete.
	FullCoverage float64 `yaml:"full_coverage"`
	// BenignCap caps the score of a known-benign service.
	BenignCap int `yaml:"benign_cap"`
	// ValidateAt is the lowest own score at which a malicious verdict counts in validated_by.
	ValidateAt int `yaml:"validate_at"`
	// TagPoints are added for each tag present, whoever reported it, up to TagPointsMax.
	TagPoints    map[string]int `yaml:"tag_points"`
	TagPointsMax int            `yaml:"tag_points_max"`
	// Lists are per-list vote settings by list name; unnamed lists use ListScore and ListWeight.
	Lists      map[string]ListVote `yaml:"lists"`
	ListScore  int                 `yaml:"list_score"`
	ListWeight float64             `yaml:"list_weight"`
	// HalfLife is how fast the risk of a malicious or suspicious vote decays with the age of its
	// evidence (the source's LastSeen): by half every HalfLife. A Go duration in the rules file
	// ("720h"); zero means DefaultHalfLife.
	HalfLife time.Duration `yaml:"half_life"`
}

// ListVote is how a block list votes.
type ListVote struct {
	Score  int     `yaml:"score"`
	Weight float64 `yaml:"weight"`
}

// Default is the documented model (docs/scoring.md).
func Default() *Model {
	return &Model{
		Weights: map[string]float64{
			"criminalip": 1.0, "abuseipdb": 1.0, "virustotal": 0.9, "greynoise": 0.8, "otx": 0.6, "internetdb": 0.5,
		},
		DefaultWeight: 0.7,
		BenignWeight:  0.5,
		FullCoverage:  2.5,
		BenignCap:     39,
		ValidateAt:    60,
		TagPoints:     map[string]int{"tor": 10, "darkweb": 10, "proxy": 5, "anonymous_vpn": 5, "scanner": 5},
		TagPointsMax:  15,
		Lists:         map[string]ListVote{},
		ListScore:     90,
		ListWeight:    1.5,
		HalfLife:      DefaultHalfLife,
	}
}

// WithDefaults returns a copy of m with every unset tunable taken from Default; maps are merged
// (m's entries win).
func (m *Model) WithDefaults() *Model {
	d := Default()
	if m == nil {
		return d
	}
	out := *m
	out.Weights = merged(d.Weights, m.Weights)
	out.TagPoints = merged(d.TagPoints, m.TagPoints)
	out.Lists = merged(d.Lists, m.Lists)
	if out.DefaultWeight == 0 {
		out.DefaultWeight = d.DefaultWeight
	}
	if out.BenignWeight == 0 {
		out.BenignWeight = d.BenignWeight
	}
	if out.FullCoverage == 0 {
		out.FullCoverage = d.FullCoverage
	}
	if out.BenignCap == 0 {
		out.BenignCap = d.BenignCap
	}
	if out.ValidateAt == 0 {
		out.ValidateAt = d.ValidateAt
	}
	if out.TagPointsMax == 0 {
		out.TagPointsMax = d.TagPointsMax
	}
	if out.ListScore == 0 {
		out.ListScore = d.ListScore
	}
	if out.ListWeight == 0 {
		out.ListWeight = d.ListWeight
	}
	if out.HalfLife == 0 {
		out.HalfLife = d.HalfLife
	}
	return &out
}

func merged[V any](base, over map[string]V) map[string]V {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]V{}
	}
	maps.Copy(out, over)
	return out
}

// Validate checks the tunables' ranges, naming the offending key.
func (m *Model) Validate() error {
	bad := func(key, msg string) error { return fmt.Errorf("scoring.%s: %s", key, msg) }
	for _, name := range slices.Sorted(maps.Keys(m.Weights)) {
		if w := m.Weights[name]; w < 0 || w > 10 {
			return bad("weights."+name, "must be between 0 and 10")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.TagPoints)) {
		if p := m.TagPoints[name]; p < -100 || p > 100 {
			return bad("tag_points."+name, "must be between -100 and 100")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.Lists)) {
		if v := m.Lists[name]; v.Score < 0 || v.Score > 100 || v.Weight < 0 || v.Weight > 10 {
			return bad("lists."+name, "score must be 0-100 and weight 0-10")
		}
	}
	switch {
	case m.DefaultWeight < 0 || m.DefaultWeight > 10:
		return bad("default_weight", "must be between 0 and 10")
	case m.BenignWeight < 0 || m.BenignWeight > 1:
		return bad("benign_weight", "must be between 0 and 1")
	case m.FullCoverage <= 0:
		return bad("full_coverage", "must be greater than zero")
	case m.BenignCap < 0 || m.BenignCap > 100:
		return bad("benign_cap", "must be between 0 and 100")
	case m.ValidateAt < 0 || m.ValidateAt > 100:
		return bad("validate_at", "must be between 0 and 100")
	case m.TagPointsMax < 0 || m.TagPointsMax > 100:
		return bad("tag_points_max", "must be between 0 and 100")
	case m.ListScore < 0 || m.ListScore > 100:
		return bad("list_score", "must be between 0 and 100")
	case m.ListWeight < 0 || m.ListWeight > 10:
		return bad("list_weight", "must be between 0 and 10")
	case m.HalfLife < MinHalfLife:
		return bad("half_life", "must be at least 1h (a duration such as 720h)")
	}
	return nil
}

func (m *Model) weight(source string) float64 {
	if w, ok := m.Weights[source]; ok {
		return w
	}
	return m.DefaultWeight
}

// halfLife is HalfLife, DefaultHalfLife when unset (a Model built by hand).
func (m *Model) halfLife() time.Duration {
	if m.HalfLife <= 0 {
		return DefaultHalfLife
	}
	return m.HalfLife
}

func (m *Model) listVote(name string) ListVote {
	v, ok := m.Lists[name]
	if !ok {
		return ListVote{Score: m.ListScore, Weight: m.ListWeight}
	}
	if v.Weight == 0 {
		v.Weight = m.ListWeight
	}
	return v
}
