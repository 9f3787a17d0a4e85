package main

import (
	"fmt"
	"sort"
	"strings"
)

// finish computes the ratios to both copies and checks PRODUCT.md's quality bar.
func finish(rep *Report) {
	byName := map[string]*Result{}
	for i := range rep.Results {
		byName[rep.Results[i].Scenario] = &rep.Results[i]
	}
	base, franz := byName["baseline"], byName["franz"]
	for i := range rep.Results {
		r := &rep.Results[i]
		if base != nil && base.EventsPerSec > 0 {
			r.RatioToBaseline = r.EventsPerSec / base.EventsPerSec
		}
		if franz != nil && franz.EventsPerSec > 0 {
			r.RatioToFranz = r.EventsPerSec / franz.EventsPerSec
		}
	}
	add := func(name string, v float64, want string, met bool) {
		rep.Targets = append(rep.Targets, Target{name, v, want, met})
	}
	if hits := byName["hits"]; hits != nil {
		add("hits: CPU s per million events", hits.CPUSecPerMillion, "<= 8", hits.CPUSecPerMillion <= 8)
		if base != nil {
			add("hits throughput / engine copy (baseline)", hits.RatioToBaseline, ">= 0.50", hits.RatioToBaseline >= 0.5)
		}
		if franz != nil {
			add("hits throughput / franz-go copy", hits.RatioToFranz, ">= 0.50", hits.RatioToFranz >= 0.5)
		}
		if mixed := byName["mixed"]; mixed != nil && hits.EventsPerSec > 0 {
			r := mixed.HitEventsPerSec / hits.EventsPerSec
			add("mixed hit throughput / hits throughput", r, ">= 0.70", r >= 0.7)
			if ms, ok := missCPUms(hits, mixed); ok {
				add("mixed: enricher CPU ms per miss (beyond the hit cost)", ms, "<= 0.15", ms <= 0.15)
			}
		}
		add("hits p99 latency (ms, below saturation)", hits.LatencyP99ms, "< 20", hits.LatencyP99ms < 20)
		if hits.ScoredBytes > 0 {
			add("hits: bytes per scored event (enriched native input)", hits.ScoredBytes, "<= 600", hits.ScoredBytes <= 600)
		}
	}
	for _, name := range []string{"mixed", "replicas"} {
		if r := byName[name]; r != nil {
			add(name+": paid calls per new IP", r.PaidPerFreshIP, "== 1.00", r.PaidPerFreshIP == 1)
		}
	}
	for _, r := range rep.Results {
		if r.Scenario == "baseline" || r.Scenario == "franz" {
			continue
		}
		if r.Processes == 1 {
			add(r.Scenario+": peak RSS MB", r.PeakRSSMB, "< 128", r.PeakRSSMB < 128)
		}
		add(r.Scenario+": RSS growth over the run (last quarter / second quarter)", r.RSSGrowth, "<= 1.25 (flat)", r.RSSGrowth <= 1.25)
	}
}

// missCPUms is the enricher CPU a miss costs beyond a hit, in ms: the mixed backlog's CPU less
// what its hits would have cost at the hits scenario's rate, over its misses.
func missCPUms(hits, mixed *Result) (float64, bool) {
	if mixed.FreshIPs == 0 || mixed.Events == 0 {
		return 0, false
	}
	total := mixed.CPUSecPerMillion * float64(mixed.Events) / 1e6
	hitPart := hits.CPUSecPerMillion * float64(mixed.Events-mixed.FreshIPs) / 1e6
	return (total - hitPart) / float64(mixed.FreshIPs) * 1000, true
}

