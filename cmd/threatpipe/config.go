package main

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/enrich/providers"
	"github.com/threatpipe/threatpipe/ingest"
	ingestall "github.com/threatpipe/threatpipe/ingest/all"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/all"
	"github.com/threatpipe/threatpipe/view"
	"github.com/threatpipe/threatpipe/view/auth"
)

func runConfig(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "config [--check]", "Lists every THREATPIPE_* variable with its default and meaning: the pipeline's, each\nprovider's, each action sink's and the view's. With --check, validates the current environment instead\n(sinks included, without contacting anything) and exits non-zero naming each bad variable.")
	check := fs.Bool("check", false, "validate the current environment")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *check {
		cfg, err := config.Load(env.environ)
		if err != nil {
			return err
		}
		if err := checkInputFormat(cfg); err != nil {
			return err
		}
		if _, err := loadSources(cfg, env.environ, zap.NewNop()); err != nil {
			return err
		}
		if err := checkSinkConfig(env.environ); err != nil {
			return err
		}
		if _, err := view.LoadConfig(env.environ); err != nil {
			return err
		}
		if _, err := view.LoadTAXIIConfig(env.environ); err != nil {
			return err
		}
		if _, err := auth.LoadConfig(env.environ); err != nil {
			return err
		}
		if err := checkIngestConfig(env.environ); err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, "configuration is valid")
		return nil
	}
	for _, v := range allVars() {
		def := v.Default
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(env.stdout, "%s=%s\n    %s\n", v.Name, def, v.Description)
	}
	return nil
}

// checkSinkConfig parses and validates every sink's variables. Building a sink may touch the
// host (the nftables sink creates its table), so sinks are only resolved here, not built.
func checkSinkConfig(environ []string) error {
	regs := all.Registrations()
	for i := range regs {
		regs[i] = regs[i].ResolveOnly()
	}
	_, err := sinks.Load(regs, environ, sinks.Deps{})
	return err
}

// allVars is every variable `threatpipe config` lists: the pipeline's, each provider's, each
// sink's, the view's (TAXII server and sign-in included) and the ingest role's with each platform's.
func allVars() []config.Var {
	vars := config.Vars()
	for _, r := range providers.All() {
		vars = append(vars, r.Vars()...)
	}
	for _, r := range all.Registrations() {
		vars = append(vars, r.Vars()...)
	}
	vars = append(vars, view.Vars()...)
	vars = append(vars, view.TAXIIVars()...)
	vars = append(vars, auth.Vars()...)
	vars = append(vars, ingest.Vars()...)
	for _, r := range ingestall.Registrations() {
		vars = append(vars, r.Vars()...)
	}
	return vars
}

// checkIngestConfig validates the ingest role's variables and those of each platform it names,
// when THREATPIPE_INGEST_SOURCES is set (other roles do not need it). Building a source contacts
// nothing.
func checkIngestConfig(environ []string) error {
	if lookupEnv(environ, ingest.ConfigPrefix+"SOURCES", "") == "" {
		return nil
	}
	regs := ingestall.Registrations()
	icfg, err := ingest.LoadConfig(environ, ingest.Names(regs))
	if err != nil {
		return err
	}
	_, err = ingest.Build(regs, icfg, environ, providerHTTPClient())
	return err
}
