// Package all lists the threat-intel platforms compiled into threatpipe's ingest role. Adding a
// platform is its package under ingest/ plus one line here.
package all

import (
	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/ingest/misp"
	"github.com/threatpipe/threatpipe/ingest/taxii"
	"github.com/threatpipe/threatpipe/ingest/threatq"
)

// Registrations returns every platform's registration.
func Registrations() []ingest.Registration {
	return []ingest.Registration{
		ingest.Register(taxii.Name, taxii.New),
		ingest.Register(misp.Name, misp.New),
		ingest.Register(threatq.Name, threatq.New),
	}
}
