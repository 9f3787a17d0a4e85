package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

// TestE2EStartsWithItsBrokers: a role started before its brokers answer waits for them instead
// of exiting, with /healthz up (so Kubernetes does not restart it) and /readyz naming the brokers,
// and consumes once they answer.
func TestE2EStartsWithItsBrokers(t *testing.T) {
	brokers := pipelinetest.Kafka(t)
	redisAddr := pipelinetest.Redis(t)
	tp := newE2ETopics(t, brokers, 1)
	proxy := pipelinetest.NewProxy(t, brokers[0])
	proxy.Down()

	addr := freeAddr(t)
	p := startProc(t, enricherEnv([]string{proxy.Addr()}, tp, addr, "THREATPIPE_REDIS_ADDR="+redisAddr), addr)
	status, body := waitHTTP(t, "http://"+addr+"/readyz")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"kafka":"unreachable"`) {
		t.Errorf("readyz before the brokers answer: %d %s, want 503 naming kafka unreachable", status, body)
	}
	if status, _ := waitHTTP(t, "http://"+addr+"/healthz"); status != http.StatusOK {
		t.Errorf("healthz while waiting for the brokers: %d, want 200", status)
	}
	select {
	case err := <-p.done:
		t.Fatalf("the enricher exited while waiting for its brokers: %v", err)
	case <-time.After(3 * time.Second):
	}

	proxy.Up()
	pipelinetest.Produce(t, brokers, tp.in, nativeEvents(0, 10))
	pipelinetest.WaitFor(t, 60*time.Second, "10 outputs once the brokers answer", func() bool {
		return pipelinetest.Count(t, brokers, tp.out) >= 10
	})
	if status, body := waitHTTP(t, "http://"+addr+"/readyz"); status != http.StatusOK {
		t.Errorf("readyz once the brokers answer: %d %s", status, body)
	}
	logged := p.log.String()
	for _, want := range []string{"brokers unreachable at start-up: waiting for them", "brokers answer again: starting"} {
		if n := strings.Count(logged, want); n != 1 {
			t.Errorf("%q logged %d times, want once", want, n)
		}
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}
