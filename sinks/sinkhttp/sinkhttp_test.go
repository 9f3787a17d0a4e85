package sinkhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// secretPath and secretQuery stand for a webhook credential in the URL; no error may show them.
const (
	secretPath  = "/services/T0TEST/B0TEST/s3cretPath"
	secretQuery = "token=s3cretQuery"
)

// server answers the n-th request (from 0) with answer(n); it counts requests and checks that
// every attempt carries the full body.
func server(t *testing.T, answer func(n int64, w http.ResponseWriter)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1) - 1
		if b, _ := io.ReadAll(r.Body); string(b) != "payload" {
			t.Errorf("attempt %d sent body %q", i, b)
		}
		answer(i, w)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func post(url string) func(ctx context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("payload"))
	}
}

func fast(budget time.Duration) Policy {
	return Policy{AttemptTimeout: min(time.Second, budget), RetryBudget: budget, InitialInterval: 5 * time.Millisecond}
}

func assertHidden(t *testing.T, err error) {
	t.Helper()
	if s := err.Error(); strings.Contains(s, "s3cret") || strings.Contains(s, "/services/") {
		t.Fatalf("error shows the URL's path or query: %v", err)
	}
}

func TestRetriesTransientThenSucceeds(t *testing.T) {
	for _, tt := range []struct {
		name     string
		statuses []int
	}{
		{"5xx", []int{500, 502, 503, 504}},
		{"408 and 425", []int{408, 425}},
		{"429 without Retry-After", []int{429}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := server(t, func(i int64, w http.ResponseWriter) {
				if int(i) < len(tt.statuses) {
					w.WriteHeader(tt.statuses[i])
					return
				}
				w.WriteHeader(http.StatusAccepted)
				_, _ = io.WriteString(w, "done")
			})
			c := &Client{Sink: "test", Policy: fast(10 * time.Second)}
			resp, err := c.Do(context.Background(), post(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != http.StatusAccepted || string(resp.Body) != "done" {
				t.Fatalf("response %d %q", resp.Status, resp.Body)
			}
			if got := n.Load(); got != int64(len(tt.statuses))+1 {
				t.Fatalf("%d attempts, want %d", got, len(tt.statuses)+1)
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		srv, n := server(t, func(i int64, w http.ResponseWriter) {
			if i == 0 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(status)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		c := &Client{Sink: "test", Policy: fast(10 * time.Second)}
		start := time.Now()
		if _, err := c.Do(context.Background(), post(srv.URL)); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < time.Second {
			t.Errorf("%d: retried after %s, Retry-After said 1s", status, el)
		}
		if n.Load() != 2 {
			t.Errorf("%d: %d attempts", status, n.Load())
		}
	}
}

func TestRetryAfterBeyondBudgetGivesUpAtOnce(t *testing.T) {
	// 9300000000 seconds overflowed time.Duration into a negative wait before the cap.
	for _, ra := range []string{"30", "9300000000"} {
		srv, n := server(t, func(_ int64, w http.ResponseWriter) {
			w.Header().Set("Retry-After", ra)
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, "slow down")
		})
		c := &Client{Sink: "test", Policy: fast(2 * time.Second)}
		start := time.Now()
		_, err := c.Do(context.Background(), post(srv.URL))
		if el := time.Since(start); el > time.Second {
			t.Errorf("Retry-After %s: gave up after %s, not at once", ra, el)
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Status != http.StatusTooManyRequests || se.RetryAfter < 30*time.Second || se.Body != "slow down" {
			t.Fatalf("Retry-After %s: error %v (%+v)", ra, err, se)
		}
		if !strings.Contains(err.Error(), "retry budget") {
			t.Errorf("error %q does not say the budget is spent", err)
		}
		if n.Load() != 1 {
			t.Errorf("Retry-After %s: %d attempts", ra, n.Load())
		}
	}
}

func TestPermanentStatusesNotRetried(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 409, 410, 413, 422} {
		srv, n := server(t, func(_ int64, w http.ResponseWriter) {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, "invalid_payload")
		})
		c := &Client{Sink: "test", Policy: fast(5 * time.Second)}
		_, err := c.Do(context.Background(), post(srv.URL+secretPath+"?"+secretQuery))
		var se *StatusError
		if !errors.As(err, &se) || se.Status != status || se.Retryable() {
			t.Errorf("%d: error %v", status, err)
			continue
		}
		if err.Error() != "test: HTTP "+strconv.Itoa(status)+": invalid_payload" {
			t.Errorf("%d: message %q", status, err)
		}
		if n.Load() != 1 {
			t.Errorf("%d: %d attempts", status, n.Load())
		}
		assertHidden(t, err)
	}
}

func TestRetryBudgetBoundsTheWhole(t *testing.T) {
	srv, n := server(t, func(_ int64, w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) })
	c := &Client{Sink: "test", Policy: Policy{AttemptTimeout: time.Second, RetryBudget: 300 * time.Millisecond, InitialInterval: 10 * time.Millisecond}}
	start := time.Now()
	_, err := c.Do(context.Background(), post(srv.URL))
	el := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "retry budget of 300ms spent") {
		t.Fatalf("error %v", err)
	}
	if el > time.Second { // 300ms plus slack for a loaded machine
		t.Fatalf("took %s with a 300ms budget", el)
	}
	if n.Load() < 3 {
		t.Fatalf("only %d attempts within the budget", n.Load())
	}
}

func TestAttemptTimeoutIsRetried(t *testing.T) {
	srv, n := server(t, func(i int64, w http.ResponseWriter) {
		if i == 0 {
			time.Sleep(300 * time.Millisecond)
		}
		w.WriteHeader(http.StatusOK)
	})
	c := &Client{Sink: "test", Policy: Policy{AttemptTimeout: 50 * time.Millisecond, RetryBudget: 5 * time.Second, InitialInterval: 5 * time.Millisecond}}
	if _, err := c.Do(context.Background(), post(srv.URL)); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 {
		t.Fatalf("%d attempts", n.Load())
	}
}

func TestBodyBoundedByMaxBody(t *testing.T) {
	big := strings.Repeat("x", 10_000)
	srv, _ := server(t, func(i int64, w http.ResponseWriter) {
		if i == 0 {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusBadRequest)
		}
		_, _ = io.WriteString(w, big)
	})
	c := &Client{Sink: "test", Policy: Policy{MaxBody: 100}}
	resp, err := c.Do(context.Background(), post(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Body) != 100 {
		t.Fatalf("read %d bytes with MaxBody 100", len(resp.Body))
	}
	c.Policy.MaxBody = 0 // the default, 1 MiB: the error body is still cut for the audit record
	_, err = c.Do(context.Background(), post(srv.URL))
	var se *StatusError
	if !errors.As(err, &se) || len(se.Body) != 303 || !strings.HasSuffix(se.Body, "...") {
		t.Fatalf("error body of %d bytes", len(se.Body))
	}
}

func TestRedirectsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(target.Close)
	for _, status := range []int{301, 302, 303, 307, 308} {
		srv, n := server(t, func(_ int64, w http.ResponseWriter) {
			w.Header().Set("Location", target.URL+"/stolen")
			w.WriteHeader(status)
		})
		for _, hc := range []*http.Client{nil, NewHTTPClient()} {
			c := &Client{Sink: "test", HTTP: hc, Policy: fast(5 * time.Second)}
			_, err := c.Do(context.Background(), post(srv.URL))
			var se *StatusError
			if !errors.As(err, &se) || se.Status != status {
				t.Errorf("%d: error %v", status, err)
			}
		}
		if n.Load() != 2 {
			t.Errorf("%d: %d attempts for 2 calls: a redirect was retried", status, n.Load())
		}
	}
	if elsewhere.Load() != 0 {
		t.Fatalf("a redirect was followed %d times", elsewhere.Load())
	}
}

func TestErrorsHideURLPathAndQuery(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	_ = l.Close()
	slow, _ := server(t, func(_ int64, w http.ResponseWriter) { time.Sleep(200 * time.Millisecond) })
	failing, _ := server(t, func(_ int64, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) })
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name string
		ctx  context.Context
		url  string
		pol  Policy
	}{
		{"connection refused", context.Background(), closed, fast(200 * time.Millisecond)},
		{"attempt timeout", context.Background(), slow.URL, Policy{AttemptTimeout: 20 * time.Millisecond, RetryBudget: 100 * time.Millisecond}},
		{"5xx until the budget ends", context.Background(), failing.URL, fast(100 * time.Millisecond)},
		{"cancelled", cancelled, failing.URL, fast(time.Second)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{Sink: "test", Policy: tt.pol}
			_, err := c.Do(tt.ctx, post(tt.url+secretPath+"?"+secretQuery))
			if err == nil {
				t.Fatal("no error")
			}
			assertHidden(t, err)
			if !strings.HasPrefix(err.Error(), "test: ") && !strings.Contains(err.Error(), ": test: ") {
				t.Errorf("error %q does not name the sink", err)
			}
		})
	}
}

