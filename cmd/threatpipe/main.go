// Command threatpipe is the single binary of every threatpipe role. Run `threatpipe help` for the
// list of subcommands and `threatpipe <command> --help` for each one's flags and settings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/redisx"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// command is one subcommand. run gets the arguments after the command name; it returns
// flag.ErrHelp after printing help, and any other error to be reported with exit status 1.
type command struct {
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
}

// environment is what a command may touch of the process, injected so tests can run commands
// in-process.
type environment struct {
	environ []string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

func commands() map[string]command {
	return map[string]command{
		"enrich":    {"consume indicator events, enrich and score them, publish scored events", runEnrich},
		"act":       {"run the playbooks: block, alert and open tickets on scored events", runAct},
		"demo":      {"run the whole pipeline in one process on embedded Kafka, Redis and providers, with demo traffic", runDemo},
		"produce":   {"publish JSON lines from a file or stdin to a Kafka topic", runProduce},
		"config":    {"print the configuration variables and their defaults", runConfig},
		"providers": {"list the enrichment providers, or check their keys and remaining credits", runProviders},
		"sim":       {"serve the provider simulator (Criminal IP API shapes) for demos, tests and benchmarks", runSim},
		"view":      {"serve the prioritised indicator view: ranked list, indicator pages, health, JSON API", runView},
		"top":       {"print the top indicators of the view (optionally refreshing) in the terminal", runTop},
		"export":    {"write the view's indicators as a STIX 2.1 bundle or CSV (what the TAXII server publishes)", runExport},
		"ingest":    {"poll threat-intel platforms (TAXII 2.1, MISP, ThreatQ) and publish their IP indicators for enrichment", runIngest},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	env := &environment{environ: os.Environ(), stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	undo := routeLibraryLogs(env, os.Args[1:])
	code := run(ctx, env, os.Args[1:])
	undo()
	stop()
	os.Exit(code)
}

// routeLibraryLogs sends what libraries log on their own (go-redis's pool and Sentinel lines,
// the standard library's log package) through zap, so a service's stderr is JSON lines only.
// Both hooks are process-global, hence set here, once, and never by a library. `top` reports
// Redis errors itself and discards go-redis's lines; other commands keep the defaults.
func routeLibraryLogs(env *environment, args []string) (undo func()) {
	if len(args) == 0 {
		return func() {}
	}
	switch args[0] {
	case "top":
		redisx.NewLogger(zap.NewNop(), time.Minute).Install()
		return func() {}
	case "enrich", "act", "view", "ingest":
	default:
		return func() {}
	}
	log, err := telemetry.NewLogger(lookupEnv(env.environ, config.Prefix+"LOG_LEVEL", "info"), lookupEnv(env.environ, config.Prefix+"LOG_FORMAT", "json"))
	if err != nil { // the role reports the bad variable when it loads its configuration
		if log, err = telemetry.NewLogger("info", "json"); err != nil {
			return func() {}
		}
	}
	log = log.With(zap.String("role", args[0]))
	redisx.NewLogger(log, 30*time.Second).Install()
	restore := zap.RedirectStdLog(log.Named("stdlog"))
	return func() { restore(); _ = log.Sync() }
}

// lookupEnv is environ's value of name (the last one, as config.Load reads it), or def when it
// is unset or empty.
func lookupEnv(environ []string, name, def string) string {
	for _, kv := range slices.Backward(environ) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			if v == "" {
				return def
			}
			return v
		}
	}
	return def
}

func run(ctx context.Context, env *environment, args []string) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "threatpipe: unknown command %q\n\n", args[0])
		usage(env.stderr, cmds)
		return 2
	}
	if err := cmd.run(ctx, env, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(env.stderr, "threatpipe %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "threatpipe: streaming threat-intel enrichment for Kafka")
	fmt.Fprintln(w, "\nUsage: threatpipe <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nSettings come from THREATPIPE_* environment variables; `threatpipe config` lists them.")
	fmt.Fprintln(w, "Run `threatpipe <command> --help` for a command's flags.")
}

// newFlagSet returns a flag set whose --help prints the command's synopsis and flags.
func newFlagSet(env *environment, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "Usage: threatpipe %s\n\n%s\n", name, synopsis)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(env.stderr, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}
