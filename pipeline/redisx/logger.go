package redisx

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Logger routes go-redis's own log lines (pool dial failures, Sentinel and Cluster changes) to
// zap, so they come out in the process's log format instead of as plain text beside it. A line
// repeated within the window is counted, not logged again: while Redis is down every command's
// dial fails the same way. Install it with redis.SetLogger, which is process-global: the
// command's main does it once, never a library.
type Logger struct {
	log    *zap.Logger
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]*repeat
}

type repeat struct {
	at         time.Time
	suppressed int
}

// maxTracked bounds the distinct lines remembered; go-redis has a few dozen formats, but their
// arguments (addresses, names) vary.
const maxTracked = 256

// NewLogger returns a Logger writing to log that logs a repeated line at most once per window.
func NewLogger(log *zap.Logger, window time.Duration) *Logger {
	// Caller: the go-redis line that logged, past Printf and go-redis's forwarding logger.
	return &Logger{log: log.WithOptions(zap.AddCallerSkip(2)), window: window, now: time.Now, seen: make(map[string]*repeat)}
}

// Install makes l go-redis's logger for the whole process (and checks, at compile time, that it
// satisfies go-redis's interface).
func (l *Logger) Install() { redis.SetLogger(l) }

// Printf implements go-redis's internal Logging interface.
func (l *Logger) Printf(_ context.Context, format string, v ...any) {
	msg := strings.TrimSpace(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
	repeated, ok := l.admit(msg)
	if !ok {
		return
	}
	fields := []zap.Field{zap.String("component", "go-redis")}
	if repeated > 0 {
		fields = append(fields, zap.Int("repeated", repeated))
	}
	if looksLikeTrouble(msg) {
		l.log.Warn(msg, fields...)
		return
	}
	l.log.Info(msg, fields...)
}

// admit says whether msg is to be logged now, and how often it was suppressed since it last was.
func (l *Logger) admit(msg string) (repeated int, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, found := l.seen[msg]; found {
		if now.Sub(r.at) < l.window {
			r.suppressed++
			return 0, false
		}
		repeated = r.suppressed
	}
	if len(l.seen) >= maxTracked {
		for k, r := range l.seen {
			if now.Sub(r.at) >= l.window {
				delete(l.seen, k)
			}
		}
		if len(l.seen) >= maxTracked {
			clear(l.seen)
		}
	}
	l.seen[msg] = &repeat{at: now}
	return repeated, true
}

// looksLikeTrouble picks the warning level: go-redis logs failures and routine notices (a new
// Sentinel master, a discovered Sentinel) through the same call.
func looksLikeTrouble(msg string) bool {
	m := strings.ToLower(msg)
	for _, w := range []string{"fail", "error", "refused", "timeout", "timed out", "panic", "unable", "cannot", "broken", "discard", "bad "} {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}
