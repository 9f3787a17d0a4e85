package redisx

import (
	"context"
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
