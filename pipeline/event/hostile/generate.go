package hostile

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Sizes of the generated items.
const (
	// DeepLevels is how deep the deep items nest: the 100,000.
	DeepLevels = 100_000
	// BigDocuments is how many big ECS documents the corpus holds, each about BigDocumentBytes
	// and naming BigDocumentAddresses public addresses: the 60 documents of 300 KB that
	// took one enricher to 770 MiB.
	BigDocuments         = 60
	BigDocumentBytes     = 300_000
	BigDocumentAddresses = 32
	// ManyAddresses is how many addresses the many-address events name.
	ManyAddresses = 5000
	// DefaultMaxIndicators is THREATPIPE_PIPELINE_MAX_INDICATORS_PER_EVENT's default, which
	// the expectations assume.
	DefaultMaxIndicators = 32
)

// Generated returns the items too big to commit: everyday events to mix in, deep nesting in
// every field of both input formats, events naming thousands of addresses, the big documents and
// one message over the size limit.
func Generated() []Item {
	var out []Item
	out = append(out, ordinary()...)
	out = append(out, deep()...)
	out = append(out, manyAddresses()...)
	out = append(out, bigDocuments()...)
	return append(out, tooLarge())
}

// publicIP returns the i-th of a run of distinct public addresses (first octet 20-99, never
// gated); run keeps the runs of different items apart.
func publicIP(run, i int) string {
	return fmt.Sprintf("%d.%d.%d.%d", 20+i%80, 1+i/80%250, run, 1+i/20000)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed shapes of strings, numbers, maps and slices are marshalled
	}
	return b
}

func native(id, ip string, extra string) []byte {
	return []byte(fmt.Sprintf(`{"event_id":%q,"observed_at":"2026-03-14T09:26:53Z","source":"hostile","indicator":{"type":"ipv4-addr","value":%q}%s}`,
		id, ip, extra))
}

// ordinary returns everyday native and ECS events, public and private addresses.
func ordinary() []Item {
	var out []Item
	for i := range 100 {
		ip := publicIP(17, i)
		if i%10 == 0 {
			ip = fmt.Sprintf("10.17.0.%d", i)
		}
		name := fmt.Sprintf("ordinary-native-%03d", i)
		out = append(out, Item{Name: name, Ordinary: true, Value: native(name, ip, `,"context":{"rule":"deny-ssh","dst_port":22}`),
			Want: Want{Scored: []string{ip}}})
	}
	for i := range 40 {
		name := fmt.Sprintf("ordinary-ecs-%03d", i)
		src, dst := publicIP(18, i), fmt.Sprintf("192.168.18.%d", i+1)
		doc := map[string]any{
			"@timestamp": "2026-03-14T09:27:01.204Z", "event": map[string]any{"id": name, "dataset": "panw.panos"},
			"observer": map[string]any{"name": "pa-edge-01"}, "source": map[string]any{"ip": src, "port": 51234},
			"destination": map[string]any{"ip": dst, "port": 22}, "related": map[string]any{"ip": []string{src, dst}},
		}
		out = append(out, Item{Name: name, Ordinary: true, Value: mustJSON(doc), Want: Want{Scored: []string{src, dst}}})
	}
	return out
}

