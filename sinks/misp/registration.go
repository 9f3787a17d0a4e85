package misp

import "github.com/threatpipe/threatpipe/sinks"

// Registration adds the MISP sink to the registry: variables under THREATPIPE_SINK_MISP_, on
// when a MISP URL is set.
var Registration = sinks.Register[Config](Name, sinks.KindIntel, build)

func build(cfg *Config, deps sinks.Deps) (sinks.Sink, error) {
	return New(cfg, deps.HTTPClient)
}
