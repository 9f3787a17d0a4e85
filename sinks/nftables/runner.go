package nftables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/threatpipe/threatpipe/sinks/sinktext"
)

// Output bounds: a listing of a large set is tens of megabytes at most (about 70 bytes per
// element); stderr only needs its first lines for the error.
const (
	maxStdout = 64 << 20
	maxStderr = 4 << 10
)

// runner runs nft with args, feeding stdin, and returns its standard output. Tests substitute a
// fake; the real one is execRunner.
type runner interface {
	run(ctx context.Context, stdin []byte, args ...string) ([]byte, error)
}

// execRunner runs the nft binary directly (argv, never a shell), optionally inside a network
// namespace through `ip netns exec`.
type execRunner struct {
	// prefix is the command before nft's own arguments: [nft] or [ip netns exec NS nft].
	prefix  []string
	timeout time.Duration
}

func (r *execRunner) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	argv := append(append([]string(nil), r.prefix...), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// LC_ALL=C keeps nft's (strerror) messages in English for operators and tests alike.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	stdout := &capped{max: maxStdout}
	stderr := &capped{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = time.Second // a killed nft's pipes must not hold Wait up
	err := cmd.Run()
	what := "nft " + strings.Join(args, " ")
	switch {
	case ctx.Err() != nil && err != nil:
		return nil, fmt.Errorf("%s: %w (after %s)", what, ctx.Err(), r.timeout)
	case err != nil:
		var ee *exec.ExitError
		if msg := stderrMessage(stderr.Bytes()); msg != "" && errors.As(err, &ee) {
			return nil, fmt.Errorf("%s: %w: %s", what, err, msg)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	case stdout.overflow:
		return nil, fmt.Errorf("%s: output larger than %d bytes", what, maxStdout)
	}
	return stdout.Bytes(), nil
}

// stderrMessage makes nft's error output one readable line: nft prints the error, then the
// offending statement and a caret line under it; the carets add nothing to a log line.
func stderrMessage(b []byte) string {
	var parts []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.Trim(line, "^~ ") == "" {
			continue
		}
		parts = append(parts, sinktext.SpaceControls(line))
	}
	return strings.Join(parts, " | ")
}

// capped is a buffer that keeps its first max bytes and notes the overflow, while still
// accepting writes so that the child never blocks on a full pipe.
type capped struct {
	bytes.Buffer
	max      int
	overflow bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room < len(p) {
		c.overflow = true
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return c.Buffer.Write(p)
}
