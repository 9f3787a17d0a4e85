package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/segmentio/kafka-go"
)

// mix is the composition of a generated load.
type mix struct {
	ECS       float64 // share of ECS-shaped events (each names one public and one private IP)
	Gated     float64 // share of native events naming a private address
	Malformed float64 // share of lines that are not JSON
	Miss      float64 // share of events naming an address the cache has never seen
}

// dataset is a generated load and what it must produce.
type dataset struct {
	msgs       []kafka.Message
	outputs    int // scored events expected
	deadLetter int // dead letters expected
	freshIPs   int // distinct never-seen public addresses (each must cost one paid call)
}

// warmIP is the i-th address of the warm set; freshIP the i-th never-seen address of a run.
// Both are public, and the two sets never meet (first octet 20-59 against 60-99).
func warmIP(i int) string {
	return fmt.Sprintf("%d.%d.%d.7", 20+i%40, i/40%250, i/10000%250)
}

func freshIP(run, i int) string {
	return fmt.Sprintf("%d.%d.%d.%d", 60+i%40, i/40%250, i/10000%250, 8+run)
}

// generate builds n events over warm addresses [0, warm) with the given mix. Events carry
// their production time as their own timestamp when stamp is true (latency runs). Fresh
// addresses are freshIP(run, freshBase), freshIP(run, freshBase+1), ..., each used once.
func generate(n, warm int, m mix, run, freshBase int, seed uint64, stamp bool) *dataset {
	rng := rand.New(rand.NewPCG(seed, uint64(run)))
	d := &dataset{msgs: make([]kafka.Message, 0, n)}
	ts := "2026-11-27T10:00:00Z"
	for i := range n {
		if stamp {
			ts = time.Now().UTC().Format(time.RFC3339Nano)
		}
		r := rng.Float64()
		ip := warmIP(rng.IntN(warm))
		if public := r >= m.Malformed+m.ECS && r < m.Malformed+m.ECS+m.Gated; !public && r >= m.Malformed && rng.Float64() < m.Miss {
			ip = freshIP(run, freshBase+d.freshIPs)
			d.freshIPs++
		}
		var v string
		switch {
		case r < m.Malformed:
			v = fmt.Sprintf(`{"event_id":"bench-%d", this is not JSON`, i)
			d.deadLetter++
		case r < m.Malformed+m.ECS:
			v = fmt.Sprintf(`{"@timestamp":%q,"event":{"id":"bench-%d","dataset":"bench.conn"},"observer":{"name":"bench-fw"},`+
				`"source":{"ip":%q,"port":%d},"destination":{"ip":"10.%d.%d.%d","port":443},"network":{"transport":"tcp"}}`,
				ts, i, ip, 1024+i%60000, i%200, i/200%250, 1+i%250)
			d.outputs += 2
		case r < m.Malformed+m.ECS+m.Gated:
			v = fmt.Sprintf(`{"event_id":"bench-%d","observed_at":%q,"source":"bench-fw","indicator":{"type":"ipv4-addr","value":"192.168.%d.%d"},"context":{"action":"allow"}}`,
				i, ts, i%250, 1+i/250%250)
			d.outputs++
		default:
			v = fmt.Sprintf(`{"event_id":"bench-%d","observed_at":%q,"source":"bench-fw","indicator":{"type":"ipv4-addr","value":%q},"context":{"action":"deny","dst_port":%d}}`,
				i, ts, ip, 1+i%65000)
			d.outputs++
		}
		d.msgs = append(d.msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(v)})
	}
	return d
}
