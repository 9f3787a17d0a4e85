// Package rules reads the enrichment rules (docs/enrichment.md): which sources are consulted,
// in which stages and under which conditions, when to stop early, which IP lists to load, how
// each source's fields map to output fields, and the scoring model's weights. A rules file is
// YAML, read strictly: an unknown key, a bad expression, an unknown source or a malformed path
// fails start-up with the file, the line and the reason. Without a file, default.yaml applies.
package rules

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/threatpipe/threatpipe/enrich/score"
)

//go:embed default.yaml
var defaultRules []byte

// DefaultYAML is the documented default rules file.
func DefaultYAML() []byte { return append([]byte(nil), defaultRules...) }

// File is a rules file as written.
type File struct {
	Version  int          `yaml:"version"`
	Lists    []ListDef    `yaml:"lists"`
	Stages   []StageDef   `yaml:"stages"`
	StopWhen []Expr       `yaml:"stop_when"`
	Fields   []FieldDef   `yaml:"fields"`
	Scoring  *score.Model `yaml:"scoring"`
	// FirstSightMemory is how long an address counts as seen for first_sight sources
	// (default 720h).
	FirstSightMemory string `yaml:"first_sight_memory"`
	name             string
}

// ListDef declares one IP list.
type ListDef struct {
	Name   string `yaml:"name"`
	Path   string `yaml:"path"`
	Kind   string `yaml:"kind"`   // block, benign or tag
	Format string `yaml:"format"` // auto (default), plain, spamhaus_drop, netset, tor_exit, misp_warninglist
	Tag    string `yaml:"tag"`
	// Score and Weight are a block list's vote (scoring defaults when zero).
	Score  int     `yaml:"score"`
	Weight float64 `yaml:"weight"`
	Line   int     `yaml:"-"`
}

// StageDef is one stage as written.
type StageDef struct {
	Name    string      `yaml:"name"`
	Sources []SourceDef `yaml:"sources"`
	Line    int         `yaml:"-"`
}

// SourceDef is one source of a stage: a bare name, or a mapping with options.
type SourceDef struct {
	Name string
	// When is an expression over what earlier stages found; the source is skipped when false.
	When Expr
	// MaxAge: a cached answer older than this is looked up again.
	MaxAge time.Duration
	// FirstSight: look an address up only the first time it is seen (within FirstSightMemory).
	FirstSight bool
	// OwnRanges: also consult the source about the operator's own addresses.
	OwnRanges bool
	Line      int
}

// Expr is an expression with its line.
type Expr struct {
	Src  string
	Line int
}

// FieldDef maps source fields to one output field.
type FieldDef struct {
	Name  string        `yaml:"name"`
	Merge string        `yaml:"merge"` // first (default) or union
	From  []FieldSource `yaml:"from"`
	Line  int           `yaml:"-"`
}

// FieldSource is one source path of a field.
type FieldSource struct {
	Source string `yaml:"source"`
	Path   string `yaml:"path"`
	Line   int    `yaml:"-"`
}

// UnmarshalYAML implements yaml.Unmarshaler: a bare name or {name, when, max_age, first_sight,
// own_ranges}.
func (s *SourceDef) UnmarshalYAML(n *yaml.Node) error {
	s.Line = n.Line
	if n.Kind == yaml.ScalarNode {
		s.Name = n.Value
		return nil
	}
	if err := knownKeys(n, "name", "when", "max_age", "first_sight", "own_ranges"); err != nil {
		return err
	}
	var raw struct {
		Name       string `yaml:"name"`
		When       Expr   `yaml:"when"`
		MaxAge     string `yaml:"max_age"`
		FirstSight bool   `yaml:"first_sight"`
		OwnRanges  bool   `yaml:"own_ranges"`
	}
	if err := n.Decode(&raw); err != nil {
		return err
	}
	s.Name, s.When, s.FirstSight, s.OwnRanges = raw.Name, raw.When, raw.FirstSight, raw.OwnRanges
	if raw.MaxAge != "" {
		d, err := time.ParseDuration(raw.MaxAge)
		if err != nil || d <= 0 {
			return fmt.Errorf("line %d: max_age %q is not a positive duration (e.g. 12h)", n.Line, raw.MaxAge)
		}
		s.MaxAge = d
	}
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (e *Expr) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: an expression must be a string", n.Line)
	}
	e.Src, e.Line = n.Value, n.Line
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler, keeping the line.
func (d *ListDef) UnmarshalYAML(n *yaml.Node) error {
	type plain ListDef
	if err := knownKeys(n, "name", "path", "kind", "format", "tag", "score", "weight"); err != nil {
		return err
	}
	d.Line = n.Line
	return n.Decode((*plain)(d))
}

// UnmarshalYAML implements yaml.Unmarshaler, keeping the line.
func (d *StageDef) UnmarshalYAML(n *yaml.Node) error {
	type plain StageDef
	if err := knownKeys(n, "name", "sources"); err != nil {
		return err
	}
	d.Line = n.Line
	return n.Decode((*plain)(d))
}

// UnmarshalYAML implements yaml.Unmarshaler, keeping the line.
func (d *FieldDef) UnmarshalYAML(n *yaml.Node) error {
	type plain FieldDef
	if err := knownKeys(n, "name", "merge", "from"); err != nil {
		return err
	}
	d.Line = n.Line
	return n.Decode((*plain)(d))
}

// UnmarshalYAML implements yaml.Unmarshaler, keeping the line.
func (d *FieldSource) UnmarshalYAML(n *yaml.Node) error {
	type plain FieldSource
	if err := knownKeys(n, "source", "path"); err != nil {
		return err
	}
	d.Line = n.Line
	return n.Decode((*plain)(d))
}

// knownKeys rejects keys of a mapping node that are not allowed (custom unmarshalers do not get
// the decoder's strict mode).
func knownKeys(n *yaml.Node, allowed ...string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expected a mapping", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ok := false
		for _, a := range allowed {
			ok = ok || k.Value == a
		}
		if !ok {
			return fmt.Errorf("line %d: unknown key %q (allowed: %s)", k.Line, k.Value, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// Load reads a rules file; path "" means the default rules.
func Load(path string) (*File, error) {
	if path == "" {
		return Parse("default rules", defaultRules)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, raw)
}

var yamlLine = regexp.MustCompile(`(?m)^\s*(?:yaml: )?(?:unmarshal errors:\s*)?line (\d+): `)

// Parse decodes a rules file strictly; name prefixes its errors (name:line: reason).
func Parse(name string, raw []byte) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		msg := strings.TrimSpace(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:"))
		msg = yamlLine.ReplaceAllString(msg, name+":$1: ")
		if !strings.HasPrefix(msg, name) {
			msg = name + ": " + strings.TrimPrefix(msg, "yaml: ")
		}
		return nil, errors.New(msg)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%s: version: want 1 (got %d)", name, f.Version)
	}
	f.name = name
	return &f, nil
}
