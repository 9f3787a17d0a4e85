// Package enrich turns indicators into context and a score. Providers, the cache and the scorer
// plug in here; the pipeline calls a pipeline.Processor.
package enrich

import (
	"context"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Unscored is the processor used until providers are configured: it looks nothing up, leaves
// the score at 0 and says so in the reasons, so a consumer never mistakes "not enriched" for
// "benign".
type Unscored struct{}

var _ pipeline.Processor = Unscored{}

// Process implements pipeline.Processor.
func (Unscored) Process(_ context.Context, ev *event.Scored) error {
	ev.Score = 0
	ev.Reasons = append(ev.Reasons, event.Reason{Source: "threatpipe", Detail: "no enrichment provider configured", Points: 0})
	return nil
}
