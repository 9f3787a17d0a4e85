package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
)

// cpuProfileName is the file a scenario's CPU profile is saved to in its run's directory.
func cpuProfileName(scenario string) string { return scenario + ".cpu.prof" }

// previousProfile finds the newest profile of scenario in an earlier run under outDir (run
// directories are named by their UTC start time, so they sort by age). Runs before profiles
// were taken per scenario kept the hits profile as cpu.prof.
func previousProfile(outDir, runID, scenario string) string {
	entries, err := os.ReadDir(outDir)
	if err != nil {
		return ""
	}
	var runs []string
	for _, e := range entries {
		if e.IsDir() && e.Name() < runID {
			runs = append(runs, e.Name())
		}
	}
	slices.Sort(runs)
	for _, run := range slices.Backward(runs) {
		names := []string{cpuProfileName(scenario)}
		if scenario == "hits" {
			names = append(names, "cpu.prof")
		}
		for _, n := range names {
			if p := filepath.Join(outDir, run, n); fileExists(p) {
				return p
			}
		}
	}
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Size() > 0
}

// profileReport renders, for each scenario with a profile in dir, the top functions and, when
// an earlier run has a profile of the same scenario, the top differences against it
// (`go tool pprof -top -diff_base`). Profiles carry their symbols, so no binary is needed.
// Every scenario processes the same number of events, so the differences are in CPU time for
// the same work.
func profileReport(results []Result, dir, outDir, runID string) string {
	var out strings.Builder
	for i := range results {
		r := &results[i]
		cur := filepath.Join(dir, cpuProfileName(r.Scenario))
		if !fileExists(cur) {
			continue
		}
		r.Profile = cur
		fmt.Fprintf(&out, "### %s: CPU profile\n\n```text\n%s```\n\n", r.Scenario, pprofTop(cur))
		if prev := previousProfile(outDir, runID, r.Scenario); prev != "" {
			r.ProfileDiffBase = prev
			fmt.Fprintf(&out, "### %s: difference to %s (positive: more CPU now)\n\n```text\n%s```\n\n", r.Scenario, prev, pprofTop(cur, "-diff_base="+prev))
		}
	}
	if allocs := filepath.Join(dir, "allocs.prof"); fileExists(allocs) {
		fmt.Fprintf(&out, "### allocations (alloc_space)\n\n```text\n%s```\n\n", pprofTop(allocs, "-sample_index=alloc_space"))
	}
	return out.String()
}

// pprofTop is `go tool pprof -top` of profile, trimmed to the first 20 functions.
func pprofTop(profile string, flags ...string) string {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=20"}, flags...)
	raw, err := exec.Command("go", append(args, profile)...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("pprof: %v\n%s", err, raw)
	}
	return string(raw)
}

// withCPUProfile runs fn with the process's CPU profiled to path (no profile when path is
// empty): the copy subprocesses are profiled like the enricher's --cpuprofile.
func withCPUProfile(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("cpu profile: %w", err)
	}
	runErr := fn()
	pprof.StopCPUProfile()
	return errors.Join(runErr, f.Close())
}
