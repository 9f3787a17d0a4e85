package internetdb

import "github.com/threatpipe/threatpipe/enrich"

// Registration adds Shodan InternetDB to the provider registry (enrich/providers): variables
// under THREATPIPE_INTERNETDB_, off unless THREATPIPE_INTERNETDB_ENABLED=true (a keyless
// provider has no key to switch it on). InternetDB publishes no limit but throttles heavy
// callers; its data changes weekly, so one lookup a second and the cache are plenty.
var Registration = enrich.Register[Config](Name, func(cfg *Config, deps enrich.Deps) (enrich.Provider, error) {
	return New(cfg, deps.HTTPClient)
}, enrich.Defaults{"BASE_URL": DefaultBaseURL, "ENABLED": "false", "RATE_LIMIT": "1", "RATE_BURST": "5"})
