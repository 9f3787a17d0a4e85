package main

import (
	"encoding/json"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline"
)

// latencies are, per output, its record time minus the event's own timestamp, in ms; of
// native events only when nativeOnly.
func latencies(msgs []kafka.Message, nativeOnly bool) []float64 {
	out := make([]float64, 0, len(msgs))
	for _, m := range msgs {
		var v struct {
			ObservedAt  string `json:"observed_at"`
			Timestamp   string `json:"@timestamp"`
			InputFormat string `json:"input_format"`
		}
		if json.Unmarshal(m.Value, &v) != nil || nativeOnly && v.InputFormat != "" && v.InputFormat != kindNative {
			continue
		}
		ts := v.ObservedAt
		if ts == "" {
			ts = v.Timestamp
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		out = append(out, float64(m.Time.Sub(t).Microseconds())/1000)
	}
	return out
}

// outcomes reads the backlog's scored events once: it counts the criminalip outcome of each
// ("gated" when it was not looked up), and returns the mean size of those of enriched native
// inputs (a provider outcome present): the "typical native input" of the size target.
func outcomes(msgs []kafka.Message) (map[string]int, float64) {
	out := map[string]int{}
	var n, total int
	for _, m := range msgs {
		var ev struct {
			InputFormat string `json:"input_format"`
			Providers   map[string]struct {
				Status string `json:"status"`
				Cache  *struct {
					Hit    bool `json:"hit"`
					Joined bool `json:"joined"`
				} `json:"cache"`
			} `json:"providers"`
		}
		if json.Unmarshal(m.Value, &ev) != nil {
			continue
		}
		if ev.InputFormat == kindNative && len(ev.Providers) > 0 {
			n++
			total += len(m.Value)
		}
		p, ok := ev.Providers["criminalip"]
		switch {
		case !ok:
			out["gated"]++
		case p.Cache != nil && p.Cache.Hit:
			out[p.Status+" (cache hit)"]++
		case p.Cache != nil && p.Cache.Joined:
			out[p.Status+" (joined)"]++
		default:
			out[p.Status+" (looked up)"]++
		}
	}
	if n == 0 {
		return out, 0
	}
	return out, float64(total) / float64(n)
}

// deadLetterClasses counts dead letters by their error class header.
func deadLetterClasses(msgs []kafka.Message) map[string]int {
	out := map[string]int{}
	for _, m := range msgs {
		class := "unclassified"
		for _, h := range m.Headers {
			if h.Key == pipeline.HeaderErrorClass {
				class = string(h.Value)
			}
		}
		out[class]++
	}
	return out
}

func cpuOf(procs []*proc) time.Duration {
	var d time.Duration
	for _, p := range procs {
		d += p.cpu()
	}
	return d
}

// growth compares resident memory late in the backlog with memory early in it: about 1.0 is
// flat.
func growth(samples []int64) float64 {
	if len(samples) < 8 {
		return 1
	}
	q := len(samples) / 4
	early, late := median(samples[q:2*q]), median(samples[3*q:])
	if early == 0 {
		return 1
	}
	return late / early
}
