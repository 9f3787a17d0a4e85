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
	"sort"
	"syscall"
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
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, &environment{environ: os.Environ(), stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
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
