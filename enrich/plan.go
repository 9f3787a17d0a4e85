package enrich

import (
	"encoding/json"
	"time"

	"github.com/threatpipe/threatpipe/enrich/score"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Plan is how the Enricher consults its sources, from the enrichment rules (enrich/rules): in
// stages, each stage's sources at once, a stage only after the one before it, and no further
// stage once a stop condition holds.
type Plan struct {
	Stages []Stage
	// StopWhen are checked after each stage: the first that holds skips every later stage.
	StopWhen []Condition
	// Fields merges the sources' mapped fields into the scored event (nil: none).
	Fields FieldMerger
}

// Stage is a group of sources consulted together.
type Stage struct {
	Name    string
	Sources []Source
}

// Source is one source in a stage.
type Source struct {
	Lookuper *Lookuper
	// When, if set, must hold (over what the earlier stages found) for the source to be asked;
	// otherwise it is skipped and says so.
	When Condition
	// OwnRanges: the source is also asked about addresses in the operator's own ranges (to learn
	// that one of them is on a block list, say). Others see external addresses only.
	OwnRanges bool
}

// Condition is a compiled rule condition.
type Condition interface {
	Holds(f *Facts) bool
	String() string
}

// Facts are what rule conditions see: the verdict so far and the address. The expr tags are the
// names conditions use (docs/enrichment.md).
type Facts struct {
	Score         int               `expr:"score"`
	Confidence    int               `expr:"confidence"`
	ValidatedBy   []string          `expr:"validated_by"`
	Tags          []string          `expr:"tags"`
	Lists         []string          `expr:"lists"`
	BlockListed   bool              `expr:"block_listed"`
	BenignService bool              `expr:"benign_service"`
	Voters        int               `expr:"voters"`
	Verdicts      map[string]string `expr:"verdicts"`
	IP            string            `expr:"ip"`
	Type          string            `expr:"type"`
	OwnRange      bool              `expr:"own_range"`
}

// FieldMerger merges the sources' mapped fields.
type FieldMerger interface {
	Merge(outcomes map[string]*event.ProviderOutcome) map[string]json.RawMessage
}

// Scorer fuses the sources' outcomes, visiting them in order, into one verdict; now is the time
// the age of the sources' evidence is measured at.
type Scorer interface {
	Fuse(outcomes map[string]*event.ProviderOutcome, order []string, now time.Time) score.Fused
}

var _ Scorer = (*score.Model)(nil)

// OneStage is the plan of consulting every source at once, with no conditions.
func OneStage(lookupers ...*Lookuper) Plan {
	st := Stage{Name: "all"}
	for _, l := range lookupers {
		st.Sources = append(st.Sources, Source{Lookuper: l})
	}
	return Plan{Stages: []Stage{st}}
}
