// Package providertest is the provider port's contract suite: every provider runs it against
// the simulator speaking that provider's dialect (enrich/sim) and against hostile servers.
// It checks what the Lookuper and the scorer rely on, whatever the vendor:
//
//   - answers are well formed: a known verdict, a score within 0-100, a detail, the response
//     body in Raw for the field mapping; an address the provider does not know is not_found;
//   - failures are classified: a rejected key is KindUnauthorized (keyed providers), a 429 is
//     KindRateLimited with its Retry-After, a 500 is KindTransient, a spent quota is
//     KindRateLimited or KindQuotaExhausted, a body that is not the API's is KindTransient,
//     and an indicator that is not an IP address is KindPermanent;
//   - the key never appears in an error, even when the server echoes it;
//   - the context is honoured: a stalled server does not hold a cancelled lookup;
//   - bodies are bounded: an endless body ends as a transient error, not as memory;
//   - it is safe for concurrent use.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

// Key is the API key the suite's simulator accepts.
const Key = "contract-key-5b1d3c"

// Subject describes the provider under test.
type Subject struct {
	// Dialect is the provider's simulated API.
	Dialect sim.Dialect
	// New builds the provider against baseURL with key ("" for a keyless provider) and a
	// body limit of maxBody bytes.
	New func(t *testing.T, baseURL, key string, maxBody int64) enrich.Provider
	// Keyless providers skip the key checks.
	Keyless bool
}

// Run runs the contract suite.
func Run(t *testing.T, s Subject) {
	t.Run("answers", func(t *testing.T) { answers(t, s) })
	t.Run("failures", func(t *testing.T) { failures(t, s) })
	t.Run("key never in errors", func(t *testing.T) { keyNeverInErrors(t, s) })
	t.Run("context", func(t *testing.T) { honoursContext(t, s) })
	t.Run("bounded body", func(t *testing.T) { boundedBody(t, s) })
	t.Run("not an address", func(t *testing.T) { notAnAddress(t, s) })
}

// Indicator builds an indicator for an address.
func Indicator(ip string) event.Indicator {
	a := netip.MustParseAddr(ip)
	typ := event.IPv4
	if a.Is6() {
		typ = event.IPv6
	}
	return event.Indicator{Type: typ, Value: a.String(), Addr: a}
}

// Addresses is a deterministic spread of public addresses for lookups.
func Addresses(n int) []string {
	out := make([]string, 0, n)
	for i := 0; len(out) < n; i++ {
		out = append(out, netip.AddrFrom4([4]byte{byte(11 + i%180), byte(i >> 8), byte(i * 13), byte(i*7 + 1)}).String())
	}
	return out
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func simulator(t *testing.T, s Subject, opts sim.Options) (*sim.API, string) {
	t.Helper()
	opts.ValidKeys = []string{Key}
	api := sim.NewAPI(s.Dialect, opts)
	return api, serve(t, api)
}

func key(s Subject) string {
	if s.Keyless {
		return ""
	}
	return Key
}

var verdicts = map[enrich.Verdict]bool{enrich.VerdictMalicious: true, enrich.VerdictSuspicious: true,
	enrich.VerdictBenign: true, enrich.VerdictNotFound: true, event.VerdictUnrated: true}

func answers(t *testing.T, s Subject) {
	_, url := simulator(t, s, sim.Options{})
	p := s.New(t, url, key(s), 1<<20)
	if p.Name() != s.Dialect.Name() {
		t.Errorf("Name() = %q, want the dialect's %q", p.Name(), s.Dialect.Name())
	}
	seen := map[enrich.Verdict]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ips := Addresses(400)
	errs := make(chan error, len(ips))
	for w := range 8 { // concurrent use, under -race
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ips); i += 8 {
				ip := ips[i]
				r, err := p.Lookup(context.Background(), Indicator(ip))
				if err != nil {
					errs <- fmt.Errorf("%s: %w", ip, err)
					continue
				}
				truth, _ := sim.TruthOf(ip)
				if err := wellFormed(r, s.Dialect.Knows(truth)); err != nil {
					errs <- fmt.Errorf("%s: %w", ip, err)
				}
				mu.Lock()
				seen[r.Verdict]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) < 2 {
		t.Errorf("400 addresses gave one verdict only: %v", seen)
	}
	t.Logf("verdicts over 400 addresses: %v", seen)
}

func wellFormed(r *enrich.Result, known bool) error {
	switch {
	case r == nil:
		return errors.New("nil result without an error")
	case !verdicts[r.Verdict]:
		return fmt.Errorf("unknown verdict %q", r.Verdict)
	case r.Score < 0 || r.Score > 100:
		return fmt.Errorf("score %d outside 0-100", r.Score)
	case r.Detail == "":
		return errors.New("empty detail")
	case !known && r.Verdict != enrich.VerdictNotFound:
		return fmt.Errorf("the provider does not know it, yet the verdict is %q", r.Verdict)
	case known && r.Verdict == enrich.VerdictNotFound:
		return errors.New("the provider knows it, yet the verdict is not_found")
	case known && len(r.Raw) == 0:
		return errors.New("an answer without its response body in Raw (the field mapping reads it)")
	}
	return nil
}

func kindOf(t *testing.T, err error) *enrich.Error {
	t.Helper()
	var pe *enrich.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not an *enrich.Error", err, err)
	}
	return pe
}

