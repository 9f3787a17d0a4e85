// Package act is threatpipe's response stage: playbook workers that consume scored events, decide
// with playbook conditions what to do about each indicator, and drive action sinks (firewall
// blocks, alerts, tickets) through an idempotent ledger in Redis with guardrails, auditing every
// decision to a Kafka topic. docs/playbooks.md documents the playbook format.
package act

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
)

// Env is what playbook conditions see; the expr tags are the names used in expressions.
type Env struct {
	Score    int      `expr:"score"`
	Severity string   `expr:"severity"`
	Tags     []string `expr:"tags"`
	IP       string   `expr:"ip"`
	Type     string   `expr:"type"`
	ISP      string   `expr:"isp"`
	Country  string   `expr:"country"`
	ASN      int64    `expr:"asn"`
	ASOrg    string   `expr:"as_org"`
	Source   string   `expr:"source"`
	Gated    bool     `expr:"gated"`
	// Providers maps each provider to its status (ok, not_found, failed...).
	Providers map[string]string `expr:"providers"`
	// Verdicts maps each provider that answered to its verdict (malicious, suspicious...).
	Verdicts map[string]string `expr:"verdicts"`
	// Scores maps each provider that answered to its own score (0-100).
	Scores map[string]int `expr:"scores"`
	// Confidence (0-100) is how far the sources agree and how many answered.
	Confidence int `expr:"confidence"`
	// ValidatedBy are the sources that independently rate the address malicious.
	ValidatedBy []string `expr:"validated_by"`
	// BlockListed: an IP list of kind block matched; ListHits names every list that matched.
	BlockListed bool     `expr:"block_listed"`
	ListHits    []string `expr:"list_hits"`
	// BenignService: a source knows the address as a known-benign service (GreyNoise RIOT, a
	// benign list).
	BenignService bool `expr:"benign_service"`
	// Fields are the enrichment rules' mapped fields (threat_type, malware_families, ...).
	Fields map[string]any `expr:"fields"`
	// Lists are the playbook file's named lists.
	Lists map[string][]string `expr:"lists"`
	// Escalated is true when the event comes with a verdict change that escalated the indicator
	// to critical (the changes topic); PreviousSeverity and PreviousScore are its verdict before.
	// They are false, "" and 0 for ordinary scored events.
	Escalated        bool   `expr:"escalated"`
	PreviousSeverity string `expr:"previous_severity"`
	PreviousScore    int    `expr:"previous_score"`
}

// NewEnv builds the condition environment of a scored event.
func NewEnv(ev *event.Scored, lists map[string][]string) *Env {
	env := &Env{
		Score: ev.Score, Severity: string(ev.Severity), Tags: ev.Tags, IP: ev.Indicator.Value,
		Type: string(ev.Indicator.Type), ISP: ev.ISP, Source: ev.Source, Gated: ev.Gate != nil,
		Providers: make(map[string]string, len(ev.Providers)), Verdicts: make(map[string]string, len(ev.Providers)),
		Scores: make(map[string]int, len(ev.Providers)), Confidence: ev.Confidence, ValidatedBy: ev.ValidatedBy,
		Fields: make(map[string]any, len(ev.Fields)), Lists: lists,
	}
	for name, raw := range ev.Fields {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			env.Fields[name] = v
		}
	}
	if ev.Geo != nil {
		env.Country = ev.Geo.CountryISOCode
	}
	if ev.AS != nil {
		env.ASN = ev.AS.Number
		if ev.AS.Organization != nil {
			env.ASOrg = ev.AS.Organization.Name
		}
	}
	for name, out := range ev.Providers {
		if out == nil {
			continue
		}
		env.Providers[name] = string(out.Status)
		r := out.Result
		if r == nil {
			continue
		}
		env.Verdicts[name] = string(r.Verdict)
		if out.Status != event.StatusOK {
			continue
		}
		env.Scores[name] = r.Score
		env.BenignService = env.BenignService || r.Service != ""
		for _, h := range r.Lists {
			env.ListHits = append(env.ListHits, h.Name)
			env.BlockListed = env.BlockListed || h.Kind == event.ListBlock
		}
	}
	return env
}

// File is a playbook file as written.
type File struct {
	Lists     map[string][]string `yaml:"lists"`
	Playbooks []PlaybookSpec      `yaml:"playbooks"`
}

