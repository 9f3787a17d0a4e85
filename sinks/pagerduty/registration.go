package pagerduty

import "github.com/threatpipe/threatpipe/sinks"

// Registration adds the PagerDuty sink to the registry: variables under
// THREATPIPE_SINK_PAGERDUTY_, on when an integration key is set.
var Registration = sinks.Register[Config](Name, sinks.KindAlert, func(cfg *Config, deps sinks.Deps) (sinks.Sink, error) {
	return New(cfg, deps.HTTPClient)
})
