package thehive

import "github.com/threatpipe/threatpipe/sinks"

// Registration adds the TheHive sink to the registry: variables under THREATPIPE_SINK_THEHIVE_,
// on when a TheHive URL is set.
var Registration = sinks.Register[Config](Name, sinks.KindTicket, func(cfg *Config, deps sinks.Deps) (sinks.Sink, error) {
	return New(cfg, deps.HTTPClient)
})