// PlaybookSpec is one playbook as written.
type PlaybookSpec struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// When is the trigger condition over Env.
	When string `yaml:"when"`
	// DryRun (shadow mode) records what would have happened and performs nothing.
	DryRun bool `yaml:"dry_run"`
	// Window is how long one action on one indicator covers: within it, repeats are
	// suppressed (tickets get a comment instead). Default 24h.
	Window string     `yaml:"window"`
	Steps  []StepSpec `yaml:"steps"`
}

// StepSpec is one action of a playbook as written.
type StepSpec struct {
	Name   string            `yaml:"name"`
	Action sinks.Kind        `yaml:"action"`
	Sink   string            `yaml:"sink"`
	If     string            `yaml:"if"`
	Params map[string]string `yaml:"params"`
	// Duration is a block's first length; repeat offenders get it doubled per earlier block.
	Duration string `yaml:"duration"`
}

// Playbook is a compiled playbook.
type Playbook struct {
	Name   string
	DryRun bool
	Window time.Duration
	when   *vm.Program
	Steps  []*Step
}

// Step is a compiled step.
type Step struct {
	Name     string
	Kind     sinks.Kind
	Sink     sinks.Sink
	Params   map[string]string
	Duration time.Duration
	cond     *vm.Program // nil: always
}

// Set is a validated, compiled playbook file.
type Set struct {
	Lists     map[string][]string
	Playbooks []*Playbook
}

