package sim

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/internetdb"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

func internetDBClient(t *testing.T, url string) *internetdb.Client {
	t.Helper()
	c, err := internetdb.New(&internetdb.Config{Config: providerhttp.Config{BaseURL: url}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInternetDBThroughClient(t *testing.T) {
	_, url := dtServe(t, InternetDB{}, Options{})
	c := internetDBClient(t, url)
	known, total, bad, c2 := map[Class]int{}, map[Class]int{}, 0, 0
	for _, ip := range dtAddrs(2000, true) {
		tr, _ := TruthOf(ip)
		res, err := c.Lookup(context.Background(), dtIndicator(ip))
		if err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		total[tr.Class]++
		if !(InternetDB{}).Knows(tr) {
			if res.Verdict != enrich.VerdictNotFound {
				t.Errorf("%s: %s, want not_found", ip, res.Verdict)
			}
			continue
		}
		known[tr.Class]++
		tags := InternetDBTags(tr)
		want, score := event.VerdictUnrated, 0
		if slices.Contains(tags, "c2") || slices.Contains(tags, "compromised") {
			want, score = enrich.VerdictMalicious, 80
			bad++
			if slices.Contains(tags, "c2") {
				c2++
			}
		}
		if res.Verdict != want || res.Score != score || !slices.Equal(res.Tags, tags) {
			t.Errorf("%s (%s): %s %d %v, want %s %d %v", ip, tr.Class, res.Verdict, res.Score, res.Tags, want, score, tags)
		}
		if !slices.Equal(res.OpenPorts, tr.CIP.Ports) || res.CVECount != len(tr.CIP.CVEs) {
			t.Errorf("%s: ports %v CVEs %d, want %v %d", ip, res.OpenPorts, res.CVECount, tr.CIP.Ports, len(tr.CIP.CVEs))
		}
	}
	t.Logf("known by class: %v of %v; malicious tags %d (c2 %d)", known, total, bad, c2)
	for class, want := range map[Class][2]float64{ClassHostile: {0.82, 0.97}, ClassSuspect: {0.6, 0.8}, ClassClean: {0.62, 0.78}} {
		if s := dtShare(known[class], total[class]); s < want[0] || s > want[1] {
			t.Errorf("%s: %d of %d known (%.2f), want %.2f-%.2f", class, known[class], total[class], s, want[0], want[1])
		}
	}
	if s := dtShare(bad, known[ClassHostile]); s < 0.15 || s > 0.35 || c2 == 0 || c2 >= bad {
		t.Errorf("hostile with a malicious tag: %d of %d (%.2f, want 25%%), c2 %d", bad, known[ClassHostile], s, c2)
	}
}

func TestInternetDBDeterministic(t *testing.T) {
	dtSameAnswers(t, InternetDB{}, func(ip string) string { return "/" + ip }, nil)
}

func TestInternetDBOutcomeShapes(t *testing.T) {
	seen := dtFind(t, false, func(tr *Truth) bool { return (InternetDB{}).Knows(tr) && len(tr.CIP.CVEs) > 0 })
	unseen := dtFind(t, false, func(tr *Truth) bool { return !(InternetDB{}).Knows(tr) })
	empty := dtFind(t, false, func(tr *Truth) bool { return (InternetDB{}).Knows(tr) && tr.CIP.NotFound })
	host := []string{"cpes", "hostnames", "ip", "ports", "tags", "vulns"}
	detail := []string{"detail"}
	ipv6 := dtFind(t, true, func(tr *Truth) bool { return netip.MustParseAddr(tr.IP).Is6() && (InternetDB{}).Knows(tr) })
	dtCheckShapes(t, InternetDB{}, "/"+seen, []dtShape{
		{name: "host", path: "/" + seen, status: 200, keys: host, fields: map[string]string{"ip": seen}},
		{name: "IPv6", path: "/" + ipv6, status: 200, keys: host},
		{name: "no information", path: "/" + unseen, status: 404, keys: detail, fields: map[string]string{"detail": "No information available"}},
		{name: "rate limited", opts: Options{Force429For: time.Minute}, path: "/" + seen, status: 429, retry: true, keys: detail,
			fields: map[string]string{"detail": "Rate limit exceeded"}},
		{name: "quota spent", opts: Options{DailyQuota: 1}, before: 1, path: "/" + unseen, status: 429, retry: true, keys: detail},
		{name: "server error", opts: Options{ErrorRate: 1}, path: "/" + seen, status: 500, fields: map[string]string{"detail": "Internal Server Error"}},
		{name: "not an address", path: "/nope", status: 404, fields: map[string]string{"detail": "Not Found"}},
		{name: "root", path: "/", status: 404, fields: map[string]string{"detail": "Not Found"}},
		{name: "two segments", path: "/" + seen + "/x", status: 404, fields: map[string]string{"detail": "Not Found"}},
		{name: "wrong method", method: http.MethodPost, path: "/" + seen, status: 405, keys: detail},
	})

	// Lists are never null, even for an address Criminal IP knows nothing of.
	_, url := dtServe(t, InternetDB{}, Options{})
	_, _, body := dtGet(t, http.MethodGet, url+"/"+empty, nil)
	for k, v := range dtObject(t, body) {
		if _, ok := v.([]any); k != "ip" && !ok {
			t.Fatalf("%s is %v: %s", k, v, body)
		}
	}
	_, _, body = dtGet(t, http.MethodGet, url+"/"+seen, nil)
	m := dtObject(t, body)
	if len(m["vulns"].([]any)) == 0 || len(m["cpes"].([]any)) == 0 || len(m["hostnames"].([]any)) != 1 {
		t.Fatalf("host %s", body)
	}
}
