package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestReadinessUsesGenericWords(t *testing.T) {
	s, err := NewServer("127.0.0.1:0", NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.ln.Close() })
	s.AddCheck("kafka", func(context.Context) error {
		return &StatusError{Status: "topic missing", Err: errors.New("kafka topic secret-topic: [3] Unknown Topic Or Partition")}
	})
	s.AddCheck("redis", func(context.Context) error {
		return fmt.Errorf("redis ping: %w", errors.New("dial tcp 10.1.2.3:6379: connect: connection refused"))
	})
	s.AddCheck("providers", func(context.Context) error { return nil })
	res := s.readiness(context.Background())
	want := map[string]string{"kafka": "topic missing", "redis": "unreachable", "providers": "ok"}
	if res.Ready || fmt.Sprint(res.Checks) != fmt.Sprint(want) {
		t.Errorf("readiness %+v, want not ready with %v", res, want)
	}
}

func TestReadinessLogsOncePerStateChange(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	s, err := NewServer("127.0.0.1:0", NewRegistry(), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.ln.Close() })
	var down atomic.Bool
	s.AddCheck("redis", func(context.Context) error {
		if down.Load() {
			return errors.New("dial tcp 10.1.2.3:6379: connect: connection refused")
		}
		return nil
	})
	probe := func(n int) {
		for range n {
			s.mu.Lock()
			s.cachedAt = time.Time{} // every probe checks again
			s.mu.Unlock()
			s.readiness(context.Background())
		}
	}
	probe(3)
	if n := logs.Len(); n != 0 {
		t.Fatalf("%d log lines while healthy, want 0", n)
	}
	down.Store(true)
	probe(5)
	down.Store(false)
	probe(5)
	entries := logs.AllUntimed()
	if len(entries) != 2 {
		t.Fatalf("%d log lines for one outage, want 2 (down, back): %v", len(entries), entries)
	}
	if e := entries[0]; e.Level != zapcore.WarnLevel || !strings.Contains(fmt.Sprint(e.ContextMap()["error"]), "10.1.2.3:6379") {
		t.Errorf("down line %v %v: want a warning with the error's details", e.Message, e.ContextMap())
	}
	if e := entries[1]; e.Level != zapcore.InfoLevel || e.ContextMap()["check"] != "redis" {
		t.Errorf("back line %v %v", e.Message, e.ContextMap())
	}
}

func TestHTTPServerLimits(t *testing.T) {
	srv := NewHTTPServer(http.NotFoundHandler())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 ||
		srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes >= http.DefaultMaxHeaderBytes {
		t.Errorf("limits %+v: want every timeout set and headers capped below net/http's default", srv)
	}
}

func TestHTTPServerRejectsHugeHeaders(t *testing.T) {
	s := startServer(t, nil)
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/healthz", nil)
	req.Header.Set("X-Filler", strings.Repeat("a", 2*MaxHeaderBytes))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d for %d bytes of headers, want 431", res.StatusCode, 2*MaxHeaderBytes)
	}
}
