package geoip

import "github.com/threatpipe/threatpipe/enrich"

// Registration adds the GeoIP source to the provider registry (enrich/providers): variables
// under THREATPIPE_GEOIP_, on when either database path is set. The built *Provider has a Run
// method (the reload loop) for main to start.
var Registration = enrich.Register[Config](Name, func(cfg *Config, deps enrich.Deps) (enrich.Provider, error) {
	return New(cfg, deps.Log)
}, nil)
