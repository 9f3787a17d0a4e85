package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/enrich/sim"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// The Redis topologies besides a single node, as scripts/services.sh up-cluster and up-sentinel
// start them and env-cluster / env-sentinel name them. Without their variables the tests skip,
// unless THREATPIPE_TEST_REQUIRE_REDIS_TOPOLOGIES=1, which makes a missing topology a failure.
const (
	clusterAddrsVar   = "THREATPIPE_TEST_REDIS_CLUSTER_ADDRS"
	sentinelAddrsVar  = "THREATPIPE_TEST_REDIS_SENTINEL_ADDRS"
	sentinelMasterVar = "THREATPIPE_TEST_REDIS_SENTINEL_MASTER"
	requireTopologies = "THREATPIPE_TEST_REQUIRE_REDIS_TOPOLOGIES"
)

func needTopology(t *testing.T, what, start string, vars ...string) []string {
	t.Helper()
	var vals, missing []string
	for _, v := range vars {
		val := os.Getenv(v)
		if val == "" {
			missing = append(missing, v)
		}
		vals = append(vals, val)
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("%s needs a real %s: set %s (eval \"$(scripts/services.sh %s)\" after scripts/services.sh up-%s)",
			t.Name(), what, strings.Join(missing, ", "), "env-"+start, start)
		if os.Getenv(requireTopologies) == "1" {
			t.Fatalf("%s; %s=1 makes that a failure", msg, requireTopologies)
		}
		t.Skip(msg)
	}
	return vals
}

// redisTopology is one way of running Redis: the settings threatpipe gets, a client of the test's
// own (go-redis, not threatpipe's code), and a failover to run while events flow.
type redisTopology struct {
	name string
	env  []string // THREATPIPE_REDIS_ADDR and, for Sentinel, THREATPIPE_REDIS_MASTER_NAME
	rdb  redis.UniversalClient
	// failover runs in the middle of the load and describes what it did; the prefixes are the
	// ones the enricher and act write under.
	failover func(ctx context.Context, cachePrefix, actPrefix string) (string, error)
	// settle waits until the topology is whole again after the failover (for the next test).
	settle func(ctx context.Context) (string, error)
}

// TestE2ERedisClusterSlotMoveUnderLoad runs the enricher and act on a 3-master Redis Cluster and
// moves the hash slots of the keys in use (the shared rate limit, the quota, the block queue, the
// health snapshots, and a range of cache and ledger slots) to another master while events flow.
func TestE2ERedisClusterSlotMoveUnderLoad(t *testing.T) {
	addrs := strings.Split(needTopology(t, "Redis Cluster", "cluster", clusterAddrsVar)[0], ",")
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if state, err := clusterState(ctx, addrs[0]); err != nil || state != "ok" {
		t.Fatalf("Redis Cluster at %s: cluster_state %q (%v), want ok", addrs[0], state, err)
	}
	if err := clusterAgreed(ctx, addrs); err != nil {
		t.Fatalf("Redis Cluster at %s before the test: %v (scripts/services.sh up-cluster repairs it)", addrs[0], err)
	}
	runTopologyE2E(t, &redisTopology{
		name: "cluster",
		env:  []string{"THREATPIPE_REDIS_ADDR=" + strings.Join(addrs, ",")},
		rdb:  rdb,
		failover: func(ctx context.Context, cachePrefix, actPrefix string) (string, error) {
			return moveSlotsInUse(ctx, rdb, addrs, cachePrefix, actPrefix)
		},
		settle: func(ctx context.Context) (string, error) {
			for _, a := range addrs {
				if s, err := clusterState(ctx, a); err != nil || s != "ok" {
					return "", fmt.Errorf("%s: cluster_state %q (%v)", a, s, err)
				}
			}
			if err := clusterAgreed(ctx, addrs); err != nil {
				return "", err
			}
			return "cluster_state ok on every node, every node agreeing on every slot's owner", nil
		},
	})
}

