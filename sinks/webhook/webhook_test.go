package webhook

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

func newTestSink(t *testing.T, srvURL string, kind sinks.Kind, budget time.Duration) sinks.Sink {
	t.Helper()
	cfg := &Config{
		URL: srvURL + receiverPath + "?token=" + receiverToken, Secret: config.Secret(testSecret), Kind: string(kind),
		PolicyConfig: sinkhttp.PolicyConfig{AttemptTimeout: min(2*time.Second, budget), RetryBudget: budget},
	}
	if err := cfg.Resolve(); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, sinkhttp.NewHTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDoAlert(t *testing.T) {
	fake, srv := newFakeReceiver(t, nil)
	s := newTestSink(t, srv.URL, sinks.KindAlert, 5*time.Second)
	if s.Kind() != sinks.KindAlert || s.Name() != Name {
		t.Fatalf("%s %s", s.Name(), s.Kind())
	}
	if _, ok := s.(sinks.Undoer); ok {
		t.Fatal("an alert webhook is an Undoer")
	}
	a := testAction()
	a.Kind = sinks.KindAlert
	res, err := s.Do(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if res.Detail != "delivered alert of 203.0.113.7" {
		t.Fatalf("result %+v", res)
	}
	d := fake.last()
	if d.payload["action"] != "alert" || d.header.Get(HeaderIdempotencyKey) != a.Key {
		t.Fatalf("delivery %v %v", d.payload["action"], d.header)
	}
}

func TestDoBlockAndUndo(t *testing.T) {
	fake, srv := newFakeReceiver(t, nil)
	s := newTestSink(t, srv.URL, sinks.KindBlock, 5*time.Second)
	if s.Kind() != sinks.KindBlock {
		t.Fatalf("kind %s", s.Kind())
	}
	u, ok := s.(sinks.Undoer)
	if !ok {
		t.Fatal("a block webhook is not an Undoer")
	}
	a := blockAction()
	if _, err := s.Do(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	d := fake.last()
	if d.payload["action"] != "block" || d.payload["until"] != "2025-03-02T12:00:00Z" || d.header.Get(HeaderIdempotencyKey) != a.Key {
		t.Fatalf("block %v", d.payload)
	}
	if err := u.Undo(context.Background(), a, ""); err != nil {
		t.Fatal(err)
	}
	d = fake.last()
	if d.payload["action"] != "unblock" || d.payload["key"] != a.Key || d.header.Get(HeaderIdempotencyKey) != a.Key+":unblock" {
		t.Fatalf("unblock %v %v", d.payload, d.header)
	}
}

func TestRetriesAreSignedAfresh(t *testing.T) {
	fake, srv := newFakeReceiver(t, nil)
	fake.script = func(n int, w http.ResponseWriter) bool {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			reject(w, http.StatusTooManyRequests, "slow down")
			return true
		}
		return false
	}
	s := newTestSink(t, srv.URL, sinks.KindAlert, 10*time.Second).(*Sink)
	var clock atomic.Int64
	clock.Store(1740830400)
	s.now = func() time.Time { return time.Unix(clock.Add(90), 0) } // each signing is 90s later
	fake.now = func() time.Time { return time.Unix(clock.Load(), 0) }
	start := time.Now()
	if _, err := s.Do(context.Background(), testAction()); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < time.Second {
		t.Fatal("Retry-After not honoured")
	}
	if fake.count() != 2 {
		t.Fatalf("%d requests", fake.count())
	}
	if ts := fake.last().header.Get(HeaderTimestamp); ts != strconv.FormatInt(1740830400+180, 10) {
		t.Fatalf("retry signed at %s: not re-signed", ts)
	}
}

func TestRetries(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusRequestTimeout} {
		fake, srv := newFakeReceiver(t, func(n int, w http.ResponseWriter) bool {
			if n == 0 {
				reject(w, status, "try again")
				return true
			}
			return false
		})
		if _, err := newTestSink(t, srv.URL, sinks.KindBlock, 10*time.Second).Do(context.Background(), blockAction()); err != nil {
			t.Errorf("%d: %v", status, err)
		}
		if fake.count() != 2 {
			t.Errorf("%d: %d requests", status, fake.count())
		}
	}
}

func TestPermanentFailures(t *testing.T) {
	for _, tt := range []struct {
		name   string
		edit   func(f *fakeReceiver)
		status int
	}{
		{"bad request", func(f *fakeReceiver) {
			f.script = func(_ int, w http.ResponseWriter) bool { reject(w, http.StatusBadRequest, "no"); return true }
		}, http.StatusBadRequest},
		{"receiver rejects the signature", func(f *fakeReceiver) {
			f.now = func() time.Time { return time.Now().Add(time.Hour) } // clocks apart
		}, http.StatusUnauthorized},
		{"redirect", func(f *fakeReceiver) {
			f.script = func(_ int, w http.ResponseWriter) bool {
				w.Header().Set("Location", "https://elsewhere.example/hook")
				w.WriteHeader(http.StatusTemporaryRedirect)
				return true
			}
		}, http.StatusTemporaryRedirect},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake, srv := newFakeReceiver(t, nil)
			tt.edit(fake)
			_, err := newTestSink(t, srv.URL, sinks.KindBlock, 10*time.Second).Do(context.Background(), blockAction())
			var se *sinkhttp.StatusError
			if !errors.As(err, &se) || se.Status != tt.status {
				t.Fatalf("error %v, want HTTP %d", err, tt.status)
			}
			if fake.count() != 1 {
				t.Fatalf("%d requests: a permanent failure was retried", fake.count())
			}
			assertNoSecrets(t, err)
		})
	}
}