func TestRequestBuildErrorNotRetried(t *testing.T) {
	var calls int
	c := &Client{Sink: "test", Policy: fast(time.Second)}
	_, err := c.Do(context.Background(), func(context.Context) (*http.Request, error) {
		calls++
		return nil, errors.New("no URL")
	})
	if err == nil || calls != 1 || !strings.Contains(err.Error(), "building the request") {
		t.Fatalf("calls=%d err=%v", calls, err)
	}
}

func TestCancelStopsWaiting(t *testing.T) {
	srv, _ := server(t, func(_ int64, w http.ResponseWriter) {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c := &Client{Sink: "test", Policy: fast(30 * time.Second)}
	start := time.Now()
	if _, err := c.Do(ctx, post(srv.URL)); err == nil {
		t.Fatal("no error")
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("returned %s after the context ended", el)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{"-3", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"9300000000", 1 << 31 * time.Second}, // capped, never overflowing into a short wait
		{"9999999999999", 1 << 31 * time.Second},
		{"99999999999999999999999", 1 << 31 * time.Second}, // too large for an int64: the cap, not absent
		{"-99999999999999999999999", 0},
		{"Sun, 01 Nov 2097 00:00:00 GMT", 1 << 31 * time.Second}, // a date past the cap
		{"2147483648", 1 << 31 * time.Second},
		{"2147483647", (1<<31 - 1) * time.Second},
	} {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestRetryAfterTooLargeForIntGivesUpAtOnce(t *testing.T) {
	srv, n := server(t, func(_ int64, w http.ResponseWriter) {
		w.Header().Set("Retry-After", "99999999999999999999999")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	c := &Client{Sink: "test", Policy: fast(2 * time.Second)}
	start := time.Now()
	_, err := c.Do(context.Background(), post(srv.URL))
	if el := time.Since(start); el > time.Second || n.Load() != 1 {
		t.Fatalf("%d attempts in %s: the huge Retry-After was read as absent", n.Load(), el)
	}
	if err == nil || !strings.Contains(err.Error(), "retry budget") {
		t.Fatalf("error %v", err)
	}
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefghij..."},
		{"abcdefghié", 10, "abcdefghi..."}, // é is 2 bytes, starting at byte 9
		{"abcdefgh€x", 10, "abcdefgh..."},  // € is 3 bytes, starting at byte 8
		{"abcdefg😀x", 10, "abcdefg..."},    // 4 bytes, starting at byte 7
		{"abcdefghi😀", 10, "abcdefghi..."}, // the cut falls before the character
		// Not UTF-8: cut at n.
		{"ab" + strings.Repeat("\x80", 12), 10, "ab" + strings.Repeat("\x80", 8) + "..."},
	} {
		got := truncate(tt.in, tt.n)
		if got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if len(got) > tt.n+len(truncMark) {
			t.Errorf("truncate(%q, %d) is %d bytes", tt.in, tt.n, len(got))
		}
		if utf8.ValidString(tt.in) && !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q split a character", tt.in, tt.n, got)
		}
	}
}

func TestErrorBodyCutAtCharacter(t *testing.T) {
	body := strings.Repeat("é", 400) // 800 bytes; byte 300 starts a character, 299 does not
	for _, pad := range []string{"", "x"} {
		srv, _ := server(t, func(_ int64, w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, pad+body)
		})
		_, err := (&Client{Sink: "test", Policy: fast(time.Second)}).Do(context.Background(), post(srv.URL))
		var se *StatusError
		if !errors.As(err, &se) || !utf8.ValidString(se.Body) || !strings.HasSuffix(se.Body, "...") || len(se.Body) > 303 {
			t.Fatalf("pad %q: body %q", pad, se.Body)
		}
	}
}

func TestSecretsCutFromErrorBody(t *testing.T) {
	const secret = "s3cret-t0ken-0123456789"
	for _, body := range []string{
		`{"error":"bad token ` + secret + `"}`,
		strings.Repeat("x", 290) + secret, // straddles the 300-byte cut
		strings.Repeat("x", 400) + secret, // past the cut
	} {
		srv, _ := server(t, func(_ int64, w http.ResponseWriter) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, body)
		})
		c := &Client{Sink: "test", Policy: fast(time.Second), Secrets: []string{"", secret}}
		_, err := c.Do(context.Background(), post(srv.URL))
		var se *StatusError
		if !errors.As(err, &se) || strings.Contains(se.Body, secret[:4]) {
			t.Fatalf("body %q", se.Body)
		}
	}
}

// A caller that cancels (a shutdown) is told so, not that the far end used up the budget.
func TestCallerCancelReported(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer func(int64, http.ResponseWriter)
	}{
		{"while waiting to retry", func(_ int64, w http.ResponseWriter) {
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
		}},
		{"during an attempt", func(_ int64, w http.ResponseWriter) {
			time.Sleep(500 * time.Millisecond)
			w.WriteHeader(http.StatusOK)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := server(t, tt.answer)
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			c := &Client{Sink: "test", Policy: fast(30 * time.Second)}
			start := time.Now()
			_, err := c.Do(ctx, post(srv.URL))
			if el := time.Since(start); el > time.Second {
				t.Fatalf("returned %s after the cancel", el)
			}
			if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "retry budget") {
				t.Fatalf("error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "test: ") {
				t.Errorf("error %q does not name the sink", err)
			}
		})
	}
	// Already cancelled: one attempt at most, and the cancellation is what is reported.
	srv, _ := server(t, func(_ int64, w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&Client{Sink: "test", Policy: fast(30 * time.Second)}).Do(ctx, post(srv.URL))
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "retry budget") {
		t.Fatalf("pre-cancelled: %v", err)
	}
}

