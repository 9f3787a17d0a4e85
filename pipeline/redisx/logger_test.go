package redisx

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestLoggerRoutesAndSuppressesRepeats(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := NewLogger(zap.New(core), 10*time.Second)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	ctx := context.Background()
	dial := "redis: connection pool: failed to dial after %d attempts: %v"
	for range 50 {
		l.Printf(ctx, dial, 5, "dial tcp 127.0.0.1:6399: connect: connection refused")
	}
	l.Printf(ctx, "sentinel: new master=%q addr=%q", "mymaster", "10.0.0.5:6379")
	now = now.Add(11 * time.Second)
	l.Printf(ctx, dial, 5, "dial tcp 127.0.0.1:6399: connect: connection refused")

	got := logs.AllUntimed()
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3 (first dial failure, the Sentinel notice, the next window's dial failure): %v", len(got), got)
	}
	first, notice, again := got[0], got[1], got[2]
	if first.Level != zapcore.WarnLevel || first.Message != "connection pool: failed to dial after 5 attempts: dial tcp 127.0.0.1:6399: connect: connection refused" ||
		first.ContextMap()["component"] != "go-redis" {
		t.Errorf("first line %v %q %v", first.Level, first.Message, first.ContextMap())
	}
	if notice.Level != zapcore.InfoLevel {
		t.Errorf("a routine notice logged at %v", notice.Level)
	}
	if again.ContextMap()["repeated"] != int64(49) {
		t.Errorf("the next window's line carries repeated=%v, want 49", again.ContextMap()["repeated"])
	}
}

func TestLoggerForgetsBeyondItsBound(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := NewLogger(zap.New(core), time.Hour)
	for i := range 3 * maxTracked {
		l.Printf(context.Background(), "failed %d", i)
	}
	if len(l.seen) > maxTracked {
		t.Errorf("%d lines remembered, want at most %d", len(l.seen), maxTracked)
	}
	if logs.Len() != 3*maxTracked {
		t.Errorf("%d distinct lines logged, want %d", logs.Len(), 3*maxTracked)
	}
}
