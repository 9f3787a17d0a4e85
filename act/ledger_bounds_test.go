package act

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// TestLedgerSeenIsBoundedPerAction: a target sighted without end leaves one set of at most
// SeenPerAction handled events per action, not a key per sighting, and the set forgets events
// older than the window.
func TestLedgerSeenIsBoundedPerAction(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	ctx := context.Background()
	l := NewLedger(rdb, prefix, "me")
	now := time.Now()
	l.now = func() time.Time { return now }
	const extra = 10
	for i := range SeenPerAction + extra {
		if err := l.MarkSeen(ctx, false, "p", "s", "t", fmt.Sprintf("evt-%d", i), time.Hour); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Millisecond)
	}
	set := l.seenSetKey(false, "p", "s", "t")
	if n := rdb.ZCard(ctx, set).Val(); n != SeenPerAction {
		t.Errorf("%d events remembered, want %d", n, SeenPerAction)
	}
	if keys := rdb.Keys(ctx, prefix+":act:seen:*").Val(); len(keys) != 1 {
		t.Errorf("%d seen keys, want the one set: %v", len(keys), keys[:min(len(keys), 3)])
	}
	for id, want := range map[string]bool{"evt-0": false, fmt.Sprintf("evt-%d", extra-1): false, fmt.Sprintf("evt-%d", extra): true, fmt.Sprintf("evt-%d", SeenPerAction+extra-1): true} {
		if seen, err := l.Seen(ctx, false, "p", "s", "t", id); err != nil || seen != want {
			t.Errorf("Seen(%s) = %v, %v; want %v (the oldest are forgotten)", id, seen, err, want)
		}
	}
	if ttl := rdb.PTTL(ctx, set).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("seen set TTL %s, want the window", ttl)
	}

	// A window later, the next event leaves only itself.
	now = now.Add(time.Hour + time.Second)
	if err := l.MarkSeen(ctx, false, "p", "s", "t", "late", time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := rdb.ZCard(ctx, set).Val(); n != 1 {
		t.Errorf("%d events remembered after the window, want 1", n)
	}
}

// TestLedgerSeenReadsTheKeysOfEarlierReleases: an event recorded as handled by a release that
// kept one key per event is still seen after the upgrade.
func TestLedgerSeenReadsTheKeysOfEarlierReleases(t *testing.T) {
	t.Parallel()
	rdb, prefix := newRedis(t)
	ctx := context.Background()
	l := NewLedger(rdb, prefix, "me")
	if err := rdb.Set(ctx, l.legacySeenKey(false, "p", "s", "t", "old-evt"), "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"old-evt": true, "other": false} {
		if seen, err := l.Seen(ctx, false, "p", "s", "t", id); err != nil || seen != want {
			t.Errorf("Seen(%s) = %v, %v; want %v", id, seen, err, want)
		}
	}
}

// ownRedis starts a redis-server of the test's own (the shared one's configuration must not be
// changed) and returns a client to it.
func ownRedis(t *testing.T) *redis.Client {
	t.Helper()
	pipelinetest.Redis(t) // skips (or fails) like every Redis test when services are not offered
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	t.Cleanup(func() { _ = c.Close() })
	pipelinetest.WaitFor(t, 10*time.Second, "own redis-server", func() bool { return c.Ping(context.Background()).Err() == nil })
	return c
}

func TestCheckEviction(t *testing.T) {
	admin := ownRedis(t)
	ctx := context.Background()
	limited := redis.NewClient(&redis.Options{Addr: admin.Options().Addr, Username: "ledger", Password: "ledger-pw"})
	t.Cleanup(func() { _ = limited.Close() })
	if err := admin.Do(ctx, "ACL", "SETUSER", "ledger", "on", ">ledger-pw", "~*", "+@all", "-config").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		client        *redis.Client
		policy, limit string
		wantPolicy    string
		wantWarn      bool
		wantUnknown   bool
	}{
		{"noeviction", admin, "noeviction", "0", "noeviction", false, false},
		{"allkeys-lru with a limit", admin, "allkeys-lru", "104857600", "allkeys-lru", true, false},
		{"volatile-lru without a limit", admin, "volatile-lru", "0", "volatile-lru", true, false},
		{"CONFIG refused by the ACL", limited, "allkeys-lru", "0", "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := admin.ConfigSet(ctx, "maxmemory-policy", tc.policy).Err(); err != nil {
				t.Fatal(err)
			}
			if err := admin.ConfigSet(ctx, "maxmemory", tc.limit).Err(); err != nil {
				t.Fatal(err)
			}
			reports, err := CheckEviction(ctx, tc.client)
			if (err != nil) != tc.wantUnknown || len(reports) != 1 || reports[0].Policy != tc.wantPolicy {
				t.Fatalf("CheckEviction: %+v %v", reports, err)
			}
			if !tc.wantUnknown && reports[0].MayEvict() != tc.wantWarn {
				t.Errorf("MayEvict %v for %s", reports[0].MayEvict(), tc.policy)
			}
			if l, _ := strconv.ParseInt(tc.limit, 10, 64); !tc.wantUnknown && reports[0].MaxMemory != l {
				t.Errorf("maxmemory %d, want %s", reports[0].MaxMemory, tc.limit)
			}
			core, logs := observer.New(zap.InfoLevel)
			LogEviction(ctx, tc.client, zap.New(core))
			warned := logs.FilterLevelExact(zap.WarnLevel).Len() == 1
			unknown := logs.FilterMessageSnippet("could not read").Len() == 1
			if warned != tc.wantWarn || unknown != tc.wantUnknown || logs.Len() != map[bool]int{true: 1, false: 0}[tc.wantWarn || tc.wantUnknown] {
				t.Errorf("logged %v", logs.All())
			}
		})
	}
}