// TestE2ERedisSentinelFailoverUnderLoad runs the enricher and act on a Sentinel-managed primary
// and replica and has the Sentinels promote the replica (SENTINEL FAILOVER) while events flow.
func TestE2ERedisSentinelFailoverUnderLoad(t *testing.T) {
	vals := needTopology(t, "Redis Sentinel set", "sentinel", sentinelAddrsVar, sentinelMasterVar)
	sentinels, master := strings.Split(vals[0], ","), vals[1]
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: master, SentinelAddrs: sentinels})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before, err := sentinelPrimary(ctx, sentinels[0], master)
	if err != nil {
		t.Fatalf("Sentinel %s: %v", sentinels[0], err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("primary %s of %s through the Sentinels: %v", before, master, err)
	}
	// Without it, the writes the old primary acknowledges between the promotion and the clients'
	// switch are thrown away when it rejoins as a replica: paid lookups and actions then repeat.
	if v, err := rdb.ConfigGet(ctx, "min-replicas-to-write").Result(); err != nil || v["min-replicas-to-write"] == "0" {
		t.Fatalf("primary %s: min-replicas-to-write %v (%v): a failover would lose acknowledged writes; "+
			"scripts/services.sh up-sentinel sets it to 1", before, v, err)
	}
	runTopologyE2E(t, &redisTopology{
		name: "sentinel",
		env: []string{"THREATPIPE_REDIS_ADDR=" + strings.Join(sentinels, ","), "THREATPIPE_REDIS_MASTER_NAME=" + master,
			"THREATPIPE_REDIS_WAIT_REPLICAS=1"},
		rdb: rdb,
		failover: func(ctx context.Context, _, _ string) (string, error) {
			return sentinelFailover(ctx, sentinels, master)
		},
		settle: func(ctx context.Context) (string, error) {
			return sentinelSettled(ctx, sentinels, master)
		},
	})
}

