package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

func startServer(t *testing.T, checks map[string]Check) *Server {
	t.Helper()
	reg := NewRegistry()
	m := NewPipelineMetrics(reg)
	m.Consumed.WithLabelValues("indicators").Add(3)
	s, err := NewServer("127.0.0.1:0", reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range checks {
		s.AddCheck(name, c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func TestReadinessReflectsChecks(t *testing.T) {
	var redisDown atomic.Bool
	s := startServer(t, map[string]Check{
		"kafka": func(context.Context) error { return nil },
		"redis": func(context.Context) error {
			if redisDown.Load() {
				return errors.New("redis ping: connection refused")
			}
			return nil
		},
	})
	base := "http://" + s.Addr()
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Fatalf("readyz: %d %s", code, body)
	}
	redisDown.Store(true)
	time.Sleep(readyCacheTTL + 50*time.Millisecond)
	code, body := get(t, base+"/readyz")
	var res readiness
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusServiceUnavailable || res.Ready || res.Checks["redis"] != "unreachable" || res.Checks["kafka"] != "ok" {
		t.Fatalf("readyz with Redis down: %d %+v", code, res)
	}
	if strings.Contains(body, "refused") {
		t.Errorf("readyz echoes the check's error: %s", body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("healthz must not depend on dependencies: %d", code)
	}
}

func TestDrainingIsNotReady(t *testing.T) {
	s := startServer(t, map[string]Check{"kafka": func(context.Context) error { return nil }})
	s.SetDraining()
	code, body := get(t, "http://"+s.Addr()+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Fatalf("readyz while draining: %d %s", code, body)
	}
}

func TestChecksHonourTheTimeout(t *testing.T) {
	s := startServer(t, map[string]Check{"slow": func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }})
	start := time.Now()
	code, _ := get(t, "http://"+s.Addr()+"/readyz")
	if code != http.StatusServiceUnavailable || time.Since(start) > 5*time.Second {
		t.Fatalf("a hanging check must fail readiness within the check timeout: %d after %s", code, time.Since(start))
	}
}

func TestMetricsEndpoint(t *testing.T) {
	s := startServer(t, nil)
	code, body := get(t, "http://"+s.Addr()+"/metrics")
	for _, want := range []string{`threatpipe_events_consumed_total{topic="indicators"} 3`, "process_resident_memory_bytes", "go_goroutines"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
}

func TestNewLogger(t *testing.T) {
	if _, err := NewLogger("loud", "json"); err == nil {
		t.Error("an unknown level must be rejected")
	}
	for _, f := range []string{"json", "console"} {
		if l, err := NewLogger("debug", f); err != nil || !l.Core().Enabled(zap.DebugLevel) {
			t.Errorf("%s logger: %v", f, err)
		}
	}
}
