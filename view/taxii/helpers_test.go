package taxii

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/view"
)

// testStore is a view store on the real Redis under a fresh prefix, removed when the test ends.
func testStore(t *testing.T, now func() time.Time) *view.Store {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: pipelinetest.Redis(t)})
	prefix := pipelinetest.Name(t, "tp")
	t.Cleanup(func() {
		ctx := context.Background()
		var keys []string
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		_ = rdb.Close()
	})
	return view.NewStore(rdb, prefix, view.StoreOptions{Retention: 24 * time.Hour, History: 10, Now: now})
}

// scoredEvent is a scored event of ip, as the enricher publishes it.
func scoredEvent(ip string, score int, at time.Time, id string) *event.Scored {
	ind, err := event.ParseIP(ip)
	if err != nil {
		panic(err)
	}
	return &event.Scored{
		SchemaVersion: event.SchemaVersion, EventID: id, ObservedAt: at, ProcessedAt: at,
		Source: "test-sensor", InputFormat: event.FormatNative, Indicator: ind,
		Score: score, Severity: event.SeverityOf(score), Confidence: 70, ValidatedBy: []string{"criminalip"},
		Tags:    []string{"scanner"},
		Reasons: []event.Reason{{Source: "criminalip", Detail: fmt.Sprintf("inbound score %d", score), Points: score}},
		Providers: map[string]*event.ProviderOutcome{"criminalip": {Status: event.StatusOK,
			Result: &event.Intel{Verdict: "malicious", Score: score}}},
	}
}

// population is n addresses, IPv4 and IPv6 in turn, with scores cycling through every severity
// (info included: it must not be published), each applied at its own millisecond from base.
func populate(t *testing.T, s *view.Store, base time.Time, n int) (published map[event.Severity]int) {
	t.Helper()
	published = map[event.Severity]int{}
	for i := range n {
		ip := fmt.Sprintf("203.0.%d.%d", 113+i/250, i%250+1)
		if i%2 == 1 {
			ip = fmt.Sprintf("2001:db8::%x", i)
		}
		score := []int{95, 70, 50, 30, 10}[i%5]
		ev := scoredEvent(ip, score, base.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("ev-%d", i))
		if _, err := s.ApplyScored(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if sev := event.SeverityOf(score); sev != event.SeverityInfo {
			published[sev]++
		}
	}
	return published
}

// testServer serves a TAXII server of s with a user "alice" (password "secret", every
// collection), a token user "siem" (token "tok", critical only) and no anonymous access.
func testServer(t *testing.T, s *view.Store) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	users := writeFile(t, dir, "users", fmt.Sprintf("# users\nalice:sha256:%s\n", sha256Hex("secret")))
	tokens := writeFile(t, dir, "tokens", fmt.Sprintf("siem:%s:critical\n", sha256Hex("tok")))
	auth, err := NewAuth(users, tokens, false)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	NewServer(s, auth, zap.NewNop()).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}
