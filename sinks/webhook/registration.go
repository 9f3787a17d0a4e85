package webhook

import "github.com/threatpipe/threatpipe/sinks"

// Registration adds the webhook sink to the registry: variables under THREATPIPE_SINK_WEBHOOK_,
// on when a receiver URL is set. Its Kind is the default, alert; the built sink's Kind() is
// the configured THREATPIPE_SINK_WEBHOOK_KIND.
var Registration = sinks.Register[Config](Name, sinks.KindAlert, func(cfg *Config, deps sinks.Deps) (sinks.Sink, error) {
	return build(cfg, deps.HTTPClient, deps.NeverBlock)
})
