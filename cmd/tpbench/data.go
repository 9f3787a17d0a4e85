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
	outputs    int            // scored events expected
	deadLetter int            // dead letters expected
	freshIPs   int            // distinct never-seen public addresses (each must cost one paid call)
	kinds      map[string]int // events per input format (formats scenario)
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

// Input formats of the "formats" scenario's load besides native events.
const (
	kindNative = "native"
	kindEVE    = "eve"
	kindZeek   = "zeek"
	kindCEF    = "cef"
	kindKV     = "kv"
)

// generateFormats builds n events over warm addresses: a native share (public address, as in
// the hits load) and, in equal shares of the rest, Suricata EVE alerts, Zeek conn records, CEF
// lines and FortiGate key=value lines, each naming a warm public source and a private
// destination. Every public address is warm, so a decoded event is all cache hits. A format
// event is expected to give two scored events (source and destination) once its decoder is
// registered; until then it is a dead letter, which the scenario reports by class.
func generateFormats(n, warm int, native float64, seed uint64, stamp bool) *dataset {
	rng := rand.New(rand.NewPCG(seed, 7))
	formatKinds := [...]string{kindEVE, kindZeek, kindCEF, kindKV}
	d := &dataset{msgs: make([]kafka.Message, 0, n), kinds: map[string]int{}}
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for i := range n {
		if stamp {
			now = time.Now().UTC()
		}
		src, dst := warmIP(rng.IntN(warm)), fmt.Sprintf("10.%d.%d.%d", i%200, i/200%250, 1+i%250)
		kind := kindNative
		if rng.Float64() >= native {
			kind = formatKinds[rng.IntN(len(formatKinds))]
		}
		d.kinds[kind]++
		var v string
		if kind == kindNative {
			v = fmt.Sprintf(`{"event_id":"bench-%d","observed_at":%q,"source":"bench-fw","indicator":{"type":"ipv4-addr","value":%q},"context":{"action":"deny","dst_port":%d}}`,
				i, now.Format(time.RFC3339Nano), src, 1+i%65000)
			d.outputs++
		} else {
			v = formatLine(kind, i, now, src, dst)
			d.outputs += 2
		}
		d.msgs = append(d.msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(v)})
	}
	return d
}

// formatLine is event i of a non-native kind, shaped as the format's documentation shows it:
// Suricata's EVE JSON output (eve-json-format, an alert event), Zeek's conn.log with
// LogAscii::use_json=T, ArcSight CEF ("Implementing ArcSight Common Event Format": a syslog-less
// CEF:0 header and extension) and a FortiOS traffic log (FortiGate Log Message Reference).
func formatLine(kind string, i int, at time.Time, src, dst string) string {
	sport, dport := 1024+i%60000, []int{22, 80, 443, 3389}[i%4]
	switch kind {
	case kindEVE:
		return fmt.Sprintf(`{"timestamp":%q,"flow_id":%d,"in_iface":"eth0","event_type":"alert","src_ip":%q,"src_port":%d,"dest_ip":%q,"dest_port":%d,"proto":"TCP",`+
			`"alert":{"action":"allowed","gid":1,"signature_id":%d,"rev":3,"signature":"ET SCAN Potential SSH Scan","category":"Attempted Information Leak","severity":2},`+
			`"flow":{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":74,"bytes_toclient":0,"start":%q}}`,
			at.Format("2006-01-02T15:04:05.000000-0700"), 1_000_000_000+i, src, sport, dst, dport, 2001219+i%100, at.Format("2006-01-02T15:04:05.000000-0700"))
	case kindZeek:
		return fmt.Sprintf(`{"ts":%.6f,"uid":"C%08xbench","id.orig_h":%q,"id.orig_p":%d,"id.resp_h":%q,"id.resp_p":%d,"proto":"tcp","service":"ssl",`+
			`"duration":0.%06d,"orig_bytes":%d,"resp_bytes":%d,"conn_state":"SF","local_orig":false,"local_resp":true,"missed_bytes":0,"history":"ShADadFf",`+
			`"orig_pkts":12,"orig_ip_bytes":1500,"resp_pkts":10,"resp_ip_bytes":4800}`,
			float64(at.UnixMicro())/1e6, i, src, sport, dst, dport, i%1000000, 200+i%5000, 1000+i%9000)
	case kindCEF:
		return fmt.Sprintf(`CEF:0|Bench Security|Bench IDS|1.0|100|Port scan detected|7|rt=%d src=%s spt=%d dst=%s dpt=%d proto=TCP act=blocked cs1Label=policy cs1=bench\=%d msg=scan from %s`,
			at.UnixMilli(), src, sport, dst, dport, i%50, src)
	default:
		return fmt.Sprintf(`date=%s time=%s devname="FGT" devid="FG100ETK18000000" eventtime=%d tz="+0000" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" `+
			`srcip=%s srcport=%d srcintf="wan1" dstip=%s dstport=%d dstintf="internal" sessionid=%d proto=6 action="deny" policyid=%d policytype="policy" service="HTTPS" trandisp="noop" duration=0 sentbyte=0 rcvdbyte=0`,
			at.Format("2006-01-02"), at.Format("15:04:05"), at.UnixNano(), src, sport, dst, dport, 100000+i, 1+i%20)
	}
}
