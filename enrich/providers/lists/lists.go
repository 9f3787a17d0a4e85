// Package lists is an offline source: named files of addresses and CIDRs (Spamhaus DROP,
// FireHOL netsets, Tor exit lists, MISP warninglists, plain lists), each of a kind that says
// what a hit means. It spends no quota. The lists are declared in the enrichment rules; files
// are reloaded when they change (Run).
package lists

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/health"
)

// Name is the source's stable identifier.
const Name = "lists"

// BlockScore is the score of an address on a block list.
const BlockScore = 90

// DefaultReloadInterval is how often files are checked for changes unless Options say.
const DefaultReloadInterval = 30 * time.Second

// Def declares one list.
type Def struct {
	Name   string // [a-z0-9][a-z0-9_.-]{0,62}: stable, it appears in scored events
	Path   string
	Kind   string // event.ListBlock, event.ListBenign or event.ListTag
	Format string // FormatAuto (default), FormatPlain, FormatNetset, FormatSpamhaus, FormatTorExit, FormatMISP
	// Tag is the tag a hit adds. Default: "tor" for FormatTorExit, else the list's name for a
	// tag list; none for other kinds unless set.
	Tag string
}

var (
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	tagPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.:-]{0,62}$`)
)

// normalise validates d and applies the defaults.
func (d Def) normalise() (Def, error) {
	if d.Format == "" {
		d.Format = FormatAuto
	}
	if d.Tag == "" {
		switch {
		case d.Format == FormatTorExit:
			d.Tag = "tor"
		case d.Kind == event.ListTag:
			d.Tag = d.Name
		}
	}
	switch {
	case !namePattern.MatchString(d.Name):
		return d, fmt.Errorf("name must match %s", namePattern)
	case d.Kind != event.ListBlock && d.Kind != event.ListBenign && d.Kind != event.ListTag:
		return d, fmt.Errorf("kind %q is not block, benign or tag", d.Kind)
	case !slices.Contains([]string{FormatAuto, FormatPlain, FormatNetset, FormatSpamhaus, FormatTorExit, FormatMISP}, d.Format):
		return d, fmt.Errorf("format %q is not auto, plain, netset, spamhaus_drop, tor_exit or misp_warninglist", d.Format)
	case d.Path == "":
		return d, fmt.Errorf("path is empty")
	case d.Tag != "" && !tagPattern.MatchString(d.Tag):
		return d, fmt.Errorf("tag %q must match %s", d.Tag, tagPattern)
	}
	return d, nil
}

// Options tune a Source.
type Options struct {
	ReloadInterval time.Duration    // how often files are checked for changes; default 30s
	Log            *zap.Logger      // default: none
	Now            func() time.Time // default time.Now; stamps the LoadedAt of Files
}

// Source looks addresses up in every list. It is safe for concurrent use, including lookups
// during a reload.
type Source struct {
	lists    []*list
	interval time.Duration
}

var (
	_ enrich.Provider     = (*Source)(nil)
	_ enrich.FileReporter = (*Source)(nil)
)

// New validates defs and loads every file. Errors name the list (and its file).
func New(defs []Def, opts Options) (*Source, error) {
	return newSource(defs, opts, defaultLimits())
}

func newSource(defs []Def, opts Options, lim limits) (*Source, error) {
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = DefaultReloadInterval
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Log.With(zap.String("provider", Name))
	s := &Source{interval: opts.ReloadInterval}
	names := make(map[string]bool, len(defs))
	for i, d := range defs {
		nd, err := d.normalise()
		if err != nil {
			return nil, fmt.Errorf("lists: list %d (%q): %w", i+1, d.Name, err)
		}
		if names[nd.Name] {
			return nil, fmt.Errorf("lists: list %q is declared twice", nd.Name)
		}
		names[nd.Name] = true
		l := newList(nd, lim, log, opts.Now)
		if err := l.load(); err != nil {
			return nil, err
		}
		s.lists = append(s.lists, l)
	}
	return s, nil
}

// Name implements enrich.Provider.
func (s *Source) Name() string { return Name }

// Cost implements enrich.Provider: local files.
func (s *Source) Cost() enrich.Cost { return enrich.CostOffline }

// Files implements enrich.FileReporter: every list, in definition order, as last loaded.
func (s *Source) Files() []health.File {
	out := make([]health.File, len(s.lists))
	for i, l := range s.lists {
		out[i] = l.snapshot()
	}
	return out
}

// Run checks the files every reload interval and swaps in a version that changed, until ctx
// ends; it returns nil then.
func (s *Source) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.poll()
		}
	}
}

func (s *Source) poll() {
	for _, l := range s.lists {
		l.poll()
	}
}

// Lookup implements enrich.Provider: every list that contains the address, with the longest
// matching entry of each. A block hit makes the answer malicious (BlockScore); otherwise a
// benign hit makes it benign, naming the list as the Service (which caps the fused score);
// tag hits alone leave it unrated with their tags; no hit is not_found.
func (s *Source) Lookup(ctx context.Context, ind event.Indicator) (*enrich.Result, error) {
	addr, err := providerhttp.IndicatorIP(Name, ind)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, &enrich.Error{Provider: Name, Kind: enrich.KindTransient, Err: err}
	}
	var hits []event.ListHit
	host := netip.PrefixFrom(addr, addr.BitLen())
	for _, l := range s.lists {
		t := l.cur.Load()
		if !t.Contains(addr) { // the cheap test first: most addresses are on no list
			continue
		}
		if pfx, ok := t.LookupPrefixLPM(host); ok {
			hits = append(hits, event.ListHit{Name: l.def.Name, Kind: l.def.Kind, Prefix: pfx.String(), Tag: l.def.Tag})
		}
	}
	return answer(hits), nil
}

// answer turns the hits into a Result.
func answer(hits []event.ListHit) *enrich.Result {
	if len(hits) == 0 {
		return &enrich.Result{Verdict: enrich.VerdictNotFound, Detail: "lists: on no list"}
	}
	res := &enrich.Result{Verdict: event.VerdictUnrated, Lists: hits}
	parts := make([]string, len(hits))
	benign := ""
	for i, h := range hits {
		parts[i] = fmt.Sprintf("%s (%s)", h.Name, h.Prefix)
		if h.Tag != "" {
			res.Tags = append(res.Tags, h.Tag)
		}
		switch {
		case h.Kind == event.ListBlock:
			res.Verdict, res.Score = enrich.VerdictMalicious, BlockScore
		case h.Kind == event.ListBenign && benign == "":
			benign = h.Name
		}
	}
	if res.Verdict != enrich.VerdictMalicious && benign != "" {
		res.Verdict, res.Service = enrich.VerdictBenign, benign
	}
	slices.Sort(res.Tags)
	res.Tags = slices.Compact(res.Tags)
	res.Detail = "lists: " + strings.Join(parts, ", ")
	return res
}
