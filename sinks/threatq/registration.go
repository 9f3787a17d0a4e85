package threatq

import "github.com/threatpipe/threatpipe/sinks"

// Registration adds the ThreatQ sink to the registry: variables under
// THREATPIPE_SINK_THREATQ_, on when a ThreatQ URL is set.
var Registration = sinks.Register[Config](Name, sinks.KindIntel, build)

func build(cfg *Config, deps sinks.Deps) (sinks.Sink, error) { return New(cfg, deps.HTTPClient) }
