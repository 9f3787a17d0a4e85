package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/redisx"
	"github.com/threatpipe/threatpipe/view"
)

func runTop(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "top [--limit n] [--severity list] [--tag tag] [--watch]", `Prints the prioritised view's ranking (highest score first, then most recently seen) as a
table, read directly from Redis (THREATPIPE_REDIS_*, under THREATPIPE_REDIS_KEY_PREFIX): the
state that `+"`threatpipe view`"+` builds. With --watch it redraws every --interval until
interrupted.`)
	limit := fs.Int("limit", 20, "rows to show (1-500)")
	severity := fs.String("severity", "", "comma-separated severities to show: info, low, medium, high, critical")
	tag := fs.String("tag", "", "show only indicators carrying this tag")
	watch := fs.Bool("watch", false, "redraw every --interval, clearing the screen, until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "refresh interval of --watch")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *interval < 100*time.Millisecond {
		return fmt.Errorf("--interval: %s is less than 100ms", *interval)
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *severity != "" {
		q.Set("severity", *severity)
	}
	if *tag != "" {
		q.Set("tag", *tag)
	}
	filter, err := view.ParseFilter(q)
	if err != nil {
		var pe *view.ParamError
		if errors.As(err, &pe) {
			return fmt.Errorf("--%s: %s", pe.Param, pe.Msg)
		}
		return err
	}
	cfg, err := config.Load(env.environ)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	vcfg, err := view.LoadConfig(env.environ)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	rdb := redisx.New(&cfg.Redis)
	defer func() { _ = rdb.Close() }()
	if err := reachRedis(ctx, rdb, &cfg.Redis); err != nil {
		return err
	}
	store := view.NewStore(rdb, cfg.Redis.KeyPrefix, vcfg.StoreOptions())

	if !*watch {
		page, err := store.List(ctx, filter)
		if err != nil {
			return err
		}
		printTop(env.stdout, page, time.Now())
		return nil
	}
	for {
		page, err := store.List(ctx, filter)
		if ctx.Err() != nil {
			return nil
		}
		// Home, clear screen; then the frame.
		fmt.Fprint(env.stdout, "\x1b[H\x1b[2J")
		fmt.Fprintf(env.stdout, "threatpipe top  %s  every %s  (Ctrl-C quits)\n\n", time.Now().Format("15:04:05"), *interval)
		if err != nil {
			fmt.Fprintf(env.stdout, "cannot read the view: %v (retrying)\n", err)
		} else {
			printTop(env.stdout, page, time.Now())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

// reachRedis fails fast, with one error naming the variable, when Redis cannot be reached: a
// terminal command has no outage to ride out.
func reachRedis(ctx context.Context, rdb redis.UniversalClient, cfg *config.Redis) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+time.Second)
	defer cancel()
	err := rdb.Ping(ctx).Err()
	var netErr net.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%sREDIS_ADDR: cannot reach Redis at %s, where the view keeps its state: %w",
			config.Prefix, strings.Join(cfg.Addrs, ","), err)
	default:
		return fmt.Errorf("Redis at %s: %w", strings.Join(cfg.Addrs, ","), err)
	}
}

// printTop writes the ranking as an aligned table. Indicator data is attacker-influenced: it is
// stripped of control characters (no escape sequence reaches the terminal) and cut to width.
func printTop(w io.Writer, page *view.Page, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RANK\tIP\tSCORE\tSEVERITY\tTAGS\tCOUNTRY\tISP\tLAST SEEN")
	for i, r := range page.Rows {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", page.Offset+i+1, terminalSafe(r.IP, 39), r.Score,
			terminalSafe(string(r.Severity), 8), terminalSafe(strings.Join(r.Tags, ","), 32), terminalSafe(r.Country, 2),
			terminalSafe(r.ISP, 36), view.Ago(now, r.LastSeen))
	}
	_ = tw.Flush()
	switch {
	case len(page.Rows) == 0:
		fmt.Fprintln(w, "no indicator matches")
	case page.Truncated:
		fmt.Fprintf(w, "%d of %d matching among the top %d scanned\n", len(page.Rows), page.Total, page.Scanned)
	default:
		fmt.Fprintf(w, "%d of %d\n", len(page.Rows), page.Total)
	}
}

// terminalSafe replaces what is not printable (control characters, escape sequences,
// bidirectional overrides) and tabs, and cuts s to n runes, marking the cut with "…".
func terminalSafe(s string, n int) string {
	if s == "" {
		return "-"
	}
	out := make([]rune, 0, min(len(s), n+1))
	for _, r := range s {
		if len(out) == n {
			out[n-1] = '…'
			break
		}
		if r == '\t' || !unicode.IsPrint(r) {
			r = '?'
		}
		out = append(out, r)
	}
	return string(out)
}
