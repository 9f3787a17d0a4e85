package threatq

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/ingest/ingesttest"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
	tq "github.com/threatpipe/threatpipe/sinks/threatq"
	"github.com/threatpipe/threatpipe/sinks/threatq/threatqtest"
)

func newSource(t *testing.T, srv *threatqtest.Server, pageSize int) *Source {
	t.Helper()
	o := srv.Options()
	cfg := &Config{
		Auth:  tq.Auth{URL: srv.URL(), ClientID: o.ClientID, ClientSecret: "s3cret"},
		Since: 24 * time.Hour, PageSize: pageSize,
		PolicyConfig: sinkhttp.PolicyConfig{AttemptTimeout: 2 * time.Second, RetryBudget: 5 * time.Second},
	}
	s, err := New(cfg, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seeds are n IP indicators updated an hour ago and later, seven to a second, so that pages
// end inside a run of equal updated_at; every tenth is an FQDN, which the poller must skip.
func seeds(base time.Time, from, n int) (ips []threatqtest.Seed, other []threatqtest.Seed) {
	for i := from; i < from+n; i++ {
		at := base.Add(time.Duration(i/7) * time.Second)
		ips = append(ips, threatqtest.Seed{Value: fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256), UpdatedAt: at, Tags: []string{"feed"}})
		if i%10 == 0 {
			other = append(other, threatqtest.Seed{Value: fmt.Sprintf("host%d.example", i), Type: "FQDN", UpdatedAt: at})
		}
	}
	return ips, other
}

func TestContract(t *testing.T) {
	ingesttest.RunContract(t, func(t *testing.T, n int) ingesttest.Seeded {
		srv := threatqtest.Start(t, threatqtest.Options{})
		base := time.Now().Add(-time.Hour)
		ips, other := seeds(base, 0, n)
		srv.Seed(append(ips, other...)...)
		seeded := n
		return ingesttest.Seeded{
			Source: newSource(t, srv, 100),
			Add: func(m int) {
				ips, _ := seeds(base.Add(30*time.Minute), seeded, m)
				srv.Seed(ips...)
				seeded += m
			},
		}
	})
}

func walk(t *testing.T, src *Source, cursor string, limit int) (all []ingest.Indicator, pages int, last string) {
	t.Helper()
	for pages = 1; pages < 100; pages++ {
		p, err := src.Poll(context.Background(), cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Indicators...)
		cursor = p.Next
		if !p.More {
			return all, pages, cursor
		}
	}
	t.Fatal("never ends")
	return
}

func TestPagesThroughSeeded(t *testing.T) {
	srv := threatqtest.Start(t, threatqtest.Options{})
	ips, other := seeds(time.Now().Add(-time.Hour), 0, 250)
	// The FQDNs are seeded first so that they interleave with the IPs in id order too.
	srv.Seed(other...)
	ids := srv.Seed(ips...)
	src := newSource(t, srv, 100)

	all, pages, _ := walk(t, src, "", 1000)
	if len(all) != 250 || pages != 3 {
		t.Fatalf("%d indicators in %d pages", len(all), pages)
	}
	for i, ind := range all {
		if ind.Ref != fmt.Sprint(ids[i]) || ind.Value != ips[i].Value || !ind.Modified.Equal(ips[i].UpdatedAt.Truncate(time.Second)) ||
			!slices.Equal(ind.Tags, []string{"feed"}) || ind.Context["type"] != tq.TypeIPv4 || ind.Context["status"] != "Active" {
			t.Fatalf("indicator %d: %+v", i, ind)
		}
	}
	// Every query asked for IP types, a page of at most 100, oldest first.
	for _, r := range srv.Requests() {
		if r.Path == tq.QueryPath && (r.Query.Get("limit") != "100" || r.Query.Get("sort") != "updated_at,id") {
			t.Fatalf("query %+v", r)
		}
	}
}

func TestResumesWithoutSkipOrRepeat(t *testing.T) {
	srv := threatqtest.Start(t, threatqtest.Options{})
	ips, other := seeds(time.Now().Add(-time.Hour), 0, 250)
	srv.Seed(append(ips, other...)...)
	src := newSource(t, srv, 100)
	for _, limit := range []int{1, 7, 13, 100} {
		t.Run(fmt.Sprint("limit=", limit), func(t *testing.T) {
			var got []string
			cursor := ""
			for polls := 0; ; polls++ {
				if polls > 1000 {
					t.Fatal("never ends")
				}
				p, err := src.Poll(context.Background(), cursor, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Indicators) > limit {
					t.Fatalf("%d indicators for limit %d", len(p.Indicators), limit)
				}
				again, err := src.Poll(context.Background(), cursor, limit)
				if err != nil || again.Next != p.Next || len(again.Indicators) != len(p.Indicators) {
					t.Fatalf("polling %q again: %+v, %v", cursor, again, err)
				}
				for _, ind := range p.Indicators {
					got = append(got, ind.Value)
				}
				cursor = p.Next
				if !p.More {
					break
				}
			}
			want := make([]string, len(ips))
			for i, s := range ips {
				want[i] = s.Value
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %d indicators, want %d in seed order", len(got), len(want))
			}
			if rest, _, _ := walk(t, src, cursor, limit); len(rest) != 0 {
				t.Fatalf("from the last cursor: %d", len(rest))
			}
		})
	}
}

func TestSkipsNonIPAndCurrentSecond(t *testing.T) {
	srv := threatqtest.Start(t, threatqtest.Options{})
	past := time.Now().Add(-time.Minute)
	srv.Seed(threatqtest.Seed{Value: "evil.example", Type: "FQDN", UpdatedAt: past},
		threatqtest.Seed{Value: "2001:db8::1", Type: tq.TypeIPv6, UpdatedAt: past},
		threatqtest.Seed{Value: "192.0.2.1", UpdatedAt: time.Now().Add(time.Hour)})
	src := newSource(t, srv, 100)
	all, _, _ := walk(t, src, "", 10)
	if len(all) != 1 || all[0].Value != "2001:db8::1" || all[0].Context["type"] != tq.TypeIPv6 {
		t.Fatalf("%+v", all)
	}
}

func TestPollErrors(t *testing.T) {
	srv := threatqtest.Start(t, threatqtest.Options{})
	src := newSource(t, srv, 100)
	if _, err := src.Poll(context.Background(), "garbage", 10); err == nil || !strings.Contains(err.Error(), "cursor") {
		t.Fatalf("bad cursor: %v", err)
	}
	srv.Fail(1, http.StatusForbidden, "")
	_, err := src.Poll(context.Background(), "", 10)
	if !sinkhttp.IsStatus(err, http.StatusForbidden) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("403: %v", err)
	}
	srv.Fail(1, http.StatusTooManyRequests, "1")
	if _, err := src.Poll(context.Background(), "", 10); err != nil {
		t.Fatalf("429 not retried: %v", err)
	}
}