// DefaultWindow and DefaultBlockDuration apply when a playbook or step does not say.
const (
	DefaultWindow        = 24 * time.Hour
	DefaultBlockDuration = 24 * time.Hour
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// LoadFile reads and compiles a playbook file against the configured sinks.
func LoadFile(path string, configured map[string]sinks.Sink) (*Set, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	set, err := Parse(raw, configured)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// Parse decodes (strictly: unknown keys are errors) and compiles playbooks. Every problem is
// reported, each naming its playbook and step.
func Parse(raw []byte, configured map[string]sinks.Sink) (*Set, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a playbook file: %w", err)
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(f.Playbooks) == 0 {
		bad("no playbooks")
	}
	for name := range f.Lists {
		if !nameRE.MatchString(name) {
			bad("lists: %q is not a valid name (lower case letters, digits, _ and -)", name)
		}
	}
	set := &Set{Lists: f.Lists}
	if set.Lists == nil {
		set.Lists = map[string][]string{}
	}
	seen := map[string]bool{}
	for i, ps := range f.Playbooks {
		where := fmt.Sprintf("playbooks[%d]", i)
		if ps.Name != "" {
			where = fmt.Sprintf("playbook %q", ps.Name)
		}
		if !nameRE.MatchString(ps.Name) {
			bad("%s: name %q must be 1-63 lower case letters, digits, _ and -", where, ps.Name)
		}
		if seen[ps.Name] {
			bad("%s: name used twice", where)
		}
		seen[ps.Name] = true
		pb := &Playbook{Name: ps.Name, DryRun: ps.DryRun, Window: DefaultWindow}
		if ps.Window != "" {
			w, err := time.ParseDuration(ps.Window)
			if err != nil || w <= 0 {
				bad("%s: window %q is not a positive duration (e.g. 24h)", where, ps.Window)
			}
			pb.Window = w
		}
		if strings.TrimSpace(ps.When) == "" {
			bad("%s: when is required (e.g. 'score >= 80')", where)
		} else if prog, err := compile(ps.When); err != nil {
			bad("%s: when: %v", where, err)
		} else {
			pb.when = prog
		}
		if len(ps.Steps) == 0 {
			bad("%s: no steps", where)
		}
		stepNames := map[string]bool{}
		for j, ss := range ps.Steps {
			st, err := compileStep(ss, configured)
			stepWhere := fmt.Sprintf("%s step %d", where, j+1)
			if st != nil {
				stepWhere = fmt.Sprintf("%s step %q", where, st.Name)
				if stepNames[st.Name] {
					bad("%s: name used twice in the playbook (name the steps)", stepWhere)
				}
				stepNames[st.Name] = true
			}
			if err != nil {
				bad("%s: %w", stepWhere, err)
				continue
			}
			pb.Steps = append(pb.Steps, st)
		}
		set.Playbooks = append(set.Playbooks, pb)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

func compileStep(ss StepSpec, configured map[string]sinks.Sink) (*Step, error) {
	st := &Step{Name: ss.Name, Kind: ss.Action, Params: ss.Params}
	if st.Name == "" {
		st.Name = string(ss.Action) + "-" + ss.Sink
	}
	var errs []error
	if !nameRE.MatchString(st.Name) {
		errs = append(errs, fmt.Errorf("name %q must be 1-63 lower case letters, digits, _ and -", st.Name))
	}
	switch ss.Action {
	case sinks.KindBlock, sinks.KindAlert, sinks.KindTicket, sinks.KindIntel:
	default:
		errs = append(errs, fmt.Errorf("action %q is not one of block, alert, ticket, intel", ss.Action))
	}
	sink, ok := configured[ss.Sink]
	switch {
	case ss.Sink == "":
		errs = append(errs, errors.New("sink is required"))
	case !ok:
		errs = append(errs, fmt.Errorf("sink %q is not configured (set its THREATPIPE_SINK_%s_* variables; `threatpipe config` lists them)", ss.Sink, strings.ToUpper(ss.Sink)))
	case sink.Kind() != ss.Action:
		errs = append(errs, fmt.Errorf("sink %q performs %s actions, not %s", ss.Sink, sink.Kind(), ss.Action))
	default:
		st.Sink = sink
		if v, ok := sink.(sinks.ParamValidator); ok {
			if err := v.ValidateParams(ss.Params); err != nil {
				errs = append(errs, fmt.Errorf("params: %w", err))
			}
		} else if len(ss.Params) > 0 {
			errs = append(errs, fmt.Errorf("params: sink %q takes none", ss.Sink))
		}
	}
	if ss.Duration != "" {
		d, err := time.ParseDuration(ss.Duration)
		switch {
		case ss.Action != sinks.KindBlock:
			errs = append(errs, errors.New("duration applies to block steps only"))
		case err != nil || d <= 0:
			errs = append(errs, fmt.Errorf("duration %q is not a positive duration (e.g. 24h)", ss.Duration))
		default:
			st.Duration = d
		}
	} else if ss.Action == sinks.KindBlock {
		st.Duration = DefaultBlockDuration
	}
	if strings.TrimSpace(ss.If) != "" {
		prog, err := compile(ss.If)
		if err != nil {
			errs = append(errs, fmt.Errorf("if: %w", err))
		}
		st.cond = prog
	}
	return st, errors.Join(errs...)
}

// compile type-checks a condition against Env once, at start-up.
func compile(src string) (*vm.Program, error) {
	return expr.Compile(src, expr.Env(Env{}), expr.AsBool())
}

func eval(p *vm.Program, env *Env) (bool, error) {
	out, err := expr.Run(p, env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// Decision is one step a scored event triggers.
type Decision struct {
	Playbook *Playbook
	Step     *Step
}

// Decide returns the steps of kind that ev triggers, in playbook order. A condition that fails
// at run time (a nil map, say) is an error naming it; the other playbooks still decide.
func (s *Set) Decide(ev *event.Scored, kind sinks.Kind) ([]Decision, error) {
	return s.DecideEnv(NewEnv(ev, s.Lists), kind)
}

// EscalationEnv is the condition environment of ev, whose verdict a change escalated from
// previous: escalated is true and previous_severity and previous_score are set.
func (s *Set) EscalationEnv(ev *event.Scored, previous event.Rating) *Env {
	env := NewEnv(ev, s.Lists)
	env.Escalated, env.PreviousSeverity, env.PreviousScore = true, string(previous.Severity), previous.Score
	return env
}

// DecideEnv is Decide over an environment already built.
func (s *Set) DecideEnv(env *Env, kind sinks.Kind) ([]Decision, error) {
	var out []Decision
	var errs []error
	for _, pb := range s.Playbooks {
		if !pb.hasKind(kind) {
			continue
		}
		ok, err := eval(pb.when, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("playbook %q: when: %w", pb.Name, err))
			continue
		}
		if !ok {
			continue
		}
		for _, st := range pb.Steps {
			if st.Kind != kind {
				continue
			}
			if st.cond != nil {
				ok, err := eval(st.cond, env)
				if err != nil {
					errs = append(errs, fmt.Errorf("playbook %q step %q: if: %w", pb.Name, st.Name, err))
					continue
				}
				if !ok {
					continue
				}
			}
			out = append(out, Decision{Playbook: pb, Step: st})
		}
	}
	return out, errors.Join(errs...)
}

func (pb *Playbook) hasKind(kind sinks.Kind) bool {
	for _, st := range pb.Steps {
		if st.Kind == kind {
			return true
		}
	}
	return false
}

// Uses reports whether any step performs kind.
func (s *Set) Uses(kind sinks.Kind) bool {
	for _, pb := range s.Playbooks {
		if pb.hasKind(kind) {
			return true
		}
	}
	return false
}
