package virustotal

import "github.com/threatpipe/threatpipe/enrich"

// Registration adds VirusTotal to the provider registry (enrich/providers): variables under
// THREATPIPE_VIRUSTOTAL_, on when an API key is set. The defaults are the public API's limits:
// 4 lookups a minute (0.066/s) and 500 a day.
var Registration = enrich.Register[Config](Name, func(cfg *Config, deps enrich.Deps) (enrich.Provider, error) {
	return New(cfg, deps.HTTPClient)
}, enrich.Defaults{"BASE_URL": DefaultBaseURL, "QUOTA": "500", "QUOTA_PERIOD": "day", "RATE_LIMIT": "0.066", "RATE_BURST": "4"})
