// Package docs holds threatpipe's event contract: docs/events.md for humans and the JSON Schema
// files under schemas/ for machines. The schemas are embedded so that tests anywhere in the
// module can validate real outputs against them:
//
//	v, err := docs.NewValidator()
//	...
//	err = v.Validate(docs.ScoredEventSchema, value)
package docs

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schemas holds the JSON Schema files (draft 2020-12), named <contract>.schema.json.
//
//go:embed schemas/*.json
var Schemas embed.FS

// Schema file names, as accepted by Validator.Validate.
const (
	IndicatorEventSchema = "indicator-event.schema.json"
	ECSEventSchema       = "ecs-event.schema.json"
	ScoredEventSchema    = "scored-event.schema.json"
	DeadLetterSchema     = "dead-letter.schema.json"
	ActionRecordSchema   = "action-record.schema.json"
)

const schemaSuffix = ".schema.json"

// Validator validates documents against the compiled schemas. It is immutable after
// NewValidator and safe for concurrent use.
type Validator struct {
	schemas map[string]*jsonschema.Schema // by file name
}

// NewValidator compiles every embedded schema once, with format assertions (date-time, ipv4,
// ipv6) switched on.
func NewValidator() (*Validator, error) {
	entries, err := fs.ReadDir(Schemas, "schemas")
	if err != nil {
		return nil, fmt.Errorf("read embedded schemas: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()

	ids := make(map[string]string, len(entries)) // file name -> $id
	for _, e := range entries {
		name := e.Name()
		raw, err := Schemas.ReadFile(path.Join("schemas", name))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		obj, _ := doc.(map[string]any)
		id, _ := obj["$id"].(string)
		if id == "" {
			return nil, fmt.Errorf("%s has no $id", name)
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("add %s: %w", name, err)
		}
		ids[name] = id
	}
	v := &Validator{schemas: make(map[string]*jsonschema.Schema, len(ids))}
	for name, id := range ids {
		sch, err := c.Compile(id)
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", name, err)
		}
		v.schemas[name] = sch
	}
	return v, nil
}

// Names returns the file names of the compiled schemas, sorted.
func (v *Validator) Names() []string {
	names := make([]string, 0, len(v.schemas))
	for n := range v.schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Validate checks one JSON document against the named schema. name is a schema file name
// ("scored-event.schema.json") or its stem ("scored-event"). A nil error means the document is
// valid; a *jsonschema.ValidationError lists every violation.
func (v *Validator) Validate(name string, doc []byte) error {
	sch, ok := v.schemas[name]
	if !ok {
		sch, ok = v.schemas[name+schemaSuffix]
	}
	if !ok {
		return fmt.Errorf("unknown schema %q (have %s)", name, strings.Join(v.Names(), ", "))
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("document is not JSON: %w", err)
	}
	return sch.Validate(inst)
}

// Validate checks one JSON document against the named schema with a freshly compiled
// Validator. It is a convenience for one-off checks; code that validates many documents should
// keep the *Validator from NewValidator.
func Validate(schemaFile string, doc []byte) error {
	v, err := NewValidator()
	if err != nil {
		return err
	}
	return v.Validate(schemaFile, doc)
}

// ValidateValue marshals value (a scored event, say) to JSON and validates it against the named
// schema.
func (v *Validator) ValidateValue(name string, value any) error {
	doc, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	return v.Validate(name, doc)
}
