package ingest

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

// Registration describes one platform: its name (as THREATPIPE_INGEST_SOURCES spells it), its
// variables (THREATPIPE_INGEST_<NAME>_*) and how to build its Source from the environment.
type Registration struct {
	Name   string
	Prefix string
	vars   func() []config.Var
	build  func(environ map[string]string, client *http.Client) (Source, error)
}

// Vars lists the platform's variables, for `threatpipe config` and --help.
func (r Registration) Vars() []config.Var { return r.vars() }

// validator is implemented by a platform Config that checks itself after parsing (naming its
// variables); resolver by one that also applies _FILE secrets first.
type (
	validator interface{ Validate() error }
	resolver  interface{ Resolve() error }
)

// Register describes a platform named name whose configuration C is env-tagged relative to
// THREATPIPE_INGEST_<NAME>_ and whose constructor is build (a package's New, as is). If *C has a
// Resolve or Validate method it runs before build, so a bad variable is named before anything
// is contacted.
func Register[C any, S Source](name string, build func(cfg *C, client *http.Client) (S, error)) Registration {
	prefix := SourcePrefixVar(name)
	return Registration{
		Name:   name,
		Prefix: prefix,
		vars:   func() []config.Var { return config.VarsOf(prefix, reflect.TypeFor[C]()) },
		build: func(environ map[string]string, client *http.Client) (Source, error) {
			cfg := new(C)
			if err := config.Parse(cfg, prefix, environ); err != nil {
				return nil, fmt.Errorf("ingest source %s: %w", name, err)
			}
			if r, ok := any(cfg).(resolver); ok {
				if err := r.Resolve(); err != nil {
					return nil, fmt.Errorf("ingest source %s: %w", name, err)
				}
			}
			if v, ok := any(cfg).(validator); ok {
				if err := v.Validate(); err != nil {
					return nil, fmt.Errorf("ingest source %s: %w", name, err)
				}
			}
			src, err := build(cfg, client)
			if err != nil {
				return nil, fmt.Errorf("ingest source %s: %w", name, err)
			}
			return src, nil
		},
	}
}

// SourcePrefixVar is the prefix of a platform's variables: THREATPIPE_INGEST_<NAME>_.
func SourcePrefixVar(name string) string {
	return ConfigPrefix + strings.ToUpper(name) + "_"
}

// Names lists the registrations' names.
func Names(regs []Registration) []string {
	out := make([]string, len(regs))
	for i, r := range regs {
		out[i] = r.Name
	}
	return out
}

// Build builds the sources cfg names, in the order it names them.
func Build(regs []Registration, cfg *Config, environ []string, client *http.Client) ([]Source, error) {
	vars := environMap(environ)
	byName := make(map[string]Registration, len(regs))
	for _, r := range regs {
		byName[r.Name] = r
	}
	out := make([]Source, 0, len(cfg.Sources))
	for _, name := range cfg.Sources {
		r, ok := byName[name]
		if !ok { // Config.Validate names it; this guards a caller that skipped it
			return nil, fmt.Errorf("%sSOURCES: unknown source %q", ConfigPrefix, name)
		}
		src, err := r.build(vars, client)
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	return out, nil
}

func environMap(environ []string) map[string]string {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return vars
}
