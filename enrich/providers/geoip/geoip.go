// Package geoip is an offline source: country, city and coordinates from a MaxMind-format
// City or Country database, and the autonomous system from an ASN database (GeoLite2, GeoIP2,
// DB-IP). It spends no quota and casts no vote in the fused score (verdict unrated): it adds
// context to the scored event. The files are reloaded when they change (Run).
package geoip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/health"
)

// Name is the source's stable identifier.
const Name = "geoip"

// Provider looks addresses up in the configured databases. It is safe for concurrent use,
// including lookups during a reload.
type Provider struct {
	city, asn *db // nil when not configured
	interval  time.Duration
	now       func() time.Time
}

var (
	_ enrich.Provider     = (*Provider)(nil)
	_ enrich.FileReporter = (*Provider)(nil)
)

// New opens the databases cfg names. cfg must have been Resolved; log may be nil. Errors name
// the variable.
func New(cfg *Config, log *zap.Logger) (*Provider, error) {
	if cfg == nil || !cfg.Configured() {
		return nil, fmt.Errorf("neither %sCITY_DB nor %sASN_DB is set", EnvPrefix, EnvPrefix)
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("provider", Name))
	p := &Provider{interval: cfg.ReloadInterval, now: time.Now}
	if p.interval <= 0 {
		p.interval = time.Minute
	}
	for _, f := range cfg.files() {
		d, err := openDB(f, log, p.now)
		if err != nil {
			p.Close()
			return nil, err
		}
		if f.kind == kindASN {
			p.asn = d
		} else {
			p.city = d
		}
	}
	return p, nil
}

// Name implements enrich.Provider.
func (p *Provider) Name() string { return Name }

// Cost implements enrich.Provider: local files.
func (p *Provider) Cost() enrich.Cost { return enrich.CostOffline }

// Run checks the files every reload interval and swaps in a version that changed, until ctx
// ends; it returns nil then. A version that fails to load is logged and the loaded one kept.
func (p *Provider) Run(ctx context.Context) error {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			p.poll()
		}
	}
}

func (p *Provider) poll() {
	for _, d := range p.dbs() {
		d.poll(p.now())
	}
}

func (p *Provider) dbs() []*db {
	var out []*db
	for _, d := range []*db{p.city, p.asn} {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// Files implements enrich.FileReporter: the databases, as last loaded.
func (p *Provider) Files() []health.File {
	var out []health.File
	for _, d := range p.dbs() {
		out = append(out, d.snapshot())
	}
	return out
}

// Close releases the databases; lookups after it fail with KindUnavailable.
func (p *Provider) Close() error {
	p.city.close()
	p.asn.close()
	return nil
}

// cityRecord is the part of a City or Country record the source uses.
type cityRecord struct {
	City struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Country           isoCode `maxminddb:"country"`
	RegisteredCountry isoCode `maxminddb:"registered_country"`
	Location          struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

type isoCode struct {
	ISOCode string `maxminddb:"iso_code"`
}

// asnRecord is an ASN record.
type asnRecord struct {
	Number       uint32 `maxminddb:"autonomous_system_number"`
	Organization string `maxminddb:"autonomous_system_organization"`
}

// Lookup implements enrich.Provider. The answer is unrated with score 0: location and network
// are context, not reputation. An address neither database has is not_found.
func (p *Provider) Lookup(ctx context.Context, ind event.Indicator) (*enrich.Result, error) {
	addr, err := providerhttp.IndicatorIP(Name, ind)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, &enrich.Error{Provider: Name, Kind: enrich.KindTransient, Err: err}
	}
	var city cityRecord
	var as asnRecord
	inCity, err := p.city.lookup(addr, &city)
	if err != nil {
		return nil, p.fail("City", addr, err)
	}
	inASN, err := p.asn.lookup(addr, &as)
	if err != nil {
		return nil, p.fail("ASN", addr, err)
	}
	res := &enrich.Result{Verdict: event.VerdictUnrated}
	if inCity {
		fillCity(res, &city)
	}
	if inASN && as.Number != 0 {
		res.ASNumber, res.ASOrganization, res.ISP = int64(as.Number), as.Organization, as.Organization
	}
	res.Detail = detail(res)
	if res.Detail == "" {
		return &enrich.Result{Verdict: enrich.VerdictNotFound, Detail: "GeoIP: not in the databases"}, nil
	}
	return res, nil
}

func (p *Provider) fail(db string, addr netip.Addr, err error) error {
	if errors.Is(err, errClosed) {
		return &enrich.Error{Provider: Name, Kind: enrich.KindUnavailable, Message: "closed"}
	}
	// A record that does not decode is a broken or unexpected file; a reload may fix it.
	return &enrich.Error{Provider: Name, Kind: enrich.KindTransient,
		Message: fmt.Sprintf("reading the %s database for %s", db, addr), Err: err}
}

func fillCity(res *enrich.Result, c *cityRecord) {
	res.CountryISO = c.Country.ISOCode
	if res.CountryISO == "" {
		res.CountryISO = c.RegisteredCountry.ISOCode
	}
	res.City = c.City.Names.EN
	if lat, lon := c.Location.Latitude, c.Location.Longitude; lat != nil && lon != nil {
		res.Location = &enrich.Geo{Lat: *lat, Lon: *lon}
	}
}

// detail is "GeoIP: AS64500 EXAMPLE-NET, Amsterdam, NL", or "" when nothing is known.
func detail(res *enrich.Result) string {
	var parts []string
	if res.ASNumber != 0 {
		parts = append(parts, strings.TrimSpace(fmt.Sprintf("AS%d %s", res.ASNumber, res.ASOrganization)))
	}
	for _, s := range []string{res.City, res.CountryISO} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		if res.Location == nil {
			return ""
		}
		parts = append(parts, fmt.Sprintf("%.4f,%.4f", res.Location.Lat, res.Location.Lon))
	}
	return "GeoIP: " + strings.Join(parts, ", ")
}