// runTopologyE2E is the end-to-end run on one topology: two enrichers (one group) with Criminal IP
// simulated, one act worker with a block, a page and a ticket per critical address, all on the
// topology's Redis. Events are produced in batches over about nine seconds; the failover starts
// after a third of them. Every event must be scored, each new address paid for exactly once, and
// each qualifying address acted on exactly once per step.
func runTopologyE2E(t *testing.T, topo *redisTopology) {
	brokers := pipelinetest.Kafka(t)
	start := time.Now()
	tp := newE2ETopics(t, brokers, 3)
	simSrv, simURL := simulator(t, sim.Options{Latency: 15 * time.Millisecond, Jitter: 10 * time.Millisecond})
	pEnv := providerEnv(t, "", simURL, "sim-key", topo.env...)
	pEnv = slices.DeleteFunc(pEnv, func(kv string) bool { return kv == "THREATPIPE_REDIS_ADDR=" })
	// A quota, so that its counter (a key of its own) is written on every paid call too.
	pEnv = append(pEnv, "THREATPIPE_CRIMINALIP_QUOTA=100000", "THREATPIPE_CRIMINALIP_SOURCE_SHARE=1")
	cachePrefix := providerPrefix(t, pEnv)

	const threshold = 50
	fakes, sinksURL := serveSOCFakes(t, 10*time.Millisecond)
	playbooks := criticalPlaybook(t, threshold)
	actPrefix := pipelinetest.Name(t, "act")
	results := pipelinetest.Topic(t, brokers, "results", 1)
	actHTTP := freeAddr(t)
	actDLQ := pipelinetest.Topic(t, brokers, "actdlq", 1)
	aEnv := actEnv(brokers, "", actPrefix, tp.out, results, actDLQ,
		pipelinetest.Topic(t, brokers, "alerts", 1), playbooks, sinksURL,
		append([]string{"THREATPIPE_KAFKA_CHANGES_TOPIC=" + tp.changes, "THREATPIPE_HTTP_ADDR=" + actHTTP,
			"THREATPIPE_ACT_MAX_BLOCKS_PER_MINUTE=100000"}, topo.env...)...)
	aEnv = slices.DeleteFunc(aEnv, func(kv string) bool { return kv == "THREATPIPE_REDIS_ADDR=" })

	var enrichers []*proc
	for range 2 {
		addr := freeAddr(t)
		enrichers = append(enrichers, startProc(t, enricherEnv(brokers, tp, addr, pEnv...), addr))
	}
	worker := startCommand(t, "act", aEnv, actHTTP)
	waitGroupMembers(t, brokers, tp.group, 2)
	waitReady(t, append(slices.Clone(enrichers), worker), 60*time.Second)
	startup := time.Since(start)

	// 600 addresses named three times each (1,800 events), in 90 batches of 20 every 100 ms.
	ips := publicIPs(600)
	msgs := eventsFor(ips, 3, "topo", 15)
	const batch = 20
	type failoverResult struct {
		what string
		took time.Duration
		err  error
	}
	done := make(chan failoverResult, 1)
	var failoverAt time.Time
	var producedAtFailover, foProduced int
	var foScored int64
	var fo *failoverResult
	loadStart := time.Now()
	for i := 0; i < len(msgs); i += batch {
		if i == len(msgs)/3 {
			failoverAt = time.Now()
			producedAtFailover = i
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
				defer cancel()
				what, err := topo.failover(ctx, cachePrefix, actPrefix)
				done <- failoverResult{what, time.Since(failoverAt), err}
			}()
		}
		pipelinetest.Produce(t, brokers, tp.in, msgs[i:min(i+batch, len(msgs))])
		time.Sleep(100 * time.Millisecond)
		if fo == nil {
			select {
			case r := <-done:
				fo = &r
				foProduced, foScored = i+batch, pipelinetest.Count(t, brokers, tp.out)
			default:
			}
		}
	}
	produced := time.Since(loadStart)
	if fo == nil {
		select {
		case r := <-done:
			fo = &r
			foProduced, foScored = len(msgs), pipelinetest.Count(t, brokers, tp.out)
		case <-time.After(45 * time.Second):
			t.Fatal("the failover did not finish within 45 s")
		}
	}
	if fo.err != nil {
		t.Fatalf("%s failover: %v", topo.name, fo.err)
	}
	if foProduced >= len(msgs) {
		t.Errorf("the failover took longer than the load (%s): it did not happen while events flowed", fo.took)
	}
	pipelinetest.WaitFor(t, 60*time.Second, "every event scored", func() bool {
		return pipelinetest.Count(t, brokers, tp.out) >= int64(len(msgs))
	})
	allScored := time.Since(loadStart)

	counts, _ := outputs(t, brokers, tp.out)
	var lost []string
	for _, m := range msgs {
		if counts[string(m.Key)] == 0 {
			lost = append(lost, string(m.Key))
		}
	}
	evs := scoredEvents(t, brokers, tp.out)
	pause := longestPause(t, brokers, tp.out)
	scoreOf := map[string]int{}
	st := statuses(evs)
	var notAnswered []string
	for _, ev := range evs {
		scoreOf[ev.Indicator.Value] = max(scoreOf[ev.Indicator.Value], ev.Score)
		if o := ev.Providers["criminalip"]; o == nil || (o.Status != event.StatusOK && o.Status != event.StatusNotFound) {
			notAnswered = append(notAnswered, fmt.Sprintf("%s %s: %+v", ev.EventID, ev.Indicator.Value, o))
		}
	}
	for name, topic := range map[string]string{"enricher DLQ": tp.dlq, "act DLQ": actDLQ} {
		if n := pipelinetest.Count(t, brokers, topic); n != 0 {
			t.Errorf("%d records in the %s", n, name)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d events lost across the %s failover, e.g. %v", len(lost), len(msgs), topo.name, lost[:min(5, len(lost))])
	}
	if len(notAnswered) > 0 {
		t.Errorf("%d events published without Criminal IP's answer (statuses %v), e.g. %v", len(notAnswered), st, notAnswered[:min(3, len(notAnswered))])
	}
	sims := simSrv.Stats()
	perIP := float64(sims.Lookups) / float64(len(ips))
	if sims.Lookups != int64(len(ips)) || sims.DistinctIPs != len(ips) || sims.MaxCallsPerIP != 1 {
		t.Errorf("paid calls: %d for %d distinct addresses (%d distinct called, at most %d per address): want exactly one per address; %s",
			sims.Lookups, len(ips), sims.DistinctIPs, sims.MaxCallsPerIP, paidTwice(simSrv.Provider("criminalip"), evs, failoverAt))
	}

	var qualifying []string
	for ip, s := range scoreOf {
		if s >= threshold {
			qualifying = append(qualifying, ip)
		}
	}
	sort.Strings(qualifying)
	if len(qualifying) == 0 || len(qualifying) == len(ips) {
		t.Fatalf("%d of %d addresses score %d or more: the playbook would not tell acting from not acting", len(qualifying), len(ips), threshold)
	}
	waitActCommitted(t, brokers, tp.out, 60*time.Second, actPrefix+"-block", actPrefix+"-alert", actPrefix+"-ticket")
	actsDone := time.Since(loadStart)
	triggers, _, creates, _ := fakes.snapshot()
	blocked := edlList(t, "http://"+actHTTP)
	var wrong []string
	for _, ip := range ips {
		want := 0
		if _, ok := slices.BinarySearch(qualifying, ip); ok {
			want = 1
		}
		if triggers["threatpipe:"+ip] != want || creates[ip] != want || slices.Contains(blocked, ip) != (want == 1) {
			wrong = append(wrong, fmt.Sprintf("%s (score %d): %d pages, %d tickets, on the EDL %v; want %d",
				ip, scoreOf[ip], triggers["threatpipe:"+ip], creates[ip], slices.Contains(blocked, ip), want))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("%d addresses acted on other than once per step, e.g. %v", len(wrong), wrong[:min(5, len(wrong))])
	}
	outcomes := map[string]int{}
	for _, r := range readRecords(t, brokers, results) {
		outcomes[string(r.Outcome)]++
	}
	if outcomes["done"] != 3*len(qualifying) {
		t.Errorf("audit outcomes %v: want %d done (3 steps x %d addresses)", outcomes, 3*len(qualifying), len(qualifying))
	}

	stopAll(t, append(enrichers, worker)...)
	settleCtx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	settled, err := topo.settle(settleCtx)
	settled += fmt.Sprintf(" (%s after the failover started)", time.Since(failoverAt).Round(100*time.Millisecond))
	if err != nil {
		t.Errorf("%s did not settle after the failover: %v", topo.name, err)
	}
	keys := countTopologyKeys(t, topo.rdb, cachePrefix) + countTopologyKeys(t, topo.rdb, actPrefix)
	writeReport(t, "redis-"+topo.name+"-e2e.txt", fmt.Sprintf(
		"redis %s end to end: start-up of 2 enrichers + act %s; %d events (%d addresses x 3) produced over %s, failover started after %d; "+
			"failover: %s in %s (by then %d produced, %d scored); all scored %s after the first batch, longest pause in the scored stream %s; act committed at %s; events in %d, scored %d distinct (%d published), lost %d; "+
			"paid calls %d for %d addresses (%.2f per address, max %d); act: %d of %d addresses at score >= %d, %d pages, %d tickets, %d on the EDL, "+
			"audit %v; %d keys under the test's prefixes; after: %s\n",
		topo.name, startup.Round(100*time.Millisecond), len(msgs), len(ips), produced.Round(100*time.Millisecond), producedAtFailover,
		fo.what, fo.took.Round(10*time.Millisecond), foProduced, foScored, allScored.Round(100*time.Millisecond), pause.Round(10*time.Millisecond), actsDone.Round(100*time.Millisecond),
		len(msgs), len(counts), pipelinetest.Count(t, brokers, tp.out), len(lost),
		sims.Lookups, len(ips), perIP, sims.MaxCallsPerIP, len(qualifying), len(ips), threshold, len(triggers), len(creates), len(blocked),
		outcomes, keys, settled))
}

// paidTwice describes the addresses looked up more than once: when each of their events was
// scored, relative to the failover's start, and how its answer came (fresh, joined, cache hit).
func paidTwice(api *sim.API, evs []event.Scored, failoverAt time.Time) string {
	byIP := map[string][]string{}
	for _, ev := range evs {
		ip := ev.Indicator.Value
		if api.Calls(ip) < 2 || len(byIP) >= 5 && byIP[ip] == nil {
			continue
		}
		how := "fresh"
		if o := ev.Providers["criminalip"]; o == nil {
			how = "no answer"
		} else if c := o.Cache; c != nil && c.Joined {
			how = "joined"
		} else if c != nil && c.Hit {
			how = "hit"
		}
		byIP[ip] = append(byIP[ip], fmt.Sprintf("%+.2fs %s", ev.ProcessedAt.Sub(failoverAt).Seconds(), how))
	}
	var out []string
	for ip, seen := range byIP {
		out = append(out, fmt.Sprintf("%s (%d calls): %s", ip, api.Calls(ip), strings.Join(seen, ", ")))
	}
	sort.Strings(out)
	return "e.g. " + strings.Join(out, "; ")
}

// longestPause is the longest time between two scored events (their Kafka timestamps): how long
// the failover held the stream up.
func longestPause(t *testing.T, brokers []string, topic string) time.Duration {
	var at []time.Time
	for _, m := range pipelinetest.ReadAll(t, brokers, topic) {
		at = append(at, m.Time)
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	var longest time.Duration
	for i := 1; i < len(at); i++ {
		longest = max(longest, at[i].Sub(at[i-1]))
	}
	return longest
}

// countTopologyKeys counts the keys under prefix on every master (SCAN is per node on a Cluster).
func countTopologyKeys(t *testing.T, rdb redis.UniversalClient, prefix string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := 0
	scan := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, "*"+prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			n++
		}
		return it.Err()
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		mu := make(chan struct{}, 1)
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu <- struct{}{}
			defer func() { <-mu }()
			return scan(ctx, c)
		})
	} else {
		it := rdb.Scan(ctx, 0, "*"+prefix+"*", 1000).Iterator()
		for it.Next(ctx) {
			n++
		}
		err = it.Err()
	}
	if err != nil {
		t.Errorf("scan %s: %v", prefix, err)
	}
	return n
}

