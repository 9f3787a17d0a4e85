package main

import (
	"context"
	"fmt"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

func runConfig(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "config [--check]", "Lists every THREATPIPE_* variable with its default and meaning.\nWith --check, validates the current environment instead and exits non-zero naming each bad variable.")
	check := fs.Bool("check", false, "validate the current environment")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *check {
		if _, err := config.Load(env.environ); err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, "configuration is valid")
		return nil
	}
	for _, v := range config.Vars() {
		def := v.Default
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(env.stdout, "%s=%s\n    %s\n", v.Name, def, v.Description)
	}
	return nil
}
