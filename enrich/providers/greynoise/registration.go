package greynoise

import "github.com/threatpipe/threatpipe/enrich"

// Registration adds GreyNoise to the provider registry (enrich/providers): variables under
// THREATPIPE_GREYNOISE_, on when an API key is set. The Community allowance is small and
// undocumented (a few dozen to 100 lookups a day, sources disagree), so the default rate is one
// lookup a second and the cache does the rest.
var Registration = enrich.Register[Config](Name, func(cfg *Config, deps enrich.Deps) (enrich.Provider, error) {
	return New(cfg, deps.HTTPClient)
}, enrich.Defaults{"BASE_URL": DefaultBaseURL, "RATE_LIMIT": "1", "RATE_BURST": "5"})
