package rules

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/score"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// ListsSource is the name of the IP lists source.
const ListsSource = "lists"

// DefaultFirstSightMemory is how long an address counts as seen for first_sight sources.
const DefaultFirstSightMemory = 30 * 24 * time.Hour

var (
	listNameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	fieldNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	listFormats = []string{"", "auto", "plain", "spamhaus_drop", "netset", "tor_exit", "misp_warninglist"}
	listKinds   = []string{event.ListBlock, event.ListBenign, event.ListTag}
)

// Compiled is a checked rules file, ready to build a plan from.
type Compiled struct {
	stages           []compiledStage
	stop             []*cond
	fields           []field
	model            *score.Model
	lists            []ListDef
	firstSightMemory time.Duration
}

type compiledStage struct {
	name    string
	sources []compiledSource
}

type compiledSource struct {
	SourceDef
	when *cond
}

// cond is a compiled condition over enrich.Facts.
type cond struct {
	src  string
	prog *vm.Program
}

var _ enrich.Condition = (*cond)(nil)

// Holds implements enrich.Condition; a condition that fails to run (it cannot, being typed
// against Facts, short of a bug) does not hold.
func (c *cond) Holds(f *enrich.Facts) bool {
	out, err := expr.Run(c.prog, f)
	ok, _ := out.(bool)
	return err == nil && ok
}

func (c *cond) String() string { return c.src }

func compileCond(src string) (*cond, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("empty expression")
	}
	prog, err := expr.Compile(src, expr.Env(enrich.Facts{}), expr.AsBool())
	if err != nil {
		return nil, err
	}
	return &cond{src: src, prog: prog}, nil
}

// Compile checks the rules against the sources threatpipe knows (registered providers and
// lists) and reports every problem at once, each as name:line: reason.
func (f *File) Compile(known []string) (*Compiled, error) {
	var errs []error
	bad := func(line int, format string, args ...any) {
		if line <= 0 {
			errs = append(errs, fmt.Errorf("%s: %s", f.name, fmt.Sprintf(format, args...)))
			return
		}
		errs = append(errs, fmt.Errorf("%s:%d: %s", f.name, line, fmt.Sprintf(format, args...)))
	}
	c := &Compiled{firstSightMemory: DefaultFirstSightMemory}
	if f.FirstSightMemory != "" {
		d, err := time.ParseDuration(f.FirstSightMemory)
		if err != nil || d <= 0 {
			bad(0, "first_sight_memory %q is not a positive duration", f.FirstSightMemory)
		}
		c.firstSightMemory = d
	}
	known = append(slices.Clone(known), ListsSource)
	c.compileStages(f, known, bad)
	for i, e := range f.StopWhen {
		cd, err := compileCond(e.Src)
		if err != nil {
			bad(e.Line, "stop_when[%d]: %v", i, err)
			continue
		}
		c.stop = append(c.stop, cd)
	}
	c.compileLists(f, bad)
	c.compileFields(f, known, bad)
	c.compileScoring(f, bad)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Compiled) compileStages(f *File, known []string, bad func(int, string, ...any)) {
	if len(f.Stages) == 0 {
		bad(1, "stages: at least one stage is needed")
	}
	seen := map[string]bool{}
	for i, st := range f.Stages {
		cs := compiledStage{name: st.Name}
		if cs.name == "" {
			cs.name = fmt.Sprintf("stage %d", i+1)
		}
		if len(st.Sources) == 0 {
			bad(st.Line, "stages[%d]: no sources", i)
		}
		for j, s := range st.Sources {
			where := fmt.Sprintf("stages[%d].sources[%d]", i, j)
			switch {
			case !slices.Contains(known, s.Name):
				bad(s.Line, "%s: unknown source %q (known: %s)", where, s.Name, strings.Join(known, ", "))
				continue
			case seen[s.Name]:
				bad(s.Line, "%s: source %q is in more than one stage", where, s.Name)
				continue
			}
			seen[s.Name] = true
			src := compiledSource{SourceDef: s}
			if s.When.Src != "" {
				cd, err := compileCond(s.When.Src)
				if err != nil {
					bad(s.When.Line, "%s: when: %v", where, err)
				}
				src.when = cd
			}
			cs.sources = append(cs.sources, src)
		}
		c.stages = append(c.stages, cs)
	}
}

