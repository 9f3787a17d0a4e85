package taxii

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/ingest"
	"github.com/threatpipe/threatpipe/ingest/ingesttest"
	"github.com/threatpipe/threatpipe/ingest/taxii/taxiitest"
	"github.com/threatpipe/threatpipe/pipeline/config"
)

var t0 = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

// seedIndicators adds n one-address indicators numbered from first, two per added instant so
// that pages cut between objects added together.
func seedIndicators(srv *taxiitest.Server, first, n int) {
	for i := first; i < first+n; i++ {
		id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
		pattern := fmt.Sprintf("[ipv4-addr:value = '198.51.%d.%d']", i/250, i%250+1)
		srv.Add(t0.Add(time.Duration(i/2)*time.Second), taxiitest.Indicator(id, pattern, t0.Add(time.Duration(i)*time.Minute)))
	}
}

func newSource(t *testing.T, cfg Config) *Source {
	t.Helper()
	src, err := New(&cfg, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestSourceContract(t *testing.T) {
	ingesttest.RunContract(t, func(t *testing.T, n int) ingesttest.Seeded {
		srv := taxiitest.New(t, taxiitest.Options{Username: "u", Password: "p", MaxLimit: 7})
		// Other object types in the collection are filtered by match[type].
		srv.Add(t0, map[string]any{"type": "malware", "spec_version": "2.1", "id": "malware--1", "name": "x", "is_family": false})
		seedIndicators(srv, 0, n)
		next := n
		return ingesttest.Seeded{
			Source: newSource(t, Config{URL: srv.CollectionURL(), Username: "u", Password: "p"}),
			Add:    func(m int) { seedIndicators(srv, next+1000, m); next += m },
		}
	})
}

func TestPollSendsTheProtocolAndFollowsNext(t *testing.T) {
	srv := taxiitest.New(t, taxiitest.Options{Token: "tok3n"})
	seedIndicators(srv, 0, 5)
	src := newSource(t, Config{URL: srv.APIRootURL(), Collection: srv.CollectionID(), Token: "tok3n", Since: "2026-01-01T00:00:00Z"})
	p1, err := src.Poll(context.Background(), "", 3)
	if err != nil {
		t.Fatal(err)
	}
	if !p1.More || len(p1.Indicators) != 3 {
		t.Fatalf("first page: more=%v, %d indicators", p1.More, len(p1.Indicators))
	}
	p2, err := src.Poll(context.Background(), p1.Next, 3)
	if err != nil {
		t.Fatal(err)
	}
	if p2.More || len(p2.Indicators) != 2 {
		t.Fatalf("second page: more=%v, %d indicators", p2.More, len(p2.Indicators))
	}
	reqs := srv.Requests()
	if got := reqs[0].Get("added_after"); got != "2026-01-01T00:00:00Z" {
		t.Errorf("first request added_after=%q, want SINCE", got)
	}
	if reqs[0].Get("match[type]") != "indicator" || reqs[0].Get("limit") != "3" {
		t.Errorf("first request %v", reqs[0])
	}
	if reqs[1].Get("next") == "" || reqs[1].Get("added_after") != "2026-01-01T00:00:00Z" {
		t.Errorf("second request %v: want next with the chain's added_after", reqs[1])
	}
	// The chain ended: the next poll moves added_after to the last date added and drops next.
	if _, err := src.Poll(context.Background(), p2.Next, 3); err != nil {
		t.Fatal(err)
	}
	if r := srv.Requests()[2]; r.Get("next") != "" || r.Get("added_after") != "2026-03-14T09:00:02.000000Z" {
		t.Errorf("after the chain: %v", r)
	}
	ind := p1.Indicators[0]
	if ind.Value != "198.51.0.1" || ind.Ref != "indicator--00000000-0000-4000-8000-000000000000" || !ind.Modified.Equal(t0) ||
		ind.Context["collection"] != srv.CollectionID() || ind.Tags[0] != "malicious-activity" {
		t.Errorf("indicator %+v", ind)
	}
}

func TestAuthRefusalIsErrAuth(t *testing.T) {
	srv := taxiitest.New(t, taxiitest.Options{Username: "u", Password: "right"})
	src := newSource(t, Config{URL: srv.CollectionURL(), Username: "u", Password: "wrong"})
	_, err := src.Poll(context.Background(), "", 10)
	if !ingest.IsAuth(err) || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("err = %v: want ErrAuth naming 401 without the password", err)
	}
	srv.Fail(http.StatusForbidden)
	src = newSource(t, Config{URL: srv.CollectionURL(), Username: "u", Password: "right"})
	if _, err := src.Poll(context.Background(), "", 10); !ingest.IsAuth(err) {
		t.Fatalf("403: %v", err)
	}
}

func TestServerErrorsAreTransientAndNamed(t *testing.T) {
	srv := taxiitest.New(t, taxiitest.Options{})
	seedIndicators(srv, 0, 2)
	src := newSource(t, Config{URL: srv.CollectionURL()})
	srv.Fail(http.StatusServiceUnavailable)
	_, err := src.Poll(context.Background(), "", 10)
	if err == nil || ingest.IsAuth(err) || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("err = %v", err)
	}
	if p, err := src.Poll(context.Background(), "", 10); err != nil || len(p.Indicators) != 2 {
		t.Fatalf("after the failure: %v %v", p, err)
	}
}