// ---------------------------------------------------------------- Cluster

func clusterState(ctx context.Context, addr string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
			return v, nil
		}
	}
	return "", errors.New("no cluster_state in CLUSTER INFO")
}

// clusterAgreed checks what cluster_state:ok does not: that every node names the same owner for
// every slot and that no slot is open (MIGRATING or IMPORTING), as redis-cli --cluster check does.
// A move cut short leaves such a slot, and the next move of it would fail half-way.
func clusterAgreed(ctx context.Context, addrs []string) error {
	var first [16384]string
	for i, a := range addrs {
		view, open, err := clusterView(ctx, a)
		if err != nil {
			return fmt.Errorf("CLUSTER NODES on %s: %w", a, err)
		}
		if len(open) > 0 {
			return fmt.Errorf("%s has open slots %v", a, open)
		}
		if i == 0 {
			first = view
			continue
		}
		for s := range view {
			if view[s] != first[s] {
				return fmt.Errorf("slot %d: %s names owner %q, %s names %q", s, addrs[0], first[s], a, view[s])
			}
		}
	}
	for s, id := range first {
		if id == "" {
			return fmt.Errorf("slot %d has no owner", s)
		}
	}
	return nil
}

// clusterView is one node's view of the slots' owners (by node id) and its own open slots.
func clusterView(ctx context.Context, addr string) (view [16384]string, open []string, err error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	raw, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return view, nil, err
	}
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				open = append(open, r)
				continue
			}
			lo, hi, _ := strings.Cut(r, "-")
			a, _ := strconv.Atoi(lo)
			b := a
			if hi != "" {
				b, _ = strconv.Atoi(hi)
			}
			for s := a; s <= b && s < len(view); s++ {
				view[s] = f[0]
			}
		}
	}
	return view, open, nil
}

