package main

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoSmoke is `make run` in a test: the demo on embedded Kafka and Redis must score
// events, dead-letter the malformed ones and fire playbook actions, and stop cleanly on SIGINT,
// all within bounds. It needs nothing installed.
func TestDemoSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole pipeline")
	}
	viewAddr := freeAddr(t)
	out := &syncBuffer{}
	cmd := exec.Command(binary, "demo", "--http", viewAddr, "--rate", "300")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	})

	// Summary lines (every 5 s when not on a terminal) carry the counts.
	summary := regexp.MustCompile(`(\d+) scored/s \| cache hits [\d.]+% \| provider calls (\d+), \d+ saved by rules \| Criminal IP quota left \d+ \| dead letters (\d+) \| actions (\d+)`)
	start := time.Now()
	var scoredRate, paid, dead, actions int
	for time.Since(start) < 60*time.Second {
		if m := summary.FindAllStringSubmatch(out.String(), -1); len(m) > 0 {
			last := m[len(m)-1]
			scoredRate, _ = strconv.Atoi(last[1])
			paid, _ = strconv.Atoi(last[2])
			dead, _ = strconv.Atoi(last[3])
			actions, _ = strconv.Atoi(last[4])
			if scoredRate > 0 && paid > 0 && dead > 0 && actions > 0 {
				break
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	if scoredRate == 0 || paid == 0 || dead == 0 || actions == 0 {
		t.Fatalf("after %s: %d scored/s, %d paid calls, %d dead letters, %d actions; want all above zero",
			time.Since(start).Round(time.Second), scoredRate, paid, dead, actions)
	}
	if code, body := waitHTTP(t, "http://"+viewAddr+"/api/v1/indicators?limit=5"); code != 200 || !strings.Contains(body, `"score"`) {
		t.Errorf("view API: %d %s", code, body)
	}
	ready := time.Since(start)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	stopAt := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo exited with %v after SIGINT", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30 s of SIGINT")
	}
	if !strings.Contains(out.String(), "threatpipe demo stopped") {
		t.Error("no closing summary")
	}
	writeReport(t, "demo-smoke.txt", "make run smoke test: scored events, dead letters and playbook actions within "+
		ready.Round(100*time.Millisecond).String()+" of start ("+strconv.Itoa(scoredRate)+" scored/s, "+strconv.Itoa(dead)+
		" dead letters, "+strconv.Itoa(actions)+" actions); stopped "+time.Since(stopAt).Round(100*time.Millisecond).String()+" after SIGINT\n")
}
