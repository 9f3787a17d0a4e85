package main

import (
	"fmt"
	"strconv"
	"strings"
)

// plans turns one entry of --scenarios into the scenarios it runs; self is the tpbench binary
// (the copies run as its subprocesses).
func (b *bench) plans(sc, self string) ([]plan, error) {
	o := b.o
	hitMix := o.mix
	hitMix.Miss = 0
	mixGen := func(m mix) func(n, run, freshBase int, seed uint64) *dataset {
		return func(n, run, freshBase int, seed uint64) *dataset {
			return generate(n, o.warm, m, run, freshBase, seed, true)
		}
	}
	hitsLoad := func() *dataset { return generate(o.events, o.warm, hitMix, 0, 0, o.seed, false) }
	enrich := []string{o.bin, "enrich"}
	switch sc {
	case "baseline":
		return []plan{{name: sc, argv: []string{self, "copy"}, nproc: 1, data: hitsLoad(), paced: mixGen(hitMix), copy: true}}, nil
	case "franz":
		return []plan{{name: sc, argv: []string{self, "franz-copy"}, nproc: 1, data: hitsLoad(), paced: mixGen(hitMix), copy: true}}, nil
	case "hits":
		return []plan{{name: sc, argv: enrich, nproc: 1, data: hitsLoad(), paced: mixGen(hitMix), allocs: o.profileScenario == sc}}, nil
	case "formats":
		return []plan{{name: sc, argv: enrich, nproc: 1, data: generateFormats(o.events, o.warm, o.nativeShare, o.seed, false),
			paced:  func(n, _, _ int, seed uint64) *dataset { return generateFormats(n, o.warm, o.nativeShare, seed, true) },
			settle: true, allocs: o.profileScenario == sc}}, nil
	case "mixed", "replicas":
		n, run := 1, 1
		if sc == "replicas" {
			n, run = o.replicas, 2
		}
		return []plan{{name: sc, argv: enrich, nproc: n, data: generate(o.events, o.warm, o.mix, run, 0, o.seed+uint64(run), false),
			paced: mixGen(o.mix), allocs: o.profileScenario == sc, joinFirst: n > 1}}, nil
	case "scaling":
		counts, err := scaleCounts(o.scale)
		if err != nil {
			return nil, err
		}
		var out []plan
		for _, n := range counts {
			// Joined first at every count, 1 included, so that the counts compare with each other
			// (the hits scenario, produced first, compares with the copies).
			out = append(out, plan{name: scalingName(n), argv: enrich, nproc: n, data: hitsLoad(), paced: mixGen(hitMix), joinFirst: true})
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown scenario %q", sc)
}

// scalingName names the scaling scenario's run on n processes (also its topics' names).
func scalingName(n int) string { return "hits-x" + strconv.Itoa(n) }

// scaleCounts parses --scale: process counts, comma-separated.
func scaleCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--scale: %q is not a process count", f)
		}
		out = append(out, n)
	}
	return out, nil
}