func markdown(rep *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## threatpipe benchmark, %s\n\n", rep.StartedAt)
	fmt.Fprintf(&b, "Machine: %s.  \nCommand: `%s`.  \n", rep.Machine, rep.Command)
	for _, k := range []string{"events", "warm_ips", "partitions", "mix", "simulator", "latency_phase"} {
		fmt.Fprintf(&b, "%s: %s.  \n", k, rep.Settings[k])
	}
	b.WriteString("\n| scenario | procs | events/s | per process | ratio to engine copy | ratio to franz-go copy | hit events/s | latency p50 / p99 ms (at rate) | paid calls per new IP | dead letters | peak RSS MB | RSS growth | CPU s per M events | bytes per scored event |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Results {
		paid := "n/a"
		if r.FreshIPs > 0 && r.Scenario != "baseline" {
			paid = fmt.Sprintf("%.2f (%d calls / %d IPs)", r.PaidPerFreshIP, r.PaidCalls, r.FreshIPs)
		}
		size := "n/a"
		if r.ScoredBytes > 0 {
			size = fmt.Sprintf("%.0f", r.ScoredBytes)
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.2f | %.2f | %.0f | %.1f / %.1f (%d/s) | %s | %d | %.0f | %.2f | %.1f | %s |\n",
			r.Scenario, r.Processes, r.EventsPerSec, r.PerProcessEventsPerSec, r.RatioToBaseline, r.RatioToFranz, r.HitEventsPerSec,
			r.LatencyP50ms, r.LatencyP99ms, r.LatencyRate, paid, r.DeadLetters, r.PeakRSSMB, r.RSSGrowth, r.CPUSecPerMillion, size)
	}
	b.WriteString("\nCriminal IP outcomes in the scored events of each backlog:\n\n")
	for _, r := range rep.Results {
		if len(r.Statuses) > 0 {
			fmt.Fprintf(&b, "- %s: %s\n", r.Scenario, counts(r.Statuses))
		}
	}
	b.WriteString("\nDead letters of each backlog by class, and the formats load by input format:\n\n")
	for _, r := range rep.Results {
		if len(r.DeadLetterClasses) > 0 {
			fmt.Fprintf(&b, "- %s: %s\n", r.Scenario, counts(r.DeadLetterClasses))
		}
		if len(r.Kinds) > 0 {
			fmt.Fprintf(&b, "- %s load: %s\n", r.Scenario, counts(r.Kinds))
		}
	}
	if len(rep.Targets) > 0 {
		b.WriteString("\n| target (PRODUCT.md) | measured | want | met |\n|---|---|---|---|\n")
		for _, t := range rep.Targets {
			met := "yes"
			if !t.Met {
				met = "**no**"
			}
			fmt.Fprintf(&b, "| %s | %.2f | %s | %s |\n", t.Name, t.Value, t.Want, met)
		}
	}
	return b.String()
}

// counts renders a count map as "key n, key n" in key order.
func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// chart draws events/s and p99 latency per scenario as two bar groups.
func chart(rep *Report) string {
	const h, left, top, barW, gap = 360, 70, 40, 60, 110
	w := max(760, left+40+len(rep.Results)*(2*barW+gap/2)) // wide enough for every scenario
	var maxRate, maxLat float64
	for _, r := range rep.Results {
		maxRate = max(maxRate, r.EventsPerSec)
		maxLat = max(maxLat, r.LatencyP99ms)
	}
	if maxRate == 0 {
		maxRate = 1
	}
	if maxLat == 0 {
		maxLat = 1
	}
	plotH := float64(h - top - 70)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">threatpipe benchmark: throughput (blue, events/s) and p99 latency (orange, ms)</text>`+"\n", left)
	base := float64(h - 70)
	fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#333"/>`+"\n", left, base, w-20, base)
	for i, r := range rep.Results {
		x := float64(left + 20 + i*(2*barW+gap/2))
		rh := plotH * r.EventsPerSec / maxRate
		lh := plotH * r.LatencyP99ms / maxLat
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.1f" width="%d" height="%.1f" fill="#3b7dd8"/>`+"\n", x, base-rh, barW, rh)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="middle">%.0f</text>`+"\n", x+barW/2, base-rh-5, r.EventsPerSec)
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.1f" width="%d" height="%.1f" fill="#f0883e"/>`+"\n", x+barW, base-lh, barW, lh)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="middle">%.1f ms</text>`+"\n", x+barW+barW/2, base-lh-5, r.LatencyP99ms)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x+barW, base+18, r.Scenario)
		if r.Scenario != "baseline" && r.Scenario != "franz" {
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#555">%.2f× baseline</text>`+"\n", x+barW, base+34, r.RatioToBaseline)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}
