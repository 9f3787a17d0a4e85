// Package providers lists the threat-intel sources compiled into threatpipe that the
// environment configures. Adding a provider is its own package under enrich/providers plus one
// line here. (The IP lists source is configured by the enrichment rules, not the environment.)
package providers

import (
	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/abuseipdb"
	"github.com/threatpipe/threatpipe/enrich/providers/criminalip"
	"github.com/threatpipe/threatpipe/enrich/providers/geoip"
	"github.com/threatpipe/threatpipe/enrich/providers/greynoise"
	"github.com/threatpipe/threatpipe/enrich/providers/internetdb"
	"github.com/threatpipe/threatpipe/enrich/providers/otx"
	"github.com/threatpipe/threatpipe/enrich/providers/virustotal"
)

// All returns every provider's registration. Cascade order and context precedence are the
// enrichment rules' (docs/enrichment.md), not this list's.
func All() []enrich.Registration {
	return []enrich.Registration{
		criminalip.Registration,
		abuseipdb.Registration,
		virustotal.Registration,
		greynoise.Registration,
		otx.Registration,
		internetdb.Registration,
		geoip.Registration,
	}
}
