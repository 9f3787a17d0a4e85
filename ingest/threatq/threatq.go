// Package threatq polls ThreatQ for IP indicators ("IP Address" and "IPv6 Address") added or
// updated since a cursor, oldest first, through the sinks/threatq client (one token cache,
// one retry policy).
//
// One poll is POST /api/indicators/query?limit=&offset=&sort=updated_at,id&with=type,status,tags with
// {"criteria": {}, "filters": {"+and": [{"+or": [{"type_name": "IP Address"}, {"type_name":
// "IPv6 Address"}]}, {"updated_at": {"+gt": from, "+lt": to}}]}}: the page-through with limit
// and offset and the "+and"/"updated_at" "+gt"/"+lt" date filter are ThreatQuotient's own
// ThreatLibrary helper's, type_name filters Cortex XSOAR ThreatQ v2's, sorting on updated_at
// Elastic ti_threatq's. The secondary sort key (id) is this package's assumption; the poller
// does not depend on it for correctness, only for progress within one second (see Poll).
package threatq

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
	tq "github.com/threatpipe/threatpipe/sinks/threatq"
)

// Name is the source's stable identifier.
const Name = "threatq"

// EnvPrefix is the prefix of the poller's variables.
const EnvPrefix = config.Prefix + "INGEST_THREATQ_"

// MaxPageSize bounds PAGE_SIZE: ThreatQ's own helper pages by 1000.
const MaxPageSize = 1000

// maxSkipPages bounds the pages one Poll reads that hold only indicators the cursor has
// passed (many updated in the same second as the cursor).
const maxSkipPages = 50

// Config is the poller's configuration, parsed by caarlos0/env with EnvPrefix.
type Config struct {
	tq.Auth
	Since    time.Duration `env:"SINCE" envDefault:"24h" desc:"How far back the first poll (no cursor yet) reaches."`
	PageSize int           `env:"PAGE_SIZE" envDefault:"100" desc:"Indicators asked for per request (1-1000); a poll's limit lowers it."`
	sinkhttp.PolicyConfig
}

// Resolve applies the _FILE secrets and validates, naming variables.
func (c *Config) Resolve() error {
	errs := []error{c.Auth.Resolve(EnvPrefix)}
	if !c.Configured() {
		return errors.Join(errs...)
	}
	if c.Since <= 0 {
		errs = append(errs, fmt.Errorf("%sSINCE: must be greater than zero", EnvPrefix))
	}
	if c.PageSize < 1 || c.PageSize > MaxPageSize {
		errs = append(errs, fmt.Errorf("%sPAGE_SIZE: %d is not 1 to %d", EnvPrefix, c.PageSize, MaxPageSize))
	}
	errs = append(errs, c.PolicyConfig.Validate(EnvPrefix))
	return errors.Join(errs...)
}

// Source polls one ThreatQ instance. It holds no state between polls but the token cache.
type Source struct {
	cfg    Config
	client *tq.Client
	now    func() time.Time
}

var _ ingest.Source = (*Source)(nil)

// New builds the poller from a configured Config. hc may be nil.
func New(cfg *Config, hc *http.Client) (*Source, error) {
	if cfg == nil {
		return nil, errors.New("threatq ingest: nil config")
	}
	c := *cfg
	if err := c.Resolve(); err != nil {
		return nil, err
	}
	if !c.Configured() {
		return nil, fmt.Errorf("%sURL is not set", EnvPrefix)
	}
	client, err := tq.NewClient("threatq ingest", c.Auth, hc, c.Policy())
	if err != nil {
		return nil, err
	}
	return &Source{cfg: c, client: client, now: time.Now}, nil
}

// Name implements ingest.Source.
func (s *Source) Name() string { return Name }

// Poll implements ingest.Source. It asks for the indicators updated at or after the cursor's
// second and before the current one (a second still under way may gain indicators, which
// would then sort before ones already returned), oldest first, and drops those at or before
// the cursor's (updated_at, id): ties on updated_at are neither skipped nor repeated.
// Indicators of other types, should the API return any, are passed over but move the cursor.
func (s *Source) Poll(ctx context.Context, cursor string, limit int) (ingest.Page, error) {
	cur, err := s.start(cursor)
	if err != nil {
		return ingest.Page{}, err
	}
	size := s.cfg.PageSize
	if limit > 0 {
		size = min(size, limit)
	}
	body := filter(cur.at, s.now().UTC().Truncate(time.Second))
	next, out := cur, []ingest.Indicator{}
	for offset, pages := 0, 0; ; pages++ {
		page, err := s.page(ctx, body, size, offset)
		if err != nil {
			return ingest.Page{}, err
		}
		for _, ind := range page.Data {
			at, err := tq.ParseTime(ind.UpdatedAt)
			if err != nil {
				return ingest.Page{}, fmt.Errorf("threatq ingest: indicator %d: updated_at %.40q: %w", ind.ID, ind.UpdatedAt, err)
			}
			pos := position{at, ind.ID}
			if !cur.before(pos) {
				continue
			}
			next = maxPos(next, pos)
			if isIP(ind.TypeName()) {
				out = append(out, indicator(ind, at))
			}
		}
		full := len(page.Data) == size
		if len(out) > 0 || !full || next != cur {
			return ingest.Page{Indicators: out, Next: next.String(), More: full}, nil
		}
		if pages >= maxSkipPages {
			return ingest.Page{}, fmt.Errorf("threatq ingest: more than %d indicators updated at %s; raise %sPAGE_SIZE",
				maxSkipPages*size, tq.FormatTime(cur.at), EnvPrefix)
		}
		offset += len(page.Data)
	}
}

