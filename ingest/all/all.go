// Package all lists the threat-intel platforms compiled into threatpipe's ingest role. Adding a
// platform is its package under ingest/ plus one line here.
package all

import (
	"net/http"

	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/ingest/taxii"
)

// Registrations returns every platform's registration.
func Registrations() []ingest.Registration {
	return []ingest.Registration{
		ingest.Register(taxii.Name, func(c *taxii.Config, h *http.Client) (ingest.Source, error) { return taxii.New(*c, h) }),
	}
}