func (c *Compiled) compileLists(f *File, bad func(int, string, ...any)) {
	names := map[string]bool{}
	for i, l := range f.Lists {
		where := fmt.Sprintf("lists[%d]", i)
		switch {
		case !listNameRE.MatchString(l.Name):
			bad(l.Line, "%s: name %q must be 1-63 lower-case letters, digits, _ . and -", where, l.Name)
		case names[l.Name]:
			bad(l.Line, "%s: name %q used twice", where, l.Name)
		case l.Path == "":
			bad(l.Line, "%s (%s): path is required", where, l.Name)
		case !slices.Contains(listKinds, l.Kind):
			bad(l.Line, "%s (%s): kind %q must be block, benign or tag", where, l.Name, l.Kind)
		case !slices.Contains(listFormats, l.Format):
			bad(l.Line, "%s (%s): format %q must be auto, plain, spamhaus_drop, netset, tor_exit or misp_warninglist", where, l.Name, l.Format)
		case l.Score < 0 || l.Score > 100 || l.Weight < 0 || l.Weight > 10:
			bad(l.Line, "%s (%s): score must be 0-100 and weight 0-10", where, l.Name)
		}
		names[l.Name] = true
	}
	c.lists = f.Lists
	if len(f.Lists) > 0 && !c.hasSource(ListsSource) {
		bad(f.Lists[0].Line, "lists are declared but the %q source is in no stage", ListsSource)
	}
}

func (c *Compiled) compileFields(f *File, known []string, bad func(int, string, ...any)) {
	names := map[string]bool{}
	for i, fd := range f.Fields {
		where := fmt.Sprintf("fields[%d]", i)
		switch {
		case !fieldNameRE.MatchString(fd.Name):
			bad(fd.Line, "%s: name %q must be lower-case letters, digits and _", where, fd.Name)
			continue
		case names[fd.Name]:
			bad(fd.Line, "%s: name %q used twice", where, fd.Name)
			continue
		case fd.Merge != "" && fd.Merge != "first" && fd.Merge != "union":
			bad(fd.Line, "%s (%s): merge %q must be first or union", where, fd.Name, fd.Merge)
			continue
		case len(fd.From) == 0:
			bad(fd.Line, "%s (%s): from needs at least one {source, path}", where, fd.Name)
			continue
		}
		names[fd.Name] = true
		fl := field{name: fd.Name, union: fd.Merge == "union"}
		for j, from := range fd.From {
			p, err := parsePath(from.Path)
			switch {
			case !slices.Contains(known, from.Source):
				bad(from.Line, "%s.from[%d]: unknown source %q", where, j, from.Source)
			case err != nil:
				bad(from.Line, "%s.from[%d]: path: %v", where, j, err)
			default:
				fl.from = append(fl.from, fieldFrom{source: from.Source, path: p})
			}
		}
		c.fields = append(c.fields, fl)
	}
}

func (c *Compiled) compileScoring(f *File, bad func(int, string, ...any)) {
	m := f.Scoring.WithDefaults()
	for _, l := range f.Lists {
		if l.Kind == event.ListBlock && (l.Score != 0 || l.Weight != 0) {
			v := score.ListVote{Score: l.Score, Weight: l.Weight}
			if v.Score == 0 {
				v.Score = m.ListScore
			}
			m.Lists[l.Name] = v
		}
	}
	if err := m.Validate(); err != nil {
		bad(0, "%v", err)
	}
	c.model = m
}

func (c *Compiled) hasSource(name string) bool {
	for _, st := range c.stages {
		for _, s := range st.sources {
			if s.Name == name {
				return true
			}
		}
	}
	return false
}
