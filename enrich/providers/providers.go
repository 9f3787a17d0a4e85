// Package providers lists the threat-intel providers compiled into threatpipe. Adding a provider
// is its own package under enrich/providers plus one line here.
package providers

import (
	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/criminalip"
)

// All returns every provider's registration, in the order their context fields take precedence.
func All() []enrich.Registration {
	return []enrich.Registration{
		criminalip.Registration,
	}
}
