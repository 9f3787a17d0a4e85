package abuseipdb

import (
	"testing"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/enrich/providers/providertest"
	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

func TestContract(t *testing.T) {
	providertest.Run(t, providertest.Subject{
		Dialect: sim.AbuseIPDB{},
		New: func(t *testing.T, baseURL, key string, maxBody int64) enrich.Provider {
			c, err := New(&Config{Config: providerhttp.Config{APIKey: config.Secret(key), BaseURL: baseURL, MaxBodyBytes: maxBody}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	})
}