// nestObjects is a JSON value nesting n objects; nestArrays one nesting n arrays.
func nestObjects(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
func nestArrays(n int) string  { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// deep returns one event per field of each format with that field nesting DeepLevels deep,
// and the context at a few depths between the limit and DeepLevels.
func deep() []Item {
	d, a := nestObjects(DeepLevels), nestArrays(DeepLevels)
	nativeFields := map[string]string{
		"event_id":        `{"event_id":%[1]s,"indicator":{"type":"ipv4-addr","value":"8.8.8.8"}}`,
		"observed_at":     `{"event_id":"x","observed_at":%[1]s,"indicator":{"type":"ipv4-addr","value":"8.8.8.8"}}`,
		"source":          `{"event_id":"x","source":%[1]s,"indicator":{"type":"ipv4-addr","value":"8.8.8.8"}}`,
		"schema_version":  `{"schema_version":%[1]s,"event_id":"x","indicator":{"type":"ipv4-addr","value":"8.8.8.8"}}`,
		"indicator":       `{"event_id":"x","indicator":{"type":"ipv4-addr","value":"8.8.8.8","x":%[1]s}}`,
		"indicator.type":  `{"event_id":"x","indicator":{"type":%[1]s,"value":"8.8.8.8"}}`,
		"indicator.value": `{"event_id":"x","indicator":{"type":"ipv4-addr","value":%[1]s}}`,
		"context":         `{"event_id":"x","indicator":{"type":"ipv4-addr","value":"8.8.8.8"},"context":%[1]s}`,
		"context.member":  `{"event_id":"x","indicator":{"type":"ipv4-addr","value":"8.8.8.8"},"context":{"rule":"r","x":%[2]s}}`,
		"extra":           `{"event_id":"x","indicator":{"type":"ipv4-addr","value":"8.8.8.8"},"tenant":%[1]s}`,
	}
	ecsFields := map[string]string{
		"@timestamp":     `{"@timestamp":%[1]s,"source":{"ip":"8.8.8.8"}}`,
		"event":          `{"event":{"id":"x","original":%[1]s},"source":{"ip":"8.8.8.8"}}`,
		"observer":       `{"observer":%[1]s,"source":{"ip":"8.8.8.8"}}`,
		"source":         `{"source":{"ip":"8.8.8.8","geo":%[1]s}}`,
		"source.ip":      `{"source":{"ip":%[1]s},"destination":{"ip":"8.8.8.8"}}`,
		"destination.ip": `{"source":{"ip":"8.8.8.8"},"destination":{"ip":%[2]s}}`,
		"related.ip":     `{"source":{"ip":"8.8.8.8"},"related":{"ip":["8.8.8.8",%[2]s]}}`,
		"dotted":         `{"source.ip":%[2]s,"destination.ip":"8.8.8.8"}`,
		"message":        `{"@timestamp":"2026-03-14T09:27:01Z","source":{"ip":"8.8.8.8"},"message":%[1]s}`,
		"tags":           `{"source":{"ip":"8.8.8.8"},"tags":%[2]s}`,
	}
	var out []Item
	add := func(prefix string, fields map[string]string) {
		for field, tmpl := range fields {
			out = append(out, Item{Name: prefix + field, Value: []byte(fmt.Sprintf(tmpl, d, a)), Want: Want{DeadLetter: "too_deep"}})
		}
	}
	add("deep-native-", nativeFields)
	add("deep-ecs-", ecsFields)
	for _, n := range []int{100, 1000, 10_000} {
		out = append(out, Item{Name: fmt.Sprintf("deep-context-%d", n),
			Value: native("deep", "8.8.8.8", `,"context":`+nestObjects(n)), Want: Want{DeadLetter: "too_deep"}})
	}
	return out
}

func ecsWith(name string, fields map[string]any) []byte {
	doc := map[string]any{"@timestamp": "2026-03-14T09:27:01Z", "event": map[string]any{"id": name}}
	for k, v := range fields {
		doc[k] = v
	}
	return mustJSON(doc)
}

func first(list []string, n int) []string { return list[:min(n, len(list))] }

// manyAddresses returns events naming thousands of addresses: distinct public ones, private ones,
// one repeated, invalid ones, spread over every IP field, and the limit's edges.
func manyAddresses() []Item {
	public, private, invalid := make([]string, ManyAddresses), make([]string, ManyAddresses), make([]string, ManyAddresses)
	for i := range ManyAddresses {
		public[i] = publicIP(19, i)
		private[i] = fmt.Sprintf("10.19.%d.%d", i/250, 1+i%250)
		invalid[i] = fmt.Sprintf("999.%d.%d.1", i/250, i%250)
	}
	same := make([]string, ManyAddresses)
	for i := range same {
		same[i] = "8.8.8.8"
	}
	spread := map[string]any{
		"source": map[string]any{"ip": public[:1000]}, "destination": map[string]any{"ip": public[1000:2000]},
		"client": map[string]any{"ip": public[2000:3000]}, "server": map[string]any{"ip": public[3000:4000]},
		"related": map[string]any{"ip": public[4000:]},
	}
	over := DefaultMaxIndicators + 1
	return []Item{
		{Name: "many-public", Value: ecsWith("many-public", map[string]any{"related": map[string]any{"ip": public}}),
			Want: Want{Scored: first(public, DefaultMaxIndicators), DeadLetter: "too_many_indicators", ContextTruncated: true}},
		{Name: "many-private", Value: ecsWith("many-private", map[string]any{"related": map[string]any{"ip": private}}),
			Want: Want{Scored: first(private, DefaultMaxIndicators), DeadLetter: "too_many_indicators", ContextTruncated: true}},
		{Name: "many-same", Value: ecsWith("many-same", map[string]any{"related": map[string]any{"ip": same}}),
			Want: Want{Scored: []string{"8.8.8.8"}, ContextTruncated: true}},
		{Name: "many-invalid", Value: ecsWith("many-invalid", map[string]any{"related": map[string]any{"ip": append(invalid, "8.8.8.8")}}),
			Want: Want{Scored: []string{"8.8.8.8"}, ContextTruncated: true}},
		{Name: "many-spread", Value: ecsWith("many-spread", spread),
			Want: Want{Scored: first(public, DefaultMaxIndicators), DeadLetter: "too_many_indicators", ContextTruncated: true}},
		{Name: "many-dotted", Value: ecsWith("many-dotted", map[string]any{"related.ip": public}),
			Want: Want{Scored: first(public, DefaultMaxIndicators), DeadLetter: "too_many_indicators", ContextTruncated: true}},
		{Name: "many-at-limit", Value: ecsWith("many-at-limit", map[string]any{"related": map[string]any{"ip": public[:DefaultMaxIndicators]}}),
			Want: Want{Scored: first(public, DefaultMaxIndicators)}},
		{Name: "many-over-limit", Value: ecsWith("many-over-limit", map[string]any{"related": map[string]any{"ip": public[:over]}}),
			Want: Want{Scored: first(public, DefaultMaxIndicators), DeadLetter: "too_many_indicators"}},
		{Name: "many-in-native-context", Value: native("many-in-native-context", "8.8.8.8", `,"context":{"ips":`+string(mustJSON(public))+`}`),
			Want: Want{Scored: []string{"8.8.8.8"}, ContextTruncated: true}},
	}
}

// bigDocuments returns BigDocuments ECS documents of about BigDocumentBytes, each naming
// BigDocumentAddresses distinct public addresses, in three shapes: one huge field, thousands
// of small fields, and a big nested body.
func bigDocuments() []Item {
	var out []Item
	// About 300 KB once JSON-encoded, with escapes (quotes, a tab, non-ASCII) but no HTML
	// characters, which encoding/json would triple.
	filler := strings.Repeat("GET /index.php?q=%3Cscript%3E \"x\"\té=✓ HTTP/1.1 ", (BigDocumentBytes-30_000)/48)
	for d := range BigDocuments {
		name := fmt.Sprintf("big-ecs-%02d", d)
		ips := make([]string, BigDocumentAddresses)
		for k := range ips {
			ips[k] = publicIP(13, d*BigDocumentAddresses+k)
		}
		fields := map[string]any{
			"observer": map[string]any{"name": "waf-01", "vendor": "Example"},
			"source":   map[string]any{"ip": ips[0], "port": 443}, "destination": map[string]any{"ip": ips[1], "port": 8443},
			"related": map[string]any{"ip": ips},
		}
		switch d % 3 {
		case 0:
			fields["message"] = filler
		case 1:
			for i := 0; i < (BigDocumentBytes-3_000)/100; i++ {
				fields[fmt.Sprintf("labels.k%05d", i)] = strings.Repeat("v", 83)
			}
		case 2:
			fields["http"] = map[string]any{"request": map[string]any{"method": "POST", "body": map[string]any{"content": filler}}}
			fields["url"] = map[string]any{"original": "/upload?" + strings.Repeat("a=1;", 1000)}
		}
		out = append(out, Item{Name: name, Value: ecsWith(name, fields), Want: Want{Scored: ips, ContextTruncated: true}})
	}
	return out
}

// TooLargeBytes is the size of the item over THREATPIPE_PIPELINE_MAX_EVENT_BYTES' default.
const TooLargeBytes = 1_100_000

// tooLarge returns an ECS event over the default size limit. A broker takes it only on a topic
// whose max.message.bytes allows it.
func tooLarge() Item {
	return Item{Name: "too-large", Value: ecsWith("too-large", map[string]any{
		"source": map[string]any{"ip": "8.8.8.8"}, "message": strings.Repeat("x", TooLargeBytes),
	}), Want: Want{DeadLetter: "too_large"}}
}
