package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// chaosLoad is the steady load of a chaos case: rate events per second, in batches every
// 100 ms, naming the case's addresses (a new one every few events, the others repeated, so that
// paid lookups and cache hits go on side by side for the whole case), with one event in
// deadLetterEvery naming no valid address (a dead letter). The producer rides out a broker
// outage: a batch the broker did not acknowledge is sent again until it is. What reached the
// input topic is read back afterwards; the topic, not the producer, says which events went in.
type chaosLoad struct {
	brokers []string
	topic   string
	prefix  string // event ids are <prefix>-<n>
	ips     []string
	rate    int
	// newEvery introduces a new address every newEvery events until all are in use.
	newEvery int

	mu       sync.Mutex
	sent     int
	failures int // produce attempts the broker did not acknowledge
}

const deadLetterEvery = 50

func newChaosLoad(brokers []string, topic, prefix string, ips []string, rate int, length time.Duration) *chaosLoad {
	total := max(int(float64(rate)*length.Seconds()), 1)
	return &chaosLoad{brokers: brokers, topic: topic, prefix: prefix, ips: ips, rate: rate, newEvery: max(total/len(ips), 1)}
}

// run produces until ctx ends; a batch in flight then is dropped unless the broker took it.
func (l *chaosLoad) run(ctx context.Context) {
	w := &kafka.Writer{Addr: kafka.TCP(l.brokers...), Topic: l.topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 2 * time.Millisecond, BatchSize: 1000,
		WriteTimeout: 5 * time.Second, MaxAttempts: 3}
	defer w.Close()
	rng := rand.New(rand.NewPCG(uint64(len(l.prefix)), 12))
	used := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		batch := make([]kafka.Message, 0, l.rate/10)
		for range max(l.rate/10, 1) {
			ip := l.ips[rng.IntN(max(used, 1))]
			if n%l.newEvery == 0 && used < len(l.ips) {
				ip = l.ips[used]
				used++
			}
			if n%deadLetterEvery == deadLetterEvery-1 {
				ip = "not-an-address"
			}
			batch = append(batch, l.event(n, ip))
			n++
		}
		if !l.send(ctx, w, batch) {
			return
		}
	}
}

func (l *chaosLoad) event(n int, ip string) kafka.Message {
	id := fmt.Sprintf("%s-%d", l.prefix, n)
	now := time.Now().UTC()
	return kafka.Message{Key: []byte(id), Time: now, Value: []byte(fmt.Sprintf(
		`{"event_id":%q,"observed_at":%q,"source":"chaos","indicator":{"type":"ipv4-addr","value":%q}}`,
		id, now.Format(time.RFC3339Nano), ip))}
}

// send writes batch until the broker acknowledges it; false when ctx ended first.
func (l *chaosLoad) send(ctx context.Context, w *kafka.Writer, batch []kafka.Message) bool {
	for {
		err := w.WriteMessages(ctx, batch...)
		if err == nil {
			l.mu.Lock()
			l.sent += len(batch)
			l.mu.Unlock()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		l.mu.Lock()
		l.failures++
		l.mu.Unlock()
		if !sleepOrDone(ctx, 500*time.Millisecond) {
			return false
		}
	}
}

func (l *chaosLoad) stats() (sent, failures int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, l.failures
}

// deadLetterBound reports whether an input event was built to be dead-lettered.
func deadLetterBound(value []byte) bool { return strings.Contains(string(value), `"not-an-address"`) }

func sleepOrDone(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
