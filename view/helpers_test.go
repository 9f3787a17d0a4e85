package view

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// clock is a settable clock for retention and relative-time tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testRedis connects to the real Redis and returns a key prefix of the test's own, whose keys
// are deleted when the test ends.
func testRedis(t *testing.T) (redis.UniversalClient, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: pipelinetest.Redis(t)})
	prefix := pipelinetest.Name(t, "tp")
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		_ = rdb.Close()
	})
	return rdb, prefix
}

// testStore is a store on the real Redis under a fresh prefix, with a settable clock.
func testStore(t *testing.T, o StoreOptions) (*Store, *clock) {
	t.Helper()
	rdb, prefix := testRedis(t)
	c := newClock()
	if o.Now == nil {
		o.Now = c.Now
	}
	return NewStore(rdb, prefix, o), c
}

// scoredOpt adjusts a test event.
type scoredOpt func(*event.Scored)

func withISP(isp string) scoredOpt { return func(e *event.Scored) { e.ISP = isp } }
func withTags(tags ...string) scoredOpt {
	return func(e *event.Scored) { e.Tags = tags }
}
func withCountry(cc string) scoredOpt {
	return func(e *event.Scored) { e.Geo = &event.GeoInfo{CountryISOCode: cc} }
}
func withAS(n int64, org string) scoredOpt {
	return func(e *event.Scored) { e.AS = &event.AS{Number: n, Organization: &event.ASOrgRef{Name: org}} }
}
func withID(id string) scoredOpt { return func(e *event.Scored) { e.EventID = id } }
func withProcessed(t time.Time) scoredOpt {
	return func(e *event.Scored) { e.ProcessedAt = t }
}
func withProviders(p map[string]*event.ProviderOutcome) scoredOpt {
	return func(e *event.Scored) { e.Providers = p }
}

var eventSeq struct {
	sync.Mutex
	n int
}

// scored builds a scored event for ip with score observed at at.
func scored(ip string, score int, at time.Time, opts ...scoredOpt) *event.Scored {
	eventSeq.Lock()
	eventSeq.n++
	n := eventSeq.n
	eventSeq.Unlock()
	ind, err := event.ParseIP(ip)
	if err != nil {
		panic(err)
	}
	ev := &event.Scored{
		SchemaVersion: event.SchemaVersion, EventID: fmt.Sprintf("ev-%d", n),
		ObservedAt: at, ProcessedAt: at, Source: "test-sensor", InputFormat: event.FormatNative,
		Indicator: ind, Score: score, Severity: event.SeverityOf(score), Tags: []string{},
		Reasons: []event.Reason{{Source: "criminalip", Detail: fmt.Sprintf("score %d", score), Points: score}},
	}
	for _, o := range opts {
		o(ev)
	}
	return ev
}

func mustApply(t *testing.T, s *Store, evs ...*event.Scored) {
	t.Helper()
	for _, ev := range evs {
		if _, err := s.ApplyScored(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

func ips(rows []Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.IP
	}
	return out
}