func TestForgedCursorIsRefused(t *testing.T) {
	srv := taxiitest.New(t, taxiitest.Options{})
	src := newSource(t, Config{URL: srv.CollectionURL()})
	if _, err := src.Poll(context.Background(), "added_after=yesterday", 10); err == nil {
		t.Fatal("a cursor holding no time was accepted")
	}
	if _, err := src.Poll(context.Background(), "next=forged", 10); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("forged next: %v", err)
	}
}

func TestPatternsOfOneObject(t *testing.T) {
	srv := taxiitest.New(t, taxiitest.Options{})
	srv.Add(t0,
		taxiitest.Indicator("indicator--a", "[ipv4-addr:value = '203.0.113.7' OR ipv6-addr:value = '2001:db8::1'] OR [domain-name:value = 'evil.example']", t0),
		taxiitest.Indicator("indicator--b", "[ipv4-addr:value ISSUBSET '203.0.113.0/24']", t0),
		taxiitest.Indicator("indicator--c", "[ipv4-addr:value = '203.0.113.9/32']", t0),
	)
	revoked := taxiitest.Indicator("indicator--d", "[ipv4-addr:value = '203.0.113.10']", t0)
	revoked["revoked"] = true
	srv.Add(t0, revoked)
	src := newSource(t, Config{URL: srv.CollectionURL()})
	p, err := src.Poll(context.Background(), "", 50)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ind := range p.Indicators {
		got = append(got, ind.Ref+" "+ind.Value)
	}
	want := []string{
		"indicator--a 203.0.113.7", "indicator--a 2001:db8::1", "indicator--a domain-name:value = 'evil.example'",
		"indicator--b ipv4-addr:value ISSUBSET '203.0.113.0/24'", "indicator--c 203.0.113.9",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("indicators:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, EnvPrefix + "URL: is required"},
		{Config{URL: "ftp://x/api1/"}, EnvPrefix + "URL"},
		{Config{URL: "https://taxii.example/api1/"}, EnvPrefix + "COLLECTION: is required"},
		{Config{URL: "https://taxii.example/api1/collections/abc/", Collection: "def"}, EnvPrefix + "COLLECTION: differs"},
		{Config{URL: "https://taxii.example/api1/collections/abc/", Username: "u"}, EnvPrefix + "USERNAME"},
		{Config{URL: "https://taxii.example/api1/collections/abc/", Username: "u", Password: "p", Token: "t"}, EnvPrefix + "TOKEN"},
		{Config{URL: "https://taxii.example/api1/collections/abc/", Token: "t\n"}, EnvPrefix + "TOKEN"},
		{Config{URL: "https://taxii.example/api1/collections/abc/", Since: "yesterday"}, EnvPrefix + "SINCE"},
		{Config{URL: "https://taxii.example/api1/collections/abc/", PageSize: -1}, EnvPrefix + "PAGE_SIZE"},
		{Config{URL: "https://taxii.example/api1/collections/abc/", Password: "p", PasswordFromFile: "q"}, EnvPrefix + "PASSWORD and"},
	} {
		err := tc.cfg.Resolve()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "taxii.example") || strings.Contains(err.Error(), "\"t\\n\"")) {
			t.Errorf("error quotes the URL or a secret: %v", err)
		}
	}
	for _, c := range []Config{
		{URL: "https://taxii.example/api1/collections/abc/"},
		{URL: "https://taxii.example/api1", Collection: "abc"},
		{URL: "https://taxii.example/api1/collections/abc"},
	} {
		if err := c.Resolve(); err != nil || c.objectsURL.String() != "https://taxii.example/api1/collections/abc/objects/" {
			t.Errorf("%+v: %v %v", c, err, c.objectsURL)
		}
	}
}

func TestRegistrationParsesTheEnvironment(t *testing.T) {
	var c Config
	dir := t.TempDir() + "/token"
	writeFile(t, dir, "s3cret\n")
	env := map[string]string{EnvPrefix + "URL": "http://127.0.0.1:1/api1/collections/x/", EnvPrefix + "TOKEN_FILE": dir}
	if err := config.Parse(&c, EnvPrefix, env); err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(); err != nil || c.Token.Reveal() != "s3cret" {
		t.Fatalf("%v %q", err, c.Token.Reveal())
	}
}

func TestContextCancelled(t *testing.T) {
	srv := taxiitest.New(t, taxiitest.Options{})
	src := newSource(t, Config{URL: srv.CollectionURL()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Poll(ctx, "", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
