package abuseipdb

import "github.com/threatpipe/threatpipe/enrich"

// Registration adds AbuseIPDB to the provider registry (enrich/providers): variables under
// THREATPIPE_ABUSEIPDB_, on when an API key is set. The defaults are the free (Standard)
// plan: 1,000 checks a day.
var Registration = enrich.Register[Config](Name, func(cfg *Config, deps enrich.Deps) (enrich.Provider, error) {
	return New(cfg, deps.HTTPClient)
}, enrich.Defaults{"BASE_URL": DefaultBaseURL, "QUOTA": "1000", "QUOTA_PERIOD": "day", "RATE_LIMIT": "1", "RATE_BURST": "5"})
