package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/enrich/sim"
)

// trafficMix draws SIEM-like events: most name a few hot addresses again and again (what a cache
// is for), some a long tail of addresses seen once or twice, some scanners and Tor exits, some
// private addresses the gate skips, some ECS documents, and a few malformed lines.
type trafficMix struct {
	rng                *rand.Rand
	hot, tail, hostile []string
	seq                int64
}

func newTrafficMix(seed uint64) *trafficMix {
	m := &trafficMix{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := 0; len(m.hot) < 60 || len(m.hostile) < 40 || len(m.tail) < 3000; i++ {
		ip := fmt.Sprintf("%d.%d.%d.%d", []int{45, 91, 185, 193}[i%4], (i/4)%250+1, (i*7)%250+1, (i*13)%250+1)
		p, ok := sim.CriminalIPProfile(ip)
		switch {
		case !ok:
		case len(m.hostile) < 40 && (strings.Contains(strings.Join(p.Tags, ","), "tor") || strings.Contains(strings.Join(p.Tags, ","), "scanner")):
			m.hostile = append(m.hostile, ip)
		case len(m.hot) < 60:
			m.hot = append(m.hot, ip)
		case len(m.tail) < 3000:
			m.tail = append(m.tail, ip)
		}
	}
	return m
}

// addresses lists every public address the mix names.
func (m *trafficMix) addresses() []string {
	return append(append(append([]string{}, m.hot...), m.hostile...), m.tail...)
}

// next returns one message value and whether it is deliberately malformed.
func (m *trafficMix) next(now time.Time) ([]byte, string, bool) {
	m.seq++
	id := fmt.Sprintf("demo-%d", m.seq)
	sources := []string{"fw-edge-01", "fw-edge-02", "vpn-gw", "proxy-01", "edr"}
	src := sources[m.rng.IntN(len(sources))]
	switch r := m.rng.Float64(); {
	case r < 0.01:
		bad := []string{`{"event_id":"` + id + `","indicator":{"type":"ipv4-addr","value":"999.1.1.1"}}`,
			`{"event_id":"` + id + `",`, `not json at all`, `{"event_id":"` + id + `","indicator":{"type":"domain-name","value":"example.com"}}`}
		return []byte(bad[m.rng.IntN(len(bad))]), "malformed", true
	case r < 0.11:
		ip := fmt.Sprintf("10.%d.%d.%d", m.rng.IntN(4), m.rng.IntN(256), m.rng.IntN(254)+1)
		return native(id, src, ip, now), ip, false
	case r < 0.17:
		pub := m.hot[m.rng.IntN(len(m.hot))]
		doc := map[string]any{"@timestamp": now.UTC().Format(time.RFC3339Nano), "event": map[string]any{"id": id, "dataset": "panw.panos"},
			"observer": map[string]any{"name": src}, "source": map[string]any{"ip": pub, "port": 40000 + m.rng.IntN(20000)},
			"destination": map[string]any{"ip": fmt.Sprintf("192.168.1.%d", m.rng.IntN(254)+1), "port": 443}, "network": map[string]any{"transport": "tcp"}}
		raw, _ := json.Marshal(doc)
		return raw, pub, false
	case r < 0.27:
		ip := m.hostile[m.rng.IntN(len(m.hostile))]
		return native(id, src, ip, now), ip, false
	case r < 0.40:
		ip := m.tail[m.rng.IntN(len(m.tail))]
		return native(id, src, ip, now), ip, false
	default:
		// Heavy repeats: a skewed pick, so a handful of addresses dominate.
		f := m.rng.Float64()
		ip := m.hot[int(f*f*float64(len(m.hot)))]
		return native(id, src, ip, now), ip, false
	}
}

func native(id, source, ip string, now time.Time) []byte {
	raw, _ := json.Marshal(map[string]any{
		"event_id": id, "observed_at": now.UTC().Format(time.RFC3339Nano), "source": source,
		"indicator": map[string]string{"type": "ipv4-addr", "value": ip},
		"context":   map[string]any{"rule": "outbound-deny", "action": "blocked"},
	})
	return raw
}

// generateTraffic produces rate events per second to topic until ctx ends.
func generateTraffic(ctx context.Context, brokers []string, topic string, rate int, produced, malformed *atomic.Int64) error {
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 10 * time.Millisecond, AllowAutoTopicCreation: true}
	defer w.Close()
	mix := newTrafficMix(uint64(time.Now().UnixNano()))
	const tick = 100 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	carry := 0.0
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			carry += float64(rate) * tick.Seconds()
			n := int(carry)
			carry -= float64(n)
			msgs := make([]kafka.Message, 0, n)
			var bad int64
			for range n {
				v, key, isBad := mix.next(now)
				if isBad {
					bad++
				}
				msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(key), Value: v})
			}
			if len(msgs) == 0 {
				continue
			}
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				continue // the broker may still be starting; the next tick tries again
			}
			produced.Add(int64(len(msgs)))
			malformed.Add(bad)
		}
	}
}

