package internetdb

import (
	"testing"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/enrich/providers/providertest"
	"github.com/threatpipe/threatpipe/enrich/sim"
)

func TestContract(t *testing.T) {
	providertest.Run(t, providertest.Subject{
		Dialect: sim.InternetDB{},
		Keyless: true,
		New: func(t *testing.T, baseURL, _ string, maxBody int64) enrich.Provider {
			c, err := New(&Config{providerhttp.Config{BaseURL: baseURL, MaxBodyBytes: maxBody}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	})
}