// clusterNode is one master of the cluster as CLUSTER NODES names it.
type clusterNode struct {
	id, addr string
	slots    [][2]int
	c        *redis.Client
}

func (n *clusterNode) owns(slot int) bool {
	for _, r := range n.slots {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

func clusterMasters(ctx context.Context, seed string) ([]*clusterNode, error) {
	c := redis.NewClient(&redis.Options{Addr: seed})
	defer c.Close()
	raw, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	var out []*clusterNode
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "master") {
			continue
		}
		n := &clusterNode{id: f[0], addr: strings.SplitN(f[1], "@", 2)[0]}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") { // a slot being migrated or imported
				continue
			}
			lo, hi, _ := strings.Cut(r, "-")
			a, _ := strconv.Atoi(lo)
			b := a
			if hi != "" {
				b, _ = strconv.Atoi(hi)
			}
			n.slots = append(n.slots, [2]int{a, b})
		}
		n.c = redis.NewClient(&redis.Options{Addr: n.addr})
		out = append(out, n)
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("%d masters in CLUSTER NODES, want at least 2", len(out))
	}
	return out, nil
}

// moveSlotsInUse moves, while the pipeline runs, the slots of the keys every paid call and every
// action writes (the shared rate limit, the quota counter, the block queue and block rate, the
// health snapshots) to another master, and 300 more slots of the quota's master (cache entries,
// leases and ledger claims among them), as redis-cli --cluster reshard does: IMPORTING on the
// target, MIGRATING on the source, MIGRATE of the keys in batches, then the slot assigned to the
// target on every master. Clients in the middle get ASK, then MOVED.
//
// Every move goes to one target, and the hot slots that target owns move on afterwards, once
// every node knows its new config epoch. A node taking a slot bumps its epoch only when it does
// not already hold the highest one it knows of; two targets taking slots in quick succession can
// bump to the same epoch or not at all, and a source's gossip sent before it gave the slot up
// then wins it back in the target's view while the source has let it go: a slot nobody serves.
func moveSlotsInUse(ctx context.Context, rdb *redis.ClusterClient, addrs []string, cachePrefix, actPrefix string) (string, error) {
	masters, err := clusterMasters(ctx, addrs[0])
	if err != nil {
		return "", err
	}
	defer func() {
		for _, m := range masters {
			_ = m.c.Close()
		}
	}()
	owner := func(slot int) (int, error) {
		for i, m := range masters {
			if m.owns(slot) {
				return i, nil
			}
		}
		return 0, fmt.Errorf("no master owns slot %d", slot)
	}
	// The names the code writes (enrich.Keys, redis_rate's "rate:" prefix, act's ledger, the
	// health store), whether or not they exist at this instant: the rate key lives for
	// milliseconds at a time.
	hotKeys := []string{
		"rate:" + cachePrefix + ":v1:rate:criminalip",
		cachePrefix + ":v1:quota:criminalip:" + time.Now().UTC().Format("2006-01-02"),
		actPrefix + ":act:blocks:{blocks}:due",
		actPrefix + ":act:block-rate:window",
		actPrefix + ":health:{health}:index",
	}
	type move struct {
		slot     int
		src, dst *clusterNode
		why      string
	}
	var first, then []move
	seen := map[int]bool{}
	slots := make([]int, len(hotKeys))
	for i, k := range hotKeys {
		s, err := rdb.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			return "", err
		}
		slots[i] = int(s)
	}
	quotaOwner, err := owner(slots[1])
	if err != nil {
		return "", err
	}
	target := (quotaOwner + 1) % len(masters)
	for i, s := range slots {
		o, err := owner(s)
		if err != nil {
			return "", err
		}
		if seen[s] {
			continue
		}
		seen[s] = true
		if o == target {
			then = append(then, move{s, masters[o], masters[(o+1)%len(masters)], hotKeys[i]})
		} else {
			first = append(first, move{s, masters[o], masters[target], hotKeys[i]})
		}
	}
	hot := len(first) + len(then)
	src, dst := masters[quotaOwner], masters[target]
	more := 0
	for _, r := range src.slots {
		for s := r[0]; s <= r[1] && more < 300; s++ {
			if !seen[s] {
				seen[s] = true
				more++
				first = append(first, move{s, src, dst, ""})
			}
		}
	}
	var keysMoved int
	var hotDone []string
	for phase, moves := range [][]move{first, then} {
		if len(moves) == 0 {
			continue
		}
		if err := epochsAgreed(ctx, masters); err != nil {
			return "", fmt.Errorf("before moving phase %d: %w", phase+1, err)
		}
		for _, mv := range moves {
			n, err := moveSlot(ctx, masters, mv.slot, mv.src, mv.dst)
			if err != nil {
				return "", err
			}
			keysMoved += n
			if mv.why != "" {
				hotDone = append(hotDone, fmt.Sprintf("%d (%s) %s->%s", mv.slot, mv.why, mv.src.addr, mv.dst.addr))
			}
		}
	}
	return fmt.Sprintf("%d slots moved with %d keys: the %d hot ones %s, and %d more %s->%s",
		hot+more, keysMoved, hot, strings.Join(hotDone, ", "), more, src.addr, dst.addr), nil
}