func TestErrorsNeverShowSecrets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, err = newTestSink(t, "http://"+addr, sinks.KindAlert, 300*time.Millisecond).Do(context.Background(), testAction())
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	assertNoSecrets(t, err)
}

func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	if s := err.Error(); strings.Contains(s, testSecret) || strings.Contains(s, receiverToken) || strings.Contains(s, receiverPath) {
		t.Fatalf("error shows a secret: %v", err)
	}
}

func TestValidateParams(t *testing.T) {
	s := &Sink{}
	if err := s.ValidateParams(nil); err != nil {
		t.Fatal(err)
	}
	err := s.ValidateParams(map[string]string{"b": "1", "a": "2"})
	if err == nil || !strings.Contains(err.Error(), `unknown param "a"`) || !strings.Contains(err.Error(), `unknown param "b"`) {
		t.Fatalf("error %v", err)
	}
	fake, srv := newFakeReceiver(t, nil)
	a := testAction()
	a.Params = map[string]string{"queue": "x"}
	if _, err := newTestSink(t, srv.URL, sinks.KindAlert, time.Second).Do(context.Background(), a); err == nil {
		t.Fatal("params accepted by Do")
	}
	if fake.count() != 0 {
		t.Fatal("request sent with invalid params")
	}
}

// echoServer answers every request with status and a body quoting the full request URL, as a
// proxy's or a web server's error page does.
func echoServer(t *testing.T, status int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "No route for POST http://"+r.Host+r.URL.RequestURI()+" (query "+r.URL.RawQuery+", path "+r.URL.Path+")")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestErrorsRedactAnEchoedURL(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusBadGateway} {
		srv := echoServer(t, status)
		_, err := newTestSink(t, srv.URL, sinks.KindAlert, 300*time.Millisecond).Do(context.Background(), testAction())
		if !sinkhttp.IsStatus(err, status) {
			t.Fatalf("HTTP %d: error %v", status, err)
		}
		assertNoSecrets(t, err)
		if !strings.Contains(err.Error(), sinkhttp.Redacted) || !strings.Contains(err.Error(), "No route for POST") {
			t.Fatalf("HTTP %d: the echo is not quoted with the secrets cut out: %v", status, err)
		}
	}
	// Any 2xx is success: an echo in a 200 is not quoted anywhere.
	srv := echoServer(t, http.StatusOK)
	res, err := newTestSink(t, srv.URL, sinks.KindAlert, time.Second).Do(context.Background(), testAction())
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Detail + res.Ref; strings.Contains(s, receiverToken) || strings.Contains(s, receiverPath) {
		t.Fatalf("result shows a secret: %+v", res)
	}
}

func TestNilAction(t *testing.T) {
	fake, srv := newFakeReceiver(t, nil)
	s := newTestSink(t, srv.URL, sinks.KindBlock, time.Second)
	if _, err := s.Do(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "webhook: nil action") {
		t.Fatalf("Do: %v", err)
	}
	if err := s.(sinks.Undoer).Undo(context.Background(), nil, "203.0.113.7"); err == nil || !strings.Contains(err.Error(), "webhook: nil action") {
		t.Fatalf("Undo: %v", err)
	}
	if fake.count() != 0 {
		t.Fatal("request sent for a nil action")
	}
}

// blockAction is testAction on a routable address: a block sink refuses documentation ranges
// (sinks.Blockable).
func blockAction() *sinks.Action {
	a := testAction()
	a.Target = "185.220.101.7"
	return a
}
