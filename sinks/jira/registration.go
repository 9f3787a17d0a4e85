package jira

import "github.com/threatpipe/threatpipe/sinks"

// Registration adds the Jira sink to the registry: variables under THREATPIPE_SINK_JIRA_, on
// when a site URL is set.
var Registration = sinks.Register[Config](Name, sinks.KindTicket, func(cfg *Config, deps sinks.Deps) (sinks.Sink, error) {
	return New(cfg, deps.HTTPClient)
})