// start is the cursor to poll from: the stored one, or Since ago.
func (s *Source) start(cursor string) (position, error) {
	if cursor == "" {
		return position{at: s.now().UTC().Add(-s.cfg.Since).Truncate(time.Second)}, nil
	}
	p, err := parseCursor(cursor)
	if err != nil {
		return position{}, fmt.Errorf("threatq ingest: cursor: %w", err)
	}
	return p, nil
}

func (s *Source) page(ctx context.Context, body map[string]any, size, offset int) (tq.Page, error) {
	q := url.Values{
		"limit": {strconv.Itoa(size)}, "offset": {strconv.Itoa(offset)},
		"sort": {"updated_at,id"}, "with": {"type,status,tags"},
	}
	raw, err := s.client.Do(ctx, http.MethodPost, tq.QueryPath, q, body)
	if err != nil {
		return tq.Page{}, fmt.Errorf("threatq ingest: %w", err)
	}
	p, err := tq.DecodePage(raw)
	if err != nil {
		return tq.Page{}, fmt.Errorf("threatq ingest: %w", err)
	}
	return p, nil
}

// filter selects IP indicators updated in [from, to): ThreatQ times have whole seconds, so
// "+gt" one second before from includes from itself.
func filter(from, to time.Time) map[string]any {
	return map[string]any{
		"criteria": map[string]any{},
		"filters": map[string]any{"+and": []any{
			map[string]any{"+or": []any{
				map[string]string{"type_name": tq.TypeIPv4},
				map[string]string{"type_name": tq.TypeIPv6},
			}},
			map[string]any{"updated_at": map[string]string{
				"+gt": tq.FormatTime(from.Add(-time.Second)),
				"+lt": tq.FormatTime(to),
			}},
		}},
	}
}

// isIP reports an IP indicator type; an answer without the type is trusted to the filter.
func isIP(typ string) bool { return typ == "" || typ == tq.TypeIPv4 || typ == tq.TypeIPv6 }

func indicator(ind tq.Indicator, at time.Time) ingest.Indicator {
	out := ingest.Indicator{Value: ind.Value, Ref: strconv.FormatInt(ind.ID, 10), Modified: at, Context: map[string]string{}}
	for _, t := range ind.Tags {
		if t.Name != "" {
			out.Tags = append(out.Tags, t.Name)
		}
	}
	if t := ind.TypeName(); t != "" {
		out.Context["type"] = t
	}
	if ind.Status != nil && ind.Status.Name != "" {
		out.Context["status"] = ind.Status.Name
	}
	if sc := ind.ScoreText(); sc != "" {
		out.Context["score"] = sc
	}
	return out
}

// position is a place in the (updated_at, id) order.
type position struct {
	at time.Time
	id int64
}

func (p position) before(q position) bool {
	if c := p.at.Compare(q.at); c != 0 {
		return c < 0
	}
	return p.id < q.id
}

func maxPos(p, q position) position {
	if p.before(q) {
		return q
	}
	return p
}

// cursorPrefix versions the cursor's spelling: "tq1:<unix seconds>:<id>".
const cursorPrefix = "tq1:"

func (p position) String() string {
	return cursorPrefix + strconv.FormatInt(p.at.Unix(), 10) + ":" + strconv.FormatInt(p.id, 10)
}

func parseCursor(s string) (position, error) {
	rest, ok := strings.CutPrefix(s, cursorPrefix)
	secs, idText, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return position{}, fmt.Errorf("%.60q is not a ThreatQ cursor", s)
	}
	sec, err1 := strconv.ParseInt(secs, 10, 64)
	id, err2 := strconv.ParseInt(idText, 10, 64)
	if err1 != nil || err2 != nil || id < 0 || sec < 0 || sec > 1<<40 {
		return position{}, fmt.Errorf("%.60q is not a ThreatQ cursor", s)
	}
	return position{time.Unix(sec, 0).UTC(), id}, nil
}
