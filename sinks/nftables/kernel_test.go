package nftables

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/threatpipe/threatpipe/sinks"
)

// helperEnv makes the test binary act as a TCP listener or dialer inside a network namespace
// (started through `ip netns exec`), so that the kernel test can check packets are dropped.
const helperEnv = "THREATPIPE_NFT_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode, os.Getenv(helperEnv+"_ADDR")))
	}
	os.Exit(m.Run())
}

func helperMain(mode, addr string) int {
	switch mode {
	case "listen":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println("listen:", err)
			return 1
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_ = c.Close()
			}
		}()
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes stdin
		return 0
	case "dial":
		c, err := net.DialTimeout("tcp", addr, 1500*time.Millisecond)
		if err != nil {
			return 3
		}
		_ = c.Close()
		return 0
	}
	return 2
}

// kernelEnv is a pair of network namespaces joined by a veth link: the sink's ("host",
// 11.77.0.1 and 2001:db9:77::1) and a peer (11.77.0.2, 2001:db9:77::2).
type kernelEnv struct {
	ip, nft    string
	host, peer string
}

func (k *kernelEnv) cmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(k.ip, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nftIn runs nft in the sink's namespace, for checks made independently of the sink.
func (k *kernelEnv) nftIn(t *testing.T, args ...string) string {
	t.Helper()
	return k.cmd(t, append([]string{"netns", "exec", k.host, k.nft}, args...)...)
}

// newKernelEnv creates the namespaces, or skips the test with the precise reason.
func newKernelEnv(t *testing.T) *kernelEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: the nftables kernel test needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create network namespaces")
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft not installed (Debian package nftables; scripts/install-nft.sh installs it)")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("ip not installed (Debian package iproute2; scripts/install-nft.sh installs it)")
	}
	id := rand.Uint32()
	k := &kernelEnv{ip: ip, nft: nft, host: fmt.Sprintf("tp-nft-%x", id), peer: fmt.Sprintf("tp-nft-%x-peer", id)}
	for _, ns := range []string{k.host, k.peer} {
		if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
			t.Skipf("network namespaces unsupported here: ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
		}
		t.Cleanup(func() {
			if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
	}
	if out, err := exec.Command(ip, "netns", "exec", k.host, nft, "list", "ruleset").CombinedOutput(); err != nil {
		t.Skipf("nftables unsupported by this kernel: nft list ruleset: %v: %s", err, strings.TrimSpace(string(out)))
	}
	k.cmd(t, "-n", k.host, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", k.peer)
	for _, side := range []struct{ ns, dev, v4, v6 string }{
		{k.host, "veth0", "11.77.0.1/24", "2001:db9:77::1/64"},
		{k.peer, "veth1", "11.77.0.2/24", "2001:db9:77::2/64"},
	} {
		k.cmd(t, "-n", side.ns, "addr", "add", side.v4, "dev", side.dev)
		k.cmd(t, "-n", side.ns, "addr", "add", side.v6, "dev", side.dev, "nodad")
		k.cmd(t, "-n", side.ns, "link", "set", side.dev, "up")
		k.cmd(t, "-n", side.ns, "link", "set", "lo", "up")
	}
	return k
}

func (k *kernelEnv) config() *Config {
	cfg := &Config{
		Enabled: true, NFTPath: k.nft, Family: "inet", Table: "threatpipe", SetV4: "blocklist_v4", SetV6: "blocklist_v6",
		Create: true, NetNS: k.host, DefaultTTL: time.Hour, CommandTimeout: 10 * time.Second,
	}
	return cfg
}

// countingRunner counts the transactions (nft -f) the sink applies.
type countingRunner struct {
	runner
	applied int
}

func (c *countingRunner) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	if len(args) > 0 && args[0] == "-f" {
		c.applied++
	}
	return c.runner.run(ctx, stdin, args...)
}

func newKernelSink(t *testing.T, k *kernelEnv) (*Sink, *countingRunner) {
	t.Helper()
	cfg := k.config()
	if err := cfg.Resolve(); err != nil {
		t.Fatal(err)
	}
	r, err := newExecRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cr := &countingRunner{runner: r}
	s, err := New(context.Background(), cfg, cr, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s, cr
}

// contents reads both sets through the sink's own listing.
func contents(t *testing.T, s *Sink) map[netip.Addr]element {
	t.Helper()
	out := map[netip.Addr]element{}
	for _, set := range s.sets() {
		l, err := s.list(context.Background(), set.ref, set.typ)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l.elems {
			out[e.addr] = e
		}
	}
	return out
}

func wantExpiry(t *testing.T, got map[netip.Addr]element, addr string, want time.Duration) {
	t.Helper()
	e, ok := got[netip.MustParseAddr(addr)]
	if !ok {
		t.Fatalf("%s not in the sets: %v", addr, got)
	}
	if e.permanent || e.expires > want || e.expires < want-10*time.Second {
		t.Fatalf("%s expires in %s (permanent %v), want about %s", addr, e.expires, e.permanent, want)
	}
}

// TestKernel runs the sink against real nftables in a throwaway network namespace.
func TestKernel(t *testing.T) {
	k := newKernelEnv(t)
	s, cr := newKernelSink(t, k)
	ctx := context.Background()

	t.Run("setup is idempotent", func(t *testing.T) {
		newKernelSink(t, k) // CREATE again over the existing table
		for _, chain := range []string{chainInput, chainForward} {
			out := k.nftIn(t, "-j", "list", "chain", "inet", "threatpipe", chain)
			if strings.Count(out, `{"rule":`) != 2 || !strings.Contains(out, `"hook": "`+strings.TrimPrefix(chain, "threatpipe_")+`", "prio": -10`) ||
				!strings.Contains(out, `"right": "@blocklist_v4"`) || !strings.Contains(out, `"right": "@blocklist_v6"`) {
				t.Fatalf("chain %s:\n%s", chain, out)
			}
		}
	})

	t.Run("block, refresh, undo", func(t *testing.T) {
		for _, target := range []string{"203.0.114.7", "2001:db9::7"} {
			if _, err := s.Do(ctx, &sinks.Action{Target: target, Until: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		got := contents(t, s)
		wantExpiry(t, got, "203.0.114.7", time.Hour)
		wantExpiry(t, got, "2001:db9::7", time.Hour)

		// A repeat replaces the timeout, longer or shorter.
		if _, err := s.Do(ctx, &sinks.Action{Target: "203.0.114.7", Until: time.Now().Add(2 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Do(ctx, &sinks.Action{Target: "2001:db9::7", Until: time.Now().Add(10 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		got = contents(t, s)
		wantExpiry(t, got, "203.0.114.7", 2*time.Hour)
		wantExpiry(t, got, "2001:db9::7", 10*time.Minute)

		for range 2 { // the second undo finds nothing, which is success
			for _, target := range []string{"203.0.114.7", "2001:db9::7"} {
				if err := s.Undo(ctx, &sinks.Action{Target: target}, target); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := contents(t, s); len(got) != 0 {
			t.Fatalf("left after undo: %v", got)
		}
	})

	t.Run("the kernel expires a block", func(t *testing.T) {
		if _, err := s.Do(ctx, &sinks.Action{Target: "192.0.3.55", Until: time.Now().Add(1500 * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
		if _, ok := contents(t, s)[netip.MustParseAddr("192.0.3.55")]; !ok {
			t.Fatal("not added")
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, ok := contents(t, s)[netip.MustParseAddr("192.0.3.55")]; !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("still in the set 10s after a 2s timeout")
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("reconcile converges", func(t *testing.T) {
		now := time.Now()
		for _, a := range []string{"198.51.101.1", "198.51.101.2", "2001:db9::1"} {
			if _, err := s.Do(ctx, &sinks.Action{Target: a, Until: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		// An element added behind the sink's back, with no timeout.
		k.nftIn(t, "add", "element", "inet", "threatpipe", "blocklist_v4", "{ 198.51.101.3 }")
		active := map[string]time.Time{
			"198.51.101.1": now.Add(time.Hour),        // as is
			"198.51.101.2": now.Add(3 * time.Hour),    // longer
			"198.51.101.3": now.Add(20 * time.Minute), // permanent: gets a timeout
			"192.0.3.9":    now.Add(30 * time.Minute), // missing
			"2001:db9::2":  now.Add(5 * time.Minute),  // missing; 2001:db9::1 goes
			"192.0.3.10":   now.Add(-time.Minute),     // expired
		}
		if err := s.Reconcile(ctx, active); err != nil {
			t.Fatal(err)
		}
		got := contents(t, s)
		if len(got) != 5 {
			t.Fatalf("sets hold %v", got)
		}
		wantExpiry(t, got, "198.51.101.1", time.Hour)
		wantExpiry(t, got, "198.51.101.2", 3*time.Hour)
		wantExpiry(t, got, "198.51.101.3", 20*time.Minute)
		wantExpiry(t, got, "192.0.3.9", 30*time.Minute)
		wantExpiry(t, got, "2001:db9::2", 5*time.Minute)

		before := cr.applied
		if err := s.Reconcile(ctx, active); err != nil {
			t.Fatal(err)
		}
		if cr.applied != before {
			t.Fatal("a second reconcile changed something")
		}
		if err := s.Reconcile(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if got := contents(t, s); len(got) != 0 {
			t.Fatalf("empty reconcile left %v", got)
		}
	})

	t.Run("traffic from a blocked address is dropped", func(t *testing.T) {
		stop := k.listen(t, "[::]:7777")
		defer stop()
		for _, tc := range []struct{ peer, dst string }{
			{"11.77.0.2", "11.77.0.1:7777"},
			{"2001:db9:77::2", "[2001:db9:77::1]:7777"},
		} {
			if !k.dial(t, tc.dst) {
				t.Fatalf("%s cannot reach %s before any block", tc.peer, tc.dst)
			}
			if _, err := s.Do(ctx, &sinks.Action{Target: tc.peer, Until: time.Now().Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if k.dial(t, tc.dst) {
				t.Fatalf("%s still reaches %s while blocked", tc.peer, tc.dst)
			}
			if err := s.Undo(ctx, &sinks.Action{Target: tc.peer}, ""); err != nil {
				t.Fatal(err)
			}
			if !k.dial(t, tc.dst) {
				t.Fatalf("%s cannot reach %s after the undo", tc.peer, tc.dst)
			}
		}
	})
}

// listen starts a TCP listener in the sink's namespace; the returned func stops it.
func (k *kernelEnv) listen(t *testing.T, addr string) func() {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(k.ip, "netns", "exec", k.host, self)
	cmd.Env = append(os.Environ(), helperEnv+"=listen", helperEnv+"_ADDR="+addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("listener: %q %v", line, err)
	}
	return func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}
}

// dial reports whether a TCP connection from the peer namespace to addr succeeds.
func (k *kernelEnv) dial(t *testing.T, addr string) bool {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(k.ip, "netns", "exec", k.peer, self)
	cmd.Env = append(os.Environ(), helperEnv+"=dial", helperEnv+"_ADDR="+addr)
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
		return false
	}
	if err != nil {
		t.Fatalf("dialer: %v", err)
	}
	return true
}
