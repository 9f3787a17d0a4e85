package servicenow

import "github.com/threatpipe/threatpipe/sinks"

// Registration adds the ServiceNow sink to the registry: variables under
// THREATPIPE_SINK_SERVICENOW_, on when an instance URL is set.
var Registration = sinks.Register[Config](Name, sinks.KindTicket, func(cfg *Config, deps sinks.Deps) (sinks.Sink, error) {
	return New(cfg, deps.HTTPClient)
})
