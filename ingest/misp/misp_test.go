package misp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/ingest/ingesttest"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks/misp/misptest"
)

const testKey = "misp-ingest-TEST-k3y-0123456789"

func testConfig(url string) *Config {
	return &Config{URL: url, Key: config.Secret(testKey), Since: 24 * time.Hour, PageSize: 100, Settle: 10 * time.Second, Timeout: 5 * time.Second}
}

func newSource(t *testing.T, cfg *Config) *Source {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seed stores n attributes, three to a second (as an event's import shares one), every fourth
// of a type that is no IP address, from base on.
func seed(f *misptest.Server, event string, base int64, from, n int) {
	for i := from; i < from+n; i++ {
		a := misptest.Attribute{EventID: event, Type: "ip-dst", Value: fmt.Sprintf("198.51.%d.%d", i/250, i%250+1), Timestamp: base + int64(i/3)}
		if i%2 == 1 {
			a.Type = "ip-src"
		}
		f.SeedAttribute(a)
		if i%4 == 0 {
			f.SeedAttribute(misptest.Attribute{EventID: event, Type: "domain", Value: fmt.Sprintf("d%d.example", i), Timestamp: base + int64(i/3)})
		}
	}
}

func TestContract(t *testing.T) {
	ingesttest.RunContract(t, func(t *testing.T, n int) ingesttest.Seeded {
		f := misptest.New(t, testKey)
		ev := f.SeedEvent("feed")
		base := time.Now().Add(-2 * time.Hour).Unix()
		seed(f, ev, base, 0, n)
		total := n
		cfg := testConfig(f.URL)
		cfg.PageSize = 7
		return ingesttest.Seeded{Source: newSource(t, cfg), Add: func(m int) {
			seed(f, ev, base+3600, total, m)
			total += m
		}}
	})
}

func walk(t *testing.T, s *Source, cursor string, limit int) ([]ingest.Indicator, []string) {
	t.Helper()
	var all []ingest.Indicator
	cursors := []string{cursor}
	for range 100 {
		p, err := s.Poll(context.Background(), cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Indicators...)
		cursor = p.Next
		cursors = append(cursors, cursor)
		if !p.More {
			return all, cursors
		}
	}
	t.Fatal("still More after 100 polls")
	return nil, nil
}

func TestPagesThrough250(t *testing.T) {
	f := misptest.New(t, testKey)
	ev := f.SeedEvent("feed")
	seed(f, ev, time.Now().Add(-3*time.Hour).Unix(), 0, 250)
	f.SeedAttribute(misptest.Attribute{EventID: ev, Type: "ip-dst", Value: "203.0.113.1", Timestamp: time.Now().Add(-48 * time.Hour).Unix()}) // before SINCE
	s := newSource(t, testConfig(f.URL))
	all, cursors := walk(t, s, "", 100)
	seen := map[string]bool{}
	for _, ind := range all {
		if seen[ind.Ref] || ind.Value == "203.0.113.1" || strings.HasSuffix(ind.Value, ".example") || ind.Modified.IsZero() {
			t.Fatalf("indicator %+v (repeat, too old or no IP)", ind)
		}
		seen[ind.Ref] = true
	}
	if len(all) != 250 || len(cursors) != 4 {
		t.Fatalf("%d indicators over %d polls", len(all), len(cursors)-1)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Modified.Before(all[i-1].Modified) {
			t.Fatalf("not oldest first at %d", i)
		}
	}
	// Resuming from every cursor, with another limit, gives exactly the rest.
	for i, c := range cursors[:len(cursors)-1] {
		rest, _ := walk(t, s, c, 33)
		if want := all[min(i*100, len(all)):]; len(rest) != len(want) || (len(rest) > 0 && rest[0].Ref != want[0].Ref) {
			t.Fatalf("from cursor %d %q: %d indicators, want %d", i, c, len(rest), len(want))
		}
	}
	// A mid-second cursor: limit 1 stops inside a group of three sharing a timestamp.
	p1, err := s.Poll(context.Background(), "", 1)
	if err != nil || len(p1.Indicators) != 1 || !p1.More {
		t.Fatalf("%+v %v", p1, err)
	}
	p2, err := s.Poll(context.Background(), p1.Next, 1)
	if err != nil || len(p2.Indicators) != 1 || p2.Indicators[0].Ref != all[1].Ref || !p2.Indicators[0].Modified.Equal(p1.Indicators[0].Modified) {
		t.Fatalf("second poll %+v %v, want %s at the same second", p2, err, all[1].Ref)
	}
}

func TestSettleAndTags(t *testing.T) {
	f := misptest.New(t, testKey)
	ev := f.SeedEvent("feed")
	old := time.Now().Add(-time.Hour).Unix()
	f.SeedAttribute(misptest.Attribute{EventID: ev, Type: "ip-dst", Value: "192.0.2.1", Timestamp: old, Tags: []string{"tlp:green"}})
	f.SeedAttribute(misptest.Attribute{EventID: ev, Type: "ip-src", Value: "192.0.2.2", Timestamp: old})
	f.SeedAttribute(misptest.Attribute{EventID: ev, Type: "ip-src", Value: "192.0.2.3", Timestamp: time.Now().Unix(), Tags: []string{"tlp:green"}})
	cfg := testConfig(f.URL)
	cfg.Tags = []string{"tlp:green"}
	p, err := newSource(t, cfg).Poll(context.Background(), "", 10)
	if err != nil || len(p.Indicators) != 1 || p.Indicators[0].Value != "192.0.2.1" || p.Indicators[0].Tags[0] != "tlp:green" ||
		p.Indicators[0].Context["event_id"] != ev || p.More {
		t.Fatalf("%+v %v", p, err)
	}
}

func TestErrors(t *testing.T) {
	f := misptest.New(t, testKey)
	cfg := testConfig(f.URL)
	cfg.Key = "wrong"
	_, err := newSource(t, cfg).Poll(context.Background(), "", 10)
	if !ingest.IsAuth(err) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("bad key: %v", err)
	}
	s := newSource(t, testConfig(f.URL))
	f.Fail(misptest.Fault{Status: 500}, misptest.Fault{Status: 500}, misptest.Fault{Status: 500}, misptest.Fault{Status: 500},
		misptest.Fault{Status: 500}, misptest.Fault{Status: 500}, misptest.Fault{Status: 500}, misptest.Fault{Status: 500})
	s.client.SetInitialBackoff(time.Millisecond)
	if _, err := s.Poll(context.Background(), "", 10); err != nil {
		t.Fatalf("5xx not retried: %v", err)
	}
	for _, bad := range []string{"x", "v1:1:2", "v1:-1:0:0", "v2:1:1:1"} {
		if _, err := s.Poll(context.Background(), bad, 10); err == nil {
			t.Errorf("cursor %q accepted", bad)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.URL = "" }, "URL"},
		{func(c *Config) { c.URL = "http://misp.example" }, "URL"},
		{func(c *Config) { c.Key = "" }, "KEY"},
		{func(c *Config) { c.Key = "a b" }, "KEY"},
		{func(c *Config) { c.Since = 0 }, "SINCE"},
		{func(c *Config) { c.PageSize = 501 }, "PAGE_SIZE"},
		{func(c *Config) { c.Tags = []string{" "} }, "TAGS"},
		{func(c *Config) { c.Settle = -1 }, "SETTLE"},
		{func(c *Config) { c.Timeout = 0 }, "TIMEOUT"},
	} {
		c := testConfig("https://misp.example")
		tt.mod(c)
		if err := c.Resolve(); err == nil || !strings.Contains(err.Error(), EnvPrefix+tt.want) {
			t.Errorf("want an error naming %s%s, got %v", EnvPrefix, tt.want, err)
		}
	}
}
