package redisx

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

func TestPingRealRedisAndAClosedPort(t *testing.T) {
	addr := pipelinetest.Redis(t)
	for _, tc := range []struct {
		addr string
		ok   bool
	}{{addr, true}, {"127.0.0.1:1", false}} {
		c, err := config.Load([]string{"THREATPIPE_REDIS_ADDR=" + tc.addr, "THREATPIPE_REDIS_DIAL_TIMEOUT=500ms"})
		if err != nil {
			t.Fatal(err)
		}
		client := New(&c.Redis)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = Ping(client)(ctx)
		cancel()
		_ = client.Close()
		if (err == nil) != tc.ok {
			t.Errorf("ping %s: %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

// TestWaitReplicasNeedsThatManyReplicas: asking more replicas to acknowledge each write than the
// primary has fails the start naming the variable (the test's Redis has none); 0 asks nothing.
func TestWaitReplicasNeedsThatManyReplicas(t *testing.T) {
	addr := pipelinetest.Redis(t)
	for _, tc := range []struct {
		replicas string
		wantErr  bool
	}{{"0", false}, {"1", true}} {
		c, err := config.Load([]string{"THREATPIPE_REDIS_ADDR=" + addr, "THREATPIPE_REDIS_WAIT_REPLICAS=" + tc.replicas})
		if err != nil {
			t.Fatal(err)
		}
		client := New(&c.Redis)
		err = CheckSettings(context.Background(), client, &c.Redis)
		_ = client.Close()
		if (err != nil) != tc.wantErr || err != nil && !strings.Contains(err.Error(), "THREATPIPE_REDIS_WAIT_REPLICAS") {
			t.Errorf("WAIT_REPLICAS=%s: %v, want an error naming the variable %v", tc.replicas, err, tc.wantErr)
		}
	}
}
