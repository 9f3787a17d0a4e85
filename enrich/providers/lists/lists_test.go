package lists

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/health"
)

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func fixture(name string) string { return filepath.Join("testdata", name) }

// writeList writes content to a file in dir with its own modification time, so that a poll
// sees every change however fast the test runs.
func writeList(t testing.TB, path, content string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func newTestSource(t testing.TB, defs ...Def) *Source {
	t.Helper()
	s, err := New(defs, Options{Now: func() time.Time { return epoch }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ind(ip string) event.Indicator {
	a := netip.MustParseAddr(ip)
	typ := event.IPv4
	if a.Unmap().Is6() {
		typ = event.IPv6
	}
	return event.Indicator{Type: typ, Value: ip, Addr: a}
}

func lookup(t testing.TB, s *Source, ip string) *enrich.Result {
	t.Helper()
	res, err := s.Lookup(context.Background(), ind(ip))
	if err != nil {
		t.Fatalf("%s: %v", ip, err)
	}
	return res
}

// standard declares a list of each kind over the fixtures, plus a small benign CDN list.
func standard(t *testing.T) *Source {
	cdn := filepath.Join(t.TempDir(), "cdn.txt")
	writeList(t, cdn, "203.0.113.50/32\n2001:db8:7::/48\n", epoch)
	return newTestSource(t,
		Def{Name: "spamhaus-drop", Path: fixture("drop.txt"), Kind: event.ListBlock},
		Def{Name: "tor-exits", Path: fixture("exit-addresses"), Kind: event.ListTag, Format: FormatTorExit},
		Def{Name: "public-dns", Path: fixture("misp_public_dns.json"), Kind: event.ListBenign},
		Def{Name: "firehol_level1", Path: fixture("firehol_level1.netset"), Kind: event.ListBlock, Format: FormatNetset},
		Def{Name: "cdn", Path: cdn, Kind: event.ListBenign},
		Def{Name: "tor-bulk", Path: fixture("torbulkexitlist"), Kind: event.ListTag, Tag: "tor"},
	)
}

func TestLookupVerdicts(t *testing.T) {
	s := standard(t)
	if s.Name() != "lists" || s.Cost() != enrich.CostOffline {
		t.Fatalf("name %q cost %q", s.Name(), s.Cost())
	}
	for _, tc := range []struct {
		ip      string
		verdict event.Verdict
		score   int
		service string
		tags    []string
		detail  string
	}{
		{"198.51.100.7", event.VerdictMalicious, BlockScore, "", []string{"tor"},
			"lists: spamhaus-drop (198.51.100.0/24), tor-exits (198.51.100.7/32), firehol_level1 (198.51.100.7/32), tor-bulk (198.51.100.7/32)"},
		{"::ffff:198.51.100.200", event.VerdictMalicious, BlockScore, "", nil, "lists: spamhaus-drop (198.51.100.0/24)"},
		{"8.8.8.8", event.VerdictBenign, 0, "public-dns", nil, "lists: public-dns (8.8.8.8/32)"},
		{"2606:4700:4700::1111", event.VerdictBenign, 0, "public-dns", nil, "lists: public-dns (2606:4700:4700::/48)"},
		// A tag hit and a benign hit: benign, still tagged.
		{"203.0.113.50", event.VerdictBenign, 0, "cdn", []string{"tor"}, "lists: tor-exits (203.0.113.50/32), cdn (203.0.113.50/32), tor-bulk (203.0.113.50/32)"},
		{"2001:db8:7::1", event.VerdictBenign, 0, "cdn", []string{"tor"}, "lists: cdn (2001:db8:7::/48), tor-bulk (2001:db8:7::1/128)"},
		// Tag hits only: unrated.
		{"203.0.113.51", event.VerdictUnrated, 0, "", []string{"tor"}, "lists: tor-exits (203.0.113.51/32), tor-bulk (203.0.113.51/32)"},
		{"2001:db8::1", event.VerdictNotFound, 0, "", nil, "lists: on no list"},
		{"192.0.2.200", event.VerdictMalicious, BlockScore, "", nil, "lists: firehol_level1 (192.0.2.0/24)"},
	} {
		res := lookup(t, s, tc.ip)
		if res.Verdict != tc.verdict || res.Score != tc.score || res.Service != tc.service ||
			!slices.Equal(res.Tags, tc.tags) || res.Detail != tc.detail {
			t.Errorf("%s: %+v\nwant %s %d %q %v %q", tc.ip, res, tc.verdict, tc.score, tc.service, tc.tags, tc.detail)
		}
	}
	res := lookup(t, s, "198.51.100.7")
	want := []event.ListHit{
		{Name: "spamhaus-drop", Kind: "block", Prefix: "198.51.100.0/24"},
		{Name: "tor-exits", Kind: "tag", Prefix: "198.51.100.7/32", Tag: "tor"},
		{Name: "firehol_level1", Kind: "block", Prefix: "198.51.100.7/32"},
		{Name: "tor-bulk", Kind: "tag", Prefix: "198.51.100.7/32", Tag: "tor"},
	}
	if !slices.Equal(res.Lists, want) {
		t.Fatalf("hits %+v", res.Lists)
	}
}

func TestAnswerRules(t *testing.T) {
	block := event.ListHit{Name: "drop", Kind: event.ListBlock, Prefix: "192.0.2.0/24"}
	benign := event.ListHit{Name: "resolvers", Kind: event.ListBenign, Prefix: "192.0.2.1/32", Tag: "resolver"}
	benign2 := event.ListHit{Name: "cdn", Kind: event.ListBenign, Prefix: "192.0.2.0/28"}
	scan := event.ListHit{Name: "scanners", Kind: event.ListTag, Prefix: "192.0.2.0/30", Tag: "scanner"}
	tor := event.ListHit{Name: "tor", Kind: event.ListTag, Prefix: "192.0.2.1/32", Tag: "tor"}

	// Block wins over benign; the benign list is not named as a service then.
	if res := answer([]event.ListHit{benign, block}); res.Verdict != event.VerdictMalicious || res.Service != "" || res.Score != 90 {
		t.Fatalf("%+v", res)
	}
	// The first benign list in definition order is the service.
	if res := answer([]event.ListHit{scan, benign2, benign}); res.Verdict != event.VerdictBenign || res.Service != "cdn" {
		t.Fatalf("%+v", res)
	}
	// Tags sorted and unique.
	res := answer([]event.ListHit{tor, scan, benign, tor})
	if !slices.Equal(res.Tags, []string{"resolver", "scanner", "tor"}) {
		t.Fatalf("tags %v", res.Tags)
	}
}

func TestDefaultTags(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "l.txt")
	writeList(t, path, "192.0.2.1\n", epoch)
	s := newTestSource(t,
		Def{Name: "scanners", Path: path, Kind: event.ListTag},                         // tag: its name
		Def{Name: "exits", Path: path, Kind: event.ListTag, Format: FormatTorExit},     // tag: tor
		Def{Name: "blocked", Path: path, Kind: event.ListBlock},                        // no tag
		Def{Name: "tagged-block", Path: path, Kind: event.ListBlock, Tag: "c2:botnet"}, // its own
	)
	res := lookup(t, s, "192.0.2.1")
	if !slices.Equal(res.Tags, []string{"c2:botnet", "scanners", "tor"}) || res.Lists[2].Tag != "" {
		t.Fatalf("%+v", res)
	}
}

func TestLookupErrors(t *testing.T) {
	s := standard(t)
	for _, in := range []event.Indicator{{Type: "domain-name", Value: "example.com"}, {Type: event.IPv4, Value: "not-an-ip"}} {
		_, err := s.Lookup(context.Background(), in)
		var pe *enrich.Error
		if !errors.As(err, &pe) || pe.Kind != enrich.KindPermanent {
			t.Errorf("%+v: %v, want a permanent error", in, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Lookup(ctx, ind("192.0.2.1")); err == nil {
		t.Error("no error with a cancelled context")
	}
}

func TestNoLists(t *testing.T) {
	s := newTestSource(t)
	if res := lookup(t, s, "192.0.2.1"); res.Verdict != event.VerdictNotFound || len(s.Files()) != 0 {
		t.Fatalf("%+v", res)
	}
}

func TestStats(t *testing.T) {
	s := standard(t)
	got := s.Files()
	if len(got) != 6 {
		t.Fatalf("%d stats", len(got))
	}
	want := health.File{Name: "spamhaus-drop", Kind: "block", Path: fixture("drop.txt"), Format: FormatSpamhaus,
		Entries: 4, Skipped: 1, LoadedAt: epoch}
	if got[0] != want {
		t.Fatalf("stats %+v\nwant %+v", got[0], want)
	}
	if got[2].Name != "public-dns" || got[2].Format != FormatMISP || got[2].Entries != 6 || got[2].Skipped != 3 {
		t.Fatalf("%+v", got[2])
	}
	if got[3].Format != FormatNetset || got[5].Format != FormatPlain {
		t.Fatalf("%+v %+v", got[3], got[5])
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	writeList(t, good, "192.0.2.1\n", epoch)
	broken := filepath.Join(dir, "broken.json")
	writeList(t, broken, "{\n \"list\": [", epoch)
	missing := filepath.Join(dir, "missing.txt")
	for _, tc := range []struct {
		name string
		defs []Def
		want []string
	}{
		{"bad name", []Def{{Name: "Bad Name", Path: good, Kind: "block"}}, []string{`"Bad Name"`, "name must match"}},
		{"empty name", []Def{{Path: good, Kind: "block"}}, []string{"list 1", "name must match"}},
		{"long name", []Def{{Name: strings.Repeat("a", 64), Path: good, Kind: "block"}}, []string{"name must match"}},
		{"duplicate", []Def{{Name: "a", Path: good, Kind: "block"}, {Name: "a", Path: good, Kind: "tag"}}, []string{`"a" is declared twice`}},
		{"kind", []Def{{Name: "a", Path: good, Kind: "evil"}}, []string{`"a"`, `kind "evil"`}},
		{"format", []Def{{Name: "a", Path: good, Kind: "block", Format: "csv"}}, []string{`"a"`, `format "csv"`}},
		{"tag", []Def{{Name: "a", Path: good, Kind: "tag", Tag: "Two Words"}}, []string{`"a"`, `tag "Two Words"`}},
		{"no path", []Def{{Name: "a", Kind: "block"}}, []string{`"a"`, "path is empty"}},
		{"missing", []Def{{Name: "a", Path: good, Kind: "block"}, {Name: "b", Path: missing, Kind: "block"}}, []string{`list "b"`, missing}},
		{"directory", []Def{{Name: "d", Path: dir, Kind: "block"}}, []string{`list "d"`, dir, "directory"}},
		{"broken misp", []Def{{Name: "m", Path: broken, Kind: "benign"}}, []string{`list "m"`, broken, "MISP"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.defs, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewFileOverLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.txt")
	writeList(t, path, strings.Repeat("192.0.2.1\n", 200), epoch)
	_, err := newSource([]Def{{Name: "big", Path: path, Kind: "block"}}, Options{}, limits{line: 64, file: 1024})
	if err == nil || !strings.Contains(err.Error(), `list "big"`) || !strings.Contains(err.Error(), "larger than 1024 bytes") {
		t.Fatalf("%v", err)
	}
}
