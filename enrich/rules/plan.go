package rules

import (
	"slices"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/score"
)

// SourceOptions are the Lookuper options the rules set for one source.
type SourceOptions struct {
	// MaxAge: a cached answer older than this is looked up again (0: used until its TTL ends).
	MaxAge time.Duration
	// FirstSight: how long an address counts as seen; 0 when the source looks up every miss.
	FirstSight time.Duration
	// Fields extracts the source's mapped fields (nil when no field maps from it).
	Fields enrich.FieldExtractor
}

// SourceOptions returns the options of the named source.
func (c *Compiled) SourceOptions(name string) SourceOptions {
	var o SourceOptions
	for _, st := range c.stages {
		for _, s := range st.sources {
			if s.Name == name {
				o.MaxAge = s.MaxAge
				if s.FirstSight {
					o.FirstSight = c.firstSightMemory
				}
			}
		}
	}
	var mine []field
	for _, f := range c.fields {
		own := field{name: f.name, union: f.union}
		for _, from := range f.from {
			if from.source == name {
				own.from = append(own.from, from)
			}
		}
		if len(own.from) > 0 {
			mine = append(mine, own)
		}
	}
	if len(mine) > 0 {
		o.Fields = &extractor{fields: mine}
	}
	return o
}

// Model is the scoring model, defaults filled in.
func (c *Compiled) Model() *score.Model { return c.model }

// Lists are the declared IP lists.
func (c *Compiled) Lists() []ListDef { return slices.Clone(c.lists) }

// Sources lists the sources the stages name, in cascade order.
func (c *Compiled) Sources() []string {
	var out []string
	for _, st := range c.stages {
		for _, s := range st.sources {
			out = append(out, s.Name)
		}
	}
	return out
}

// Plan builds the Enricher's plan over the configured sources' lookupers: a source the rules
// name but the environment does not configure is left out (and a stage left empty goes);
// unused lists the configured sources no stage names, which are not consulted.
func (c *Compiled) Plan(lookupers map[string]*enrich.Lookuper) (plan enrich.Plan, unused []string) {
	named := map[string]bool{}
	for _, st := range c.stages {
		stage := enrich.Stage{Name: st.name}
		for _, s := range st.sources {
			named[s.Name] = true
			l, ok := lookupers[s.Name]
			if !ok {
				continue
			}
			src := enrich.Source{Lookuper: l, OwnRanges: s.OwnRanges}
			if s.when != nil {
				src.When = s.when
			}
			stage.Sources = append(stage.Sources, src)
		}
		if len(stage.Sources) > 0 {
			plan.Stages = append(plan.Stages, stage)
		}
	}
	for _, cd := range c.stop {
		plan.StopWhen = append(plan.StopWhen, cd)
	}
	if len(c.fields) > 0 {
		plan.Fields = newMerger(c.fields)
	}
	for name := range lookupers {
		if !named[name] {
			unused = append(unused, name)
		}
	}
	slices.Sort(unused)
	return plan, unused
}
