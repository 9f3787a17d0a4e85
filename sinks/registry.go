package sinks

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/neverblock"
)

// Deps are what sink constructors may use.
type Deps struct {
	// HTTPClient has no timeout of its own (each sink bounds its attempts) and refuses redirects.
	HTTPClient *http.Client
	Log        *zap.Logger
	// Mux is where sinks that serve HTTP (the External Dynamic List) register their handlers;
	// HTTPAddr is the listen address of its server (THREATPIPE_HTTP_ADDR), for their start-up
	// warnings.
	Mux      *http.ServeMux
	HTTPAddr string
	// Produce writes one JSON record to a Kafka topic, acknowledged by the broker (acks=all)
	// before it returns; the Kafka alert sink uses it.
	Produce func(ctx context.Context, topic, key string, value []byte) error
	// NeverBlock is the operator's never-block list, which block sinks enforce again (Blockable);
	// nil: the built-in special-purpose ranges alone.
	NeverBlock *neverblock.List
}

// Config is implemented by every sink's configuration struct (through a pointer). Resolve
// applies _FILE secrets and validates, naming variables in its errors; Configured says whether
// the operator set the sink up (a webhook URL, say) so that it should be built.
type Config interface {
	Resolve() error
	Configured() bool
}

// Registration describes one sink: its name, its variables (for docs and `threatpipe config`)
// and how to build it from the environment.
type Registration struct {
	Name string
	Kind Kind
	// Prefix of its variables: THREATPIPE_SINK_<NAME>_.
	Prefix string
	vars   func() []config.Var
	load   func(environ map[string]string, deps Deps, resolveOnly bool) (Sink, bool, error)
	// resolveOnly stops load after Resolve: configuration checks that must not touch anything.
	resolveOnly bool
}

// ResolveOnly returns a copy of r whose loading parses and validates the variables but builds
// nothing (`threatpipe config --check`).
func (r Registration) ResolveOnly() Registration {
	r.resolveOnly = true
	return r
}

// Vars lists the sink's variables.
func (r Registration) Vars() []config.Var { return r.vars() }

// Register describes a sink named name whose configuration is C (env-tagged) and whose
// constructor is build. A sink package exposes one such Registration; the list in sinks/all is
// the one line that adds it to the binary.
func Register[C any, PC interface {
	*C
	Config
}](name string, kind Kind, build func(*C, Deps) (Sink, error)) Registration {
	prefix := config.Prefix + "SINK_" + strings.ToUpper(name) + "_"
	return Registration{
		Name:   name,
		Kind:   kind,
		Prefix: prefix,
		vars:   func() []config.Var { return config.VarsOf(prefix, reflect.TypeFor[C]()) },
		load: func(environ map[string]string, deps Deps, resolveOnly bool) (Sink, bool, error) {
			cfg := new(C)
			if err := config.Parse(cfg, prefix, environ); err != nil {
				return nil, false, fmt.Errorf("sink %s: %w", name, err)
			}
			pc := PC(cfg)
			if err := pc.Resolve(); err != nil {
				return nil, false, fmt.Errorf("sink %s: %w", name, err)
			}
			if !pc.Configured() || resolveOnly {
				return nil, false, nil
			}
			s, err := build(cfg, deps)
			if err != nil {
				return nil, false, fmt.Errorf("sink %s: %w", name, err)
			}
			return s, true, nil
		},
	}
}

// Load builds every registered sink the environment configures, keyed by name. Errors name the
// offending variable.
func Load(regs []Registration, environ []string, deps Deps) (map[string]Sink, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	out := make(map[string]Sink)
	for _, r := range regs {
		s, ok, err := r.load(vars, deps, r.resolveOnly)
		if err != nil {
			return nil, err
		}
		if ok {
			out[r.Name] = s
		}
	}
	return out, nil
}
