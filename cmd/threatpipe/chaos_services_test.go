package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// chaosServices is a Kafka broker and a redis-server of the chaos suite's own, started by
// scripts/services.sh on other ports and with their own state directory, so that the suite can
// stop and restart them without disturbing the shared services the other tests use.
//
// The script starts both detached (a new session), so they outlive a test binary that dies on
// a timeout; a watchdog shell, detached too, runs `services.sh down` once the test process is
// gone, whatever way it went.
type chaosServices struct {
	kafkaPort, redisPort int
	dir                  string // THREATPIPE_STATE_DIR
	script               string
	watchdog             *exec.Cmd
}

func startChaosServices(t *testing.T) *chaosServices {
	t.Helper()
	script, err := filepath.Abs("../../scripts/services.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "threatpipe-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	s := &chaosServices{kafkaPort: freePortPair(t), redisPort: freePortPair(t), dir: dir, script: script}
	s.watchdog = exec.Command("bash", "-c", `while kill -0 "$0" 2>/dev/null; do sleep 2; done; exec "$1" down`,
		strconv.Itoa(os.Getpid()), script)
	s.watchdog.Env = s.env()
	s.watchdog.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := s.watchdog.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := s.run("down"); err != nil {
			t.Errorf("services.sh down: %v\n%s", err, out)
		}
		_ = s.watchdog.Process.Kill()
		_ = s.watchdog.Wait()
		_ = os.RemoveAll(dir)
	})
	took := s.up(t)
	t.Logf("private Kafka on %s and Redis on %s up in %s (state %s)", s.brokers()[0], s.redisAddr(), took.Round(100*time.Millisecond), dir)
	return s
}

// freePortPair returns a free port whose successor is free too: the broker's controller
// listener takes port+1.
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		next, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		_ = ln.Close()
		if err == nil {
			_ = next.Close()
			return port
		}
	}
	t.Fatal("no pair of free ports")
	return 0
}

func (s *chaosServices) env() []string {
	return append(os.Environ(),
		fmt.Sprintf("THREATPIPE_KAFKA_PORT=%d", s.kafkaPort), fmt.Sprintf("THREATPIPE_REDIS_PORT=%d", s.redisPort),
		"THREATPIPE_STATE_DIR="+s.dir)
}

func (s *chaosServices) brokers() []string { return []string{fmt.Sprintf("127.0.0.1:%d", s.kafkaPort)} }

func (s *chaosServices) redisAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.redisPort) }

func (s *chaosServices) run(args ...string) (string, error) {
	cmd := exec.Command(s.script, args...)
	cmd.Env = s.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// up starts whichever of the two is not running (Kafka on its existing data directory) and
// returns how long that took.
func (s *chaosServices) up(t *testing.T) time.Duration {
	t.Helper()
	began := time.Now()
	if out, err := s.run("up"); err != nil {
		t.Fatalf("services.sh up: %v\n%s", err, out)
	}
	return time.Since(began)
}

// stopKafka stops the broker as an orchestrator would: SIGTERM (a controlled shutdown), SIGKILL
// after 30 s.
func (s *chaosServices) stopKafka(t *testing.T) {
	t.Helper()
	s.stop(t, filepath.Join(s.dir, "kafka", "kafka.pid"))
}

// stopRedis shuts redis-server down. keep writes its data to disk first, so that the restart
// loads it (a restart of a persistent Redis); otherwise it comes back empty (a Redis without
// persistence, or a new node).
func (s *chaosServices) stopRedis(t *testing.T, keep bool) {
	t.Helper()
	pidFile := filepath.Join(s.dir, "redis", "redis.pid")
	pid := readPid(t, pidFile)
	rdb := redis.NewClient(&redis.Options{Addr: s.redisAddr(), MaxRetries: -1}) // no redial once it is gone
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shutdown := rdb.ShutdownNoSave
	if keep {
		shutdown = rdb.ShutdownSave
	}
	_ = shutdown(ctx).Err() // the connection drops as the server exits
	waitGone(t, pid, 30*time.Second)
	if !keep {
		if err := os.Remove(filepath.Join(s.dir, "redis", "dump.rdb")); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// clusterID is the broker's cluster id, written when its storage was formatted.
func (s *chaosServices) clusterID(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.dir, "kafka", "data", "meta.properties"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if id, ok := strings.CutPrefix(line, "cluster.id="); ok {
			return id
		}
	}
	t.Fatal("meta.properties has no cluster.id")
	return ""
}

func (s *chaosServices) stop(t *testing.T, pidFile string) {
	t.Helper()
	pid := readPid(t, pidFile)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %d: %v", pid, err)
	}
	if !waitGone(t, pid, 30*time.Second) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(t, pid, 10*time.Second)
	}
}

func readPid(t *testing.T, pidFile string) int {
	t.Helper()
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("pid file %s: %v", pidFile, err)
	}
	return pid
}

// waitGone waits for pid to exit; it reports false when it is still alive after timeout.
func waitGone(t *testing.T, pid int, timeout time.Duration) bool {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
	}
	return false
}