func failures(t *testing.T, s Subject) {
	ip := Addresses(1)[0]
	cases := []struct {
		name  string
		opts  sim.Options
		kinds []enrich.ErrorKind
		retry bool // a Retry-After is expected
	}{
		{"forced 429", sim.Options{Force429For: time.Hour}, []enrich.ErrorKind{enrich.KindRateLimited}, true},
		{"rate limit", sim.Options{RateLimit: 0.001}, []enrich.ErrorKind{enrich.KindRateLimited}, true},
		{"server error", sim.Options{ErrorRate: 1}, []enrich.ErrorKind{enrich.KindTransient}, false},
		{"quota spent", sim.Options{DailyQuota: 1}, []enrich.ErrorKind{enrich.KindRateLimited, enrich.KindQuotaExhausted}, false},
	}
	if !s.Keyless {
		cases = append(cases, struct {
			name  string
			opts  sim.Options
			kinds []enrich.ErrorKind
			retry bool
		}{"rejected key", sim.Options{InvalidKeyMode: true}, []enrich.ErrorKind{enrich.KindUnauthorized}, false})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, url := simulator(t, s, c.opts)
			p := s.New(t, url, key(s), 1<<20)
			if c.name == "rate limit" || c.name == "quota spent" {
				_, _ = p.Lookup(context.Background(), Indicator(Addresses(2)[1])) // spends the one token or unit
			}
			r, err := p.Lookup(context.Background(), Indicator(ip))
			if err == nil {
				t.Fatalf("answered %+v", r)
			}
			pe := kindOf(t, err)
			ok := false
			for _, k := range c.kinds {
				ok = ok || pe.Kind == k
			}
			if !ok {
				t.Fatalf("kind %s (%v), want one of %v", pe.Kind, err, c.kinds)
			}
			if pe.Provider != s.Dialect.Name() {
				t.Errorf("error names provider %q", pe.Provider)
			}
			if c.retry && pe.RetryAfter <= 0 {
				t.Errorf("429 with Retry-After, but RetryAfter %v", pe.RetryAfter)
			}
		})
	}
	t.Run("not the API", func(t *testing.T) {
		url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"unexpected": [1, 2`))
		}))
		_, err := s.New(t, url, key(s), 1<<20).Lookup(context.Background(), Indicator(ip))
		if err == nil || kindOf(t, err).Kind != enrich.KindTransient {
			t.Fatalf("a truncated body: %v, want a transient error", err)
		}
	})
}

func keyNeverInErrors(t *testing.T, s Subject) {
	if s.Keyless {
		t.Skip("keyless provider")
	}
	for _, status := range []int{400, 401, 403, 429, 500, 200} {
		url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// An echoing server: every header value, the key among them, in every message field.
			var vals []string
			for _, vs := range r.Header {
				vals = append(vals, vs...)
			}
			echo := strings.Join(vals, " ") + " " + r.URL.String()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, `{"message":%q,"detail":%q,"status":%d,"error":{"code":"X","message":%q},"errors":[{"detail":%q,"status":%d}]}`,
				echo, echo, status, echo, echo, status)
		}))
		_, err := s.New(t, url, Key, 1<<20).Lookup(context.Background(), Indicator(Addresses(1)[0]))
		if err != nil && strings.Contains(err.Error(), Key) {
			t.Errorf("HTTP %d: the error carries the key: %v", status, err)
		}
	}
}

func honoursContext(t *testing.T, s Subject) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	url := serve(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	p := s.New(t, url, key(s), 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Lookup(ctx, Indicator(Addresses(1)[0]))
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a cancelled lookup took %v", took)
	}
	if err == nil || kindOf(t, err).Kind != enrich.KindTransient {
		t.Fatalf("stalled server: %v, want a transient error", err)
	}
}

func boundedBody(t *testing.T, s Subject) {
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":"`))
		chunk := []byte(strings.Repeat("A", 64<<10))
		for i := 0; i < 1024 && r.Context().Err() == nil; i++ { // up to 64 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	_, err := s.New(t, url, key(s), 256<<10).Lookup(context.Background(), Indicator(Addresses(1)[0]))
	if err == nil || kindOf(t, err).Kind != enrich.KindTransient {
		t.Fatalf("an endless body: %v, want a transient error", err)
	}
}

func notAnAddress(t *testing.T, s Subject) {
	_, url := simulator(t, s, sim.Options{})
	p := s.New(t, url, key(s), 1<<20)
	for _, ind := range []event.Indicator{{Type: "domain-name", Value: "example.com"}, {Type: event.IPv4, Value: "not-an-ip"}} {
		_, err := p.Lookup(context.Background(), ind)
		if err == nil || kindOf(t, err).Kind != enrich.KindPermanent {
			t.Errorf("%+v: %v, want a permanent error", ind, err)
		}
	}
}
