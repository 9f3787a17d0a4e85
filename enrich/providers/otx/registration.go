package otx

import "github.com/threatpipe/threatpipe/enrich"

// Registration adds AlienVault OTX to the provider registry (enrich/providers): variables under
// THREATPIPE_OTX_, on when an API key is set. OTX publishes no limits; two lookups a second
// keeps clear of the throttling third parties report.
var Registration = enrich.Register[Config](Name, func(cfg *Config, deps enrich.Deps) (enrich.Provider, error) {
	return New(cfg, deps.HTTPClient)
}, enrich.Defaults{"BASE_URL": DefaultBaseURL, "RATE_LIMIT": "2", "RATE_BURST": "5"})
