package main

import (
	"fmt"
	"sort"
	"strings"
)

func markdown(rep *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## threatpipe benchmark, %s\n\n", rep.StartedAt)
	fmt.Fprintf(&b, "Machine: %s.  \nCommand: `%s`.  \n", rep.Machine, rep.Command)
	for _, k := range []string{"events", "warm_ips", "partitions", "mix", "simulator", "latency_phase"} {
		fmt.Fprintf(&b, "%s: %s.  \n", k, rep.Settings[k])
	}
	b.WriteString("\n| scenario | procs | events/s | ratio to baseline | hit events/s | latency p50 / p99 ms (at rate) | paid calls per new IP | peak RSS MB | RSS growth | CPU s per M events |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Results {
		paid := "n/a"
		if r.FreshIPs > 0 && r.Scenario != "baseline" {
			paid = fmt.Sprintf("%.2f (%d calls / %d IPs)", r.PaidPerFreshIP, r.PaidCalls, r.FreshIPs)
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.2f | %.0f | %.1f / %.1f (%d/s) | %s | %.0f | %.2f | %.1f |\n",
			r.Scenario, r.Processes, r.EventsPerSec, r.RatioToBaseline, r.HitEventsPerSec, r.LatencyP50ms, r.LatencyP99ms,
			r.LatencyRate, paid, r.PeakRSSMB, r.RSSGrowth, r.CPUSecPerMillion)
	}
	b.WriteString("\nCriminal IP outcomes in the scored events of each backlog:\n\n")
	for _, r := range rep.Results {
		if len(r.Statuses) == 0 {
			continue
		}
		keys := make([]string, 0, len(r.Statuses))
		for k := range r.Statuses {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, r.Statuses[k])
		}
		fmt.Fprintf(&b, "- %s: %s\n", r.Scenario, strings.Join(parts, ", "))
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

// chart draws events/s and p99 latency per scenario as two bar groups.
func chart(rep *Report) string {
	const w, h, left, top, barW, gap = 760, 360, 70, 40, 60, 110
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
		if r.Scenario != "baseline" {
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#555">%.2f× baseline</text>`+"\n", x+barW, base+34, r.RatioToBaseline)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}