// epochsAgreed waits until every master names the same config epoch for every master: a node
// about to take a slot then knows the highest epoch, and bumps past it.
func epochsAgreed(ctx context.Context, masters []*clusterNode) error {
	for {
		var views []map[string]string
		for _, m := range masters {
			raw, err := m.c.ClusterNodes(ctx).Result()
			if err != nil {
				return err
			}
			v := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
				if f := strings.Fields(line); len(f) >= 8 {
					v[f[0]] = f[6]
				}
			}
			views = append(views, v)
		}
		agreed := true
		for _, v := range views[1:] {
			agreed = agreed && maps.Equal(v, views[0])
		}
		if agreed {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the masters do not agree on each other's config epochs: %v: %w", views, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// moveSlot migrates one slot and its keys from src to dst and returns how many keys moved. A move
// that fails before any key moved is undone (SETSLOT STABLE on both), so the slot is not left open.
func moveSlot(ctx context.Context, masters []*clusterNode, s int, src, dst *clusterNode) (int, error) {
	if err := dst.c.Do(ctx, "CLUSTER", "SETSLOT", s, "IMPORTING", src.id).Err(); err != nil {
		return 0, fmt.Errorf("slot %d importing on %s: %w", s, dst.addr, err)
	}
	if err := src.c.Do(ctx, "CLUSTER", "SETSLOT", s, "MIGRATING", dst.id).Err(); err != nil {
		undo := context.WithoutCancel(ctx)
		_ = dst.c.Do(undo, "CLUSTER", "SETSLOT", s, "STABLE").Err()
		_ = src.c.Do(undo, "CLUSTER", "SETSLOT", s, "STABLE").Err()
		return 0, fmt.Errorf("slot %d migrating on %s: %w", s, src.addr, err)
	}
	host, port, _ := strings.Cut(dst.addr, ":")
	moved := 0
	for {
		keys, err := src.c.ClusterGetKeysInSlot(ctx, s, 50).Result()
		if err != nil {
			return 0, err
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.c.Do(ctx, args...).Err(); err != nil {
			return 0, fmt.Errorf("migrate %d keys of slot %d: %w", len(keys), s, err)
		}
		moved += len(keys)
	}
	// The target first, then the source (which then answers MOVED), then the others.
	for _, m := range []*clusterNode{dst, src} {
		if err := m.c.Do(ctx, "CLUSTER", "SETSLOT", s, "NODE", dst.id).Err(); err != nil {
			return 0, fmt.Errorf("slot %d to %s on %s: %w", s, dst.id, m.addr, err)
		}
	}
	for _, m := range masters {
		if m != dst && m != src {
			_ = m.c.Do(ctx, "CLUSTER", "SETSLOT", s, "NODE", dst.id).Err()
		}
	}
	return moved, nil
}

// ---------------------------------------------------------------- Sentinel

func sentinelPrimary(ctx context.Context, sentinel, master string) (string, error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: sentinel})
	defer c.Close()
	addr, err := c.GetMasterAddrByName(ctx, master).Result()
	if err != nil {
		return "", err
	}
	if len(addr) != 2 {
		return "", fmt.Errorf("sentinel %s names %v as %s", sentinel, addr, master)
	}
	return addr[0] + ":" + addr[1], nil
}

func replicationRole(ctx context.Context, addr string) (role, link string, err error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "role:"); ok {
			role = v
		}
		if v, ok := strings.CutPrefix(line, "master_link_status:"); ok {
			link = v
		}
	}
	return role, link, nil
}

