package edl

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/sinks"
)

// Blocks, undos, reconciles and polls run at once (meant for -race); every served document must
// be well-formed, sorted and free of duplicates, and the end state what the last writes say.
func TestConcurrentUse(t *testing.T) {
	cfg := testConfig()
	cfg.Format = FormatCIDR
	s := newSink(cfg, nil, time.Now) // expiries really pass during the test
	srv := serve(t, s, cfg.Path)
	ctx := context.Background()

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := range 300 {
				target := fmt.Sprintf("11.%d.%d.%d", w, i/256, i%256)
				if i%7 == 0 {
					target = fmt.Sprintf("2001:db9:%x::%x", w, i)
				}
				until := time.Now().Add(time.Hour)
				if i%5 == 0 {
					until = time.Now().Add(time.Millisecond) // lapses while polled
				}
				if _, err := s.Do(ctx, &sinks.Action{Target: target, Until: until}); err != nil {
					t.Error(err)
					return
				}
				if i%3 == 0 {
					if err := s.Undo(ctx, &sinks.Action{Target: target}, target); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			if err := s.Reconcile(ctx, map[string]time.Time{fmt.Sprintf("192.0.3.%d", i): time.Now().Add(time.Hour)}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var polls sync.WaitGroup
	for range 3 {
		polls.Go(func() {
			etag := ""
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := fetchQuiet(srv.URL+cfg.Path, etag)
				if r.err != nil {
					t.Error(r.err)
					return
				}
				if r.status == http.StatusNotModified {
					continue
				}
				if err := checkDocument(r.body); err != nil {
					t.Error(err)
					return
				}
				etag = r.etag
			}
		})
	}
	wg.Wait()
	close(stop)
	polls.Wait()

	// The writers undid every third address and the last reconcile happened before some blocks,
	// so only check the final document's shape and that undone addresses are absent.
	r := fetchQuiet(srv.URL+cfg.Path, "")
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("final: %d %v", r.status, r.err)
	}
	if err := checkDocument(r.body); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.body, "\n11.0.0.0/32\n") || strings.HasPrefix(r.body, "11.0.0.0/32\n") {
		t.Fatal("an undone address is served")
	}
}

type polled struct {
	status int
	etag   string
	body   string
	err    error
}

// fetchQuiet polls without testing.T, so that it can run in goroutines.
func fetchQuiet(url, etag string) polled {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return polled{err: err}
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return polled{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return polled{err: err}
	}
	return polled{status: resp.StatusCode, etag: resp.Header.Get("ETag"), body: string(b)}
}

// checkDocument verifies a served list: CIDR lines, sorted, unique.
func checkDocument(body string) error {
	if body == "" {
		return nil
	}
	if !strings.HasSuffix(body, "\n") {
		return fmt.Errorf("no final newline: %q", body[max(0, len(body)-40):])
	}
	var prev netip.Prefix
	for i, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		p, err := netip.ParsePrefix(line)
		if err != nil || !p.IsSingleIP() {
			return fmt.Errorf("line %d %q: %v", i, line, err)
		}
		if i > 0 && prev.Addr().Compare(p.Addr()) >= 0 {
			return fmt.Errorf("line %d %q not after %q", i, line, prev)
		}
		prev = p
	}
	return nil
}
