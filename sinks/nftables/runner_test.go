package nftables

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeNFTScript is an nft stand-in for exercising execRunner without root.
const fakeNFTScript = `#!/bin/sh
case "$1" in
echo) printf 'args=%s LC_ALL=%s stdin=' "$*" "$LC_ALL"; cat ;;
fail)
	echo 'Error: Could not process rule: No such file or directory' >&2
	echo 'delete element inet threatpipe blocklist_v4 { 192.0.3.1 }' >&2
	echo '                                              ^^^^^^^^^' >&2
	exit 1 ;;
silent) exit 2 ;;
sleep) sleep 10 ;;
esac
`

func fakeRunner(t *testing.T, timeout time.Duration) *execRunner {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nft")
	if err := os.WriteFile(path, []byte(fakeNFTScript), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("inet")
	cfg.NFTPath = path
	cfg.CommandTimeout = timeout
	r, err := newExecRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestExecRunner(t *testing.T) {
	r := fakeRunner(t, 5*time.Second)
	out, err := r.run(context.Background(), []byte("add table inet x\n"), "echo", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "args=echo -f - LC_ALL=C stdin=add table inet x\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}

	_, err = r.run(context.Background(), nil, "fail")
	want := "nft fail: exit status 1: Error: Could not process rule: No such file or directory | delete element inet threatpipe blocklist_v4 { 192.0.3.1 }"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}

	if _, err = r.run(context.Background(), nil, "silent"); err == nil || err.Error() != "nft silent: exit status 2" {
		t.Fatalf("got %v", err)
	}
}

func TestExecRunnerTimeout(t *testing.T) {
	r := fakeRunner(t, 200*time.Millisecond)
	start := time.Now()
	_, err := r.run(context.Background(), nil, "sleep")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "after 200ms") {
		t.Fatalf("got %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
}

func TestExecRunnerNetNS(t *testing.T) {
	cfg := testConfig("inet")
	cfg.NFTPath = "/bin/true"
	cfg.NetNS = "tp-test"
	r, err := newExecRunner(cfg)
	if err != nil {
		t.Skipf("no ip command: %v", err)
	}
	if len(r.prefix) != 5 || !strings.HasSuffix(r.prefix[0], "/ip") || strings.Join(r.prefix[1:], " ") != "netns exec tp-test /bin/true" {
		t.Fatalf("prefix %q", r.prefix)
	}
}

func TestCapped(t *testing.T) {
	c := &capped{max: 5}
	for _, s := range []string{"abc", "defg", "hij"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("write %d %v", n, err)
		}
	}
	if c.String() != "abcde" || !c.overflow {
		t.Fatalf("got %q %v", c.String(), c.overflow)
	}
}