func TestConfig(t *testing.T) {
	parse := func(kv map[string]string) (*Config, error) {
		var c Config
		if err := env.ParseWithOptions(&c, env.Options{Prefix: EnvPrefix, Environment: kv}); err != nil {
			return nil, err
		}
		return &c, c.Resolve()
	}
	good := func(extra ...string) map[string]string {
		m := map[string]string{EnvPrefix + "URL": "https://tq.example", EnvPrefix + "CLIENT_ID": "id",
			EnvPrefix + "USERNAME": "a@example.com", EnvPrefix + "PASSWORD": "pw"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[EnvPrefix+extra[i]] = extra[i+1]
		}
		return m
	}
	c, err := parse(good())
	if err != nil || c.Since != 24*time.Hour || c.PageSize != 100 || c.Grant() != tq.GrantPassword {
		t.Fatalf("%v %+v", err, c)
	}
	for _, tc := range [][]string{
		{"PAGE_SIZE", "0"}, {"PAGE_SIZE", "1001"}, {"SINCE", "-1h"}, {"URL", "ftp://tq.example"},
		{"CLIENT_ID", ""}, {"PASSWORD", ""}, {"RETRY_BUDGET", "1s"},
	} {
		kv := good(tc...)
		if tc[1] == "" {
			delete(kv, EnvPrefix+tc[0])
		}
		if _, err := parse(kv); err == nil || !strings.Contains(err.Error(), EnvPrefix+tc[0]) {
			t.Errorf("%v: %v", tc, err)
		}
	}
	if _, err := New(&Config{}, nil); err == nil || !strings.Contains(err.Error(), EnvPrefix+"URL") {
		t.Fatalf("unconfigured: %v", err)
	}
}

func FuzzParseCursor(f *testing.F) {
	f.Add("tq1:1700000000:42")
	f.Add("tq1:-1:0")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseCursor(s)
		if err != nil {
			return
		}
		if q, err := parseCursor(p.String()); err != nil || q != p {
			t.Fatalf("%q: round trip %v %v", s, q, err)
		}
	})
}
