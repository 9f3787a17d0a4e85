package criminalip

import "github.com/threatpipe/threatpipe/enrich"

// Registration adds Criminal IP to the provider registry (enrich/providers): variables under
// THREATPIPE_CRIMINALIP_, on when an API key is set.
var Registration = enrich.Register[Config](Name, func(cfg *Config, deps enrich.Deps) (enrich.Provider, error) {
	return New(cfg, deps.HTTPClient)
}, enrich.Defaults{"BASE_URL": DefaultBaseURL})
