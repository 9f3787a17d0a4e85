package enrich

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// TestBudgetsOnRedisCluster spends a source's share and an IPv6 /64's budget in one admission on
// a real Redis Cluster (scripts/services.sh up-cluster): both keys must be in one hash slot, or
// the script fails with CROSSSLOT and the budgets silently stop applying.
func TestBudgetsOnRedisCluster(t *testing.T) {
	addrs := os.Getenv("THREATPIPE_TEST_REDIS_CLUSTER_ADDRS")
	if addrs == "" {
		if os.Getenv("THREATPIPE_TEST_REQUIRE_REDIS_TOPOLOGIES") == "1" {
			t.Fatal("THREATPIPE_TEST_REDIS_CLUSTER_ADDRS is not set (scripts/services.sh up-cluster)")
		}
		t.Skip("no Redis Cluster: set THREATPIPE_TEST_REDIS_CLUSTER_ADDRS (scripts/services.sh env-cluster)")
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
	t.Cleanup(func() { _ = rdb.Close() })
	r := &rig{rdb: rdb, metrics: NewMetrics(prometheus.NewRegistry()), ops: &recordingOps{}}
	p := &fakeProvider{name: providerName(t)}
	pol := testPolicy()
	pol.V6PrefixBudget, pol.Quota, pol.SourceShare = 2, 1000, 0.5
	l := NewLookuper(LookuperOptions{Provider: p, Policy: pol, Redis: rdb, Keys: testKeys, Cache: startedCache(t, r),
		Metrics: r.metrics, Log: testLog(t), Owner: "a", Defer: true})
	t.Cleanup(l.Close)
	held := 0
	for _, a := range []string{"2001:db8:cc:1::1", "2001:db8:cc:1::2", "2001:db8:cc:1::3", "2001:db8:cc:1::4"} {
		out := l.LookupFor(context.Background(), ip(a), Hint{Source: "fw"})
		if out.Status == event.StatusPending {
			held++
		}
	}
	if p.calls.Load() != 2 || held != 2 {
		t.Fatalf("%d provider calls, %d held for one /64 with a budget of 2: want 2 and 2", p.calls.Load(), held)
	}
}