// sentinelFailover asks a Sentinel to promote the replica and waits until every Sentinel names
// the new primary and it answers as master.
func sentinelFailover(ctx context.Context, sentinels []string, master string) (string, error) {
	before, err := sentinelPrimary(ctx, sentinels[0], master)
	if err != nil {
		return "", err
	}
	c := redis.NewSentinelClient(&redis.Options{Addr: sentinels[0]})
	defer c.Close()
	start := time.Now()
	if err := c.Failover(ctx, master).Err(); err != nil {
		return "", fmt.Errorf("SENTINEL FAILOVER %s: %w", master, err)
	}
	var after string
	for {
		agreed := true
		for _, s := range sentinels {
			a, err := sentinelPrimary(ctx, s, master)
			if err != nil || a == before {
				agreed = false
				break
			}
			after = a
		}
		if agreed {
			if role, _, err := replicationRole(ctx, after); err == nil && role == "master" {
				break
			}
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("the Sentinels did not all name a new primary for %s (was %s): %w", master, before, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("SENTINEL FAILOVER %s: primary %s -> %s, every Sentinel agreeing after %s",
		master, before, after, time.Since(start).Round(10*time.Millisecond)), nil
}

// sentinelSettled waits until the old primary replicates from the new one with its link up, so
// the next run finds a primary with a replica again.
func sentinelSettled(ctx context.Context, sentinels []string, master string) (string, error) {
	start := time.Now()
	primary, err := sentinelPrimary(ctx, sentinels[0], master)
	if err != nil {
		return "", err
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinels[0]})
	defer sc.Close()
	for {
		replicas, err := sc.Replicas(ctx, master).Result()
		if err == nil {
			for _, r := range replicas {
				addr := r["ip"] + ":" + r["port"]
				if role, link, err := replicationRole(ctx, addr); err == nil && role == "slave" && link == "up" && !strings.Contains(r["flags"], "down") {
					return fmt.Sprintf("primary %s, replica %s linked %s after the failover", primary, addr, time.Since(start).Round(100*time.Millisecond)), nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no linked replica of %s (primary %s): %w", master, primary, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
