package slack

import "github.com/threatpipe/threatpipe/sinks"

// Registration adds the Slack sink to the registry: variables under THREATPIPE_SINK_SLACK_, on
// when a webhook URL is set.
var Registration = sinks.Register[Config](Name, sinks.KindAlert, func(cfg *Config, deps sinks.Deps) (sinks.Sink, error) {
	return New(cfg, deps.HTTPClient)
})
