package taxii

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// Name is the source's name in THREATPIPE_INGEST_SOURCES and in the events' source ("tip:taxii").
const Name = "taxii"

// EnvPrefix is the prefix of the source's variables (ingest.Register derives the same).
const EnvPrefix = ingest.ConfigPrefix + "TAXII_"

// Config is the TAXII 2.1 source's configuration, parsed with EnvPrefix.
type Config struct {
	URL              string        `env:"URL" desc:"The TAXII 2.1 collection to poll: its URL (https://host/<api-root>/collections/<id>/), or the API root's URL with THREATPIPE_INGEST_TAXII_COLLECTION. https, or http to loopback only."`
	Collection       string        `env:"COLLECTION" desc:"The collection's id, when THREATPIPE_INGEST_TAXII_URL is the API root."`
	Username         string        `env:"USERNAME" desc:"HTTP basic authentication user (with THREATPIPE_INGEST_TAXII_PASSWORD)."`
	Password         config.Secret `env:"PASSWORD" desc:"HTTP basic authentication password." secret:"true"`
	PasswordFromFile config.Secret `env:"PASSWORD_FILE,file" desc:"File holding the basic authentication password (instead of THREATPIPE_INGEST_TAXII_PASSWORD)." secret:"true"`
	Token            config.Secret `env:"TOKEN" desc:"Bearer token (Authorization: Bearer), instead of basic authentication." secret:"true"`
	TokenFromFile    config.Secret `env:"TOKEN_FILE,file" desc:"File holding the bearer token (instead of THREATPIPE_INGEST_TAXII_TOKEN)." secret:"true"`
	Since            string        `env:"SINCE" desc:"RFC 3339 time: the first poll asks for the objects added after it (added_after). Unset: the whole collection. Once a cursor is stored it is not read again."`
	PageSize         int           `env:"PAGE_SIZE" desc:"Objects asked for per request (limit), when the server wants fewer than THREATPIPE_INGEST_PAGE_SIZE. Unset: THREATPIPE_INGEST_PAGE_SIZE."`

	objectsURL *url.URL
	since      time.Time
}

// Resolve applies the _FILE secrets and validates, naming variables; errors never quote the URL
// or a credential. It is idempotent.
func (c *Config) Resolve() error {
	var errs []error
	if err := config.ResolveSecretFile(&c.Password, c.PasswordFromFile, EnvPrefix+"PASSWORD"); err != nil {
		errs = append(errs, err)
	} else {
		c.PasswordFromFile = ""
	}
	if err := config.ResolveSecretFile(&c.Token, c.TokenFromFile, EnvPrefix+"TOKEN"); err != nil {
		errs = append(errs, err)
	} else {
		c.TokenFromFile = ""
	}
	errs = append(errs, c.resolveURL(), c.checkAuth())
	if c.Since != "" {
		t, err := time.Parse(time.RFC3339Nano, c.Since)
		if err != nil {
			errs = append(errs, fmt.Errorf("%sSINCE: %q is not an RFC 3339 time", EnvPrefix, c.Since))
		}
		c.since = t
	}
	if c.PageSize < 0 || c.PageSize > 10000 {
		errs = append(errs, fmt.Errorf("%sPAGE_SIZE: %d is not 1-10000", EnvPrefix, c.PageSize))
	}
	return errors.Join(errs...)
}

// resolveURL finds the objects endpoint: <api-root>/collections/<id>/objects/.
func (c *Config) resolveURL() error {
	if c.URL == "" {
		return fmt.Errorf("%sURL: is required with %s in %sSOURCES", EnvPrefix, Name, ingest.ConfigPrefix)
	}
	if err := sinkhttp.CheckBaseURL(EnvPrefix+"URL", c.URL); err != nil {
		return err
	}
	u, _ := url.Parse(c.URL) // checked above
	root, id := strings.TrimSuffix(u.Path, "/"), strings.TrimSpace(c.Collection)
	if before, after, ok := cutLast(root, "/collections/"); ok && !strings.Contains(after, "/") {
		if id != "" && id != after {
			return fmt.Errorf("%sCOLLECTION: differs from the collection in %sURL: set one", EnvPrefix, EnvPrefix)
		}
		root, id = before, after
	}
	if id == "" || strings.ContainsAny(id, "/?#") {
		return fmt.Errorf("%sCOLLECTION: is required (a collection id) unless %sURL is the collection's URL", EnvPrefix, EnvPrefix)
	}
	obj := *u
	obj.Path = root + "/collections/" + id + "/objects/"
	obj.RawPath = ""
	c.objectsURL = &obj
	return nil
}

func (c *Config) checkAuth() error {
	basic := c.Username != "" || c.Password != ""
	switch {
	case basic && c.Token != "":
		return fmt.Errorf("%sTOKEN: set either a bearer token or %sUSERNAME and PASSWORD, not both", EnvPrefix, EnvPrefix)
	case basic && (c.Username == "" || c.Password == ""):
		return fmt.Errorf("%sUSERNAME: basic authentication needs both %sUSERNAME and %sPASSWORD", EnvPrefix, EnvPrefix, EnvPrefix)
	case c.Token != "":
		return sinkhttp.CheckHeaderSecret(EnvPrefix+"TOKEN", c.Token.Reveal())
	}
	return nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