type summarySources struct {
	enrich, act, view string
	produced          *atomic.Int64
	malformed         *atomic.Int64
	webhooks          *atomic.Int64
}

// summarise prints a one-line summary every second (rewritten in place on a terminal, a new line
// every 5 s otherwise), read from the roles' own /metrics and the view's API: what an operator
// would look at.
func summarise(ctx context.Context, out io.Writer, src summarySources) {
	tty := isTerminal(out)
	every := time.Second
	if !tty {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	var lastScored float64
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			em := scrape(ctx, client, src.enrich+"/metrics")
			am := scrape(ctx, client, src.act+"/metrics")
			scored := em.sum("threatpipe_events_produced_total", "topic", "indicators.scored")
			rate := (scored - lastScored) / now.Sub(lastAt).Seconds()
			lastScored, lastAt = scored, now
			hits := em.sum("threatpipe_cache_requests_total", "result", "hit")
			misses := em.sum("threatpipe_cache_requests_total", "result", "miss")
			hitRate := 0.0
			if hits+misses > 0 {
				hitRate = 100 * hits / (hits + misses)
			}
			line := fmt.Sprintf("%5.0f scored/s | cache hits %4.1f%% | provider calls %.0f, %.0f saved by rules | Criminal IP quota left %.0f | dead letters %.0f | actions %.0f | webhooks %d | top %s",
				rate, hitRate, em.sum("threatpipe_provider_calls_total", "outcome", "ok"), em.sum("threatpipe_provider_outcomes_total", "status", "skipped"),
				em.sum("threatpipe_quota_remaining", "provider", "criminalip"),
				em.sum("threatpipe_dead_letters_total", "", ""), am.sum("threatpipe_act_actions_total", "outcome", "done"),
				src.webhooks.Load(), topIndicator(ctx, client, src.view))
			if tty {
				fmt.Fprintf(out, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(out, line)
			}
		}
	}
}

type scraped map[string][]labeledValue

type labeledValue struct {
	labels map[string]string
	value  float64
}

// sum adds up a metric's samples, those whose label has value when a label is given.
func (s scraped) sum(name, label, value string) float64 {
	total := 0.0
	for _, lv := range s[name] {
		if label == "" || lv.labels[label] == value {
			total += lv.value
		}
	}
	return total
}

func scrape(ctx context.Context, client *http.Client, url string) scraped {
	out := scraped{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return out
	}
	res, err := client.Do(req)
	if err != nil {
		return out
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return out
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			lv := labeledValue{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				lv.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				lv.value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				lv.value = m.GetGauge().GetValue()
			default:
				continue
			}
			out[name] = append(out[name], lv)
		}
	}
	return out
}

// topIndicator is the view's first-ranked indicator, "ip (score)".
func topIndicator(ctx context.Context, client *http.Client, view string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, view+"/api/v1/indicators?limit=1", nil)
	if err != nil {
		return "-"
	}
	res, err := client.Do(req)
	if err != nil {
		return "-"
	}
	defer res.Body.Close()
	var body struct {
		Indicators []struct {
			IP    string `json:"ip"`
			Score int    `json:"score"`
		} `json:"indicators"`
	}
	if json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&body) != nil || len(body.Indicators) == 0 {
		return "-"
	}
	return fmt.Sprintf("%s (%d)", body.Indicators[0].IP, body.Indicators[0].Score)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