func TestCallerDeadlineReported(t *testing.T) {
	srv, n := server(t, func(_ int64, w http.ResponseWriter) {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c := &Client{Sink: "test", Policy: fast(30 * time.Second)}
	start := time.Now()
	_, err := c.Do(ctx, post(srv.URL))
	if el := time.Since(start); el > 500*time.Millisecond || n.Load() != 1 {
		t.Fatalf("%d attempts in %s: waited for a retry the deadline does not allow", n.Load(), el)
	}
	var se *StatusError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable ||
		strings.Contains(err.Error(), "retry budget") {
		t.Fatalf("error %v", err)
	}
}

func TestIsStatus(t *testing.T) {
	se := &StatusError{Sink: "test", Status: http.StatusNotFound}
	for _, tt := range []struct {
		err    error
		status int
		want   bool
	}{
		{se, 404, true},
		{fmt.Errorf("comment on SOC-1: %w", se), 404, true},
		{fmt.Errorf("retry budget of 30s spent: %w", &StatusError{Status: 503}), 503, true},
		{se, 410, false},
		{errors.New("HTTP 404"), 404, false},
		{nil, 404, false},
	} {
		if got := IsStatus(tt.err, tt.status); got != tt.want {
			t.Errorf("IsStatus(%v, %d) = %v", tt.err, tt.status, got)
		}
	}
}
