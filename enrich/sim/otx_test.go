package sim

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/enrich"
	"github.com/threatpipe/threatpipe/enrich/providers/otx"
	"github.com/threatpipe/threatpipe/enrich/providers/providerhttp"
	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

func otxClient(t *testing.T, url string) *otx.Client {
	t.Helper()
	c, err := otx.New(&otx.Config{Config: providerhttp.Config{APIKey: config.Secret(dtKey), BaseURL: url}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// otxWant restates the client's documented rule for n pulses.
func otxWant(service bool, n int) (enrich.Verdict, int) {
	switch {
	case service:
		return enrich.VerdictBenign, 0
	case n == 0:
		return event.VerdictUnrated, 0
	case n >= 3:
		return enrich.VerdictMalicious, min(90, 30+10*n)
	}
	return enrich.VerdictSuspicious, 30 + 10*n
}

// otxPulseRange is how many pulses a listed address of each class is in.
var otxPulseRange = map[Class][2]int{ClassHostile: {1, 12}, ClassSuspect: {1, 2}, ClassClean: {1, 1}}

func TestOTXThroughClient(t *testing.T) {
	_, url := dtServe(t, OTX{}, Options{})
	c := otxClient(t, url)
	listed, total := map[Class]int{}, map[Class]int{}
	for _, ip := range dtAddrs(2000, true) {
		tr, _ := TruthOf(ip)
		res, err := c.Lookup(context.Background(), dtIndicator(ip))
		if err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		n := otxPulseCount(tr)
		total[tr.Class]++
		if n > 0 {
			listed[tr.Class]++
		}
		if r := otxPulseRange[tr.Class]; n > 0 && (n < r[0] || n > r[1]) {
			t.Errorf("%s (%s): %d pulses", ip, tr.Class, n)
		}
		verdict, score := otxWant(tr.Class == ClassService, n)
		if res.Verdict != verdict || res.Score != score {
			t.Errorf("%s (%s, %d pulses): %s %d, want %s %d (%s)", ip, tr.Class, n, res.Verdict, res.Score, verdict, score, res.Detail)
		}
		if tr.Class == ClassService && res.Service != "Whitelisted IP" {
			t.Errorf("%s: service %q", ip, res.Service)
		}
		if res.ASNumber == 0 || res.ASOrganization == "" || len(res.CountryISO) != 2 || res.City == "" || res.Location == nil {
			t.Errorf("%s: network context missing: %+v", ip, res)
		}
	}
	t.Logf("listed by class: %v of %v", listed, total)
	for class, want := range map[Class][2]float64{ClassHostile: {0.5, 0.7}, ClassSuspect: {0.15, 0.35}, ClassClean: {0, 0.06}, ClassService: {0, 0}} {
		if s := dtShare(listed[class], total[class]); s < want[0] || s > want[1] || total[class] < 50 {
			t.Errorf("%s: %d of %d listed (%.2f), want %.2f-%.2f", class, listed[class], total[class], s, want[0], want[1])
		}
	}
}

func otxPath(ip string) string {
	typ := "IPv4"
	if netip.MustParseAddr(ip).Is6() {
		typ = "IPv6"
	}
	return OTXIndicatorsPath + typ + "/" + ip + "/general"
}

func TestOTXDeterministic(t *testing.T) {
	dtSameAnswers(t, OTX{}, otxPath, map[string]string{"X-OTX-API-KEY": dtKey})
}

func TestOTXOutcomeShapes(t *testing.T) {
	quiet := dtFind(t, false, func(tr *Truth) bool { return tr.Class == ClassClean && otxPulseCount(tr) == 0 })
	busy := dtFind(t, false, func(tr *Truth) bool { return otxPulseCount(tr) >= 6 })
	key := map[string]string{"X-OTX-API-KEY": dtKey}
	general := []string{"accuracy_radius", "area_code", "asn", "base_indicator", "charset", "city", "city_data", "continent_code",
		"country_code", "country_code2", "country_code3", "country_name", "dma_code", "false_positive", "flag_title", "flag_url",
		"indicator", "latitude", "longitude", "postal_code", "pulse_info", "region", "reputation", "sections", "subdivision",
		"type", "type_title", "validation", "whois"}
	detail := []string{"detail"}
	dtCheckShapes(t, OTX{}, otxPath(quiet), []dtShape{
		{name: "in no pulse", path: otxPath(quiet), header: key, status: 200, keys: general, fields: map[string]string{"indicator": quiet, "type": "IPv4"}},
		{name: "IPv6", path: otxPath("2001:db8::5"), header: key, status: 200, keys: general, fields: map[string]string{"type": "IPv6"}},
		{name: "rejected key", opts: Options{InvalidKeyMode: true}, path: otxPath(quiet), header: key, status: 403, keys: detail,
			fields: map[string]string{"detail": "Authentication required"}},
		{name: "no key", path: otxPath(quiet), status: 403, keys: detail},
		{name: "rate limited", opts: Options{Force429For: 30 * time.Second}, path: otxPath(quiet), header: key, status: 429, retry: true, keys: detail,
			fields: map[string]string{"detail": "Request was throttled. Expected available in 30 seconds."}},
		{name: "quota spent", opts: Options{DailyQuota: 1}, before: 1, path: otxPath(busy), header: key, status: 429, retry: true, keys: detail},
		{name: "server error", opts: Options{ErrorRate: 1}, path: otxPath(quiet), header: key, status: 500, keys: detail},
		{name: "IPv6 address on the IPv4 path", path: OTXIndicatorsPath + "IPv4/2001:db8::5/general", header: key, status: 400, keys: detail},
		{name: "not an address", path: OTXIndicatorsPath + "IPv4/nope/general", header: key, status: 400, keys: detail,
			fields: map[string]string{"detail": "Invalid IP address"}},
		{name: "another section", path: OTXIndicatorsPath + "IPv4/" + quiet + "/geo", header: key, status: 404, keys: detail,
			fields: map[string]string{"detail": "Not found."}},
		{name: "wrong method", method: http.MethodPost, path: otxPath(quiet), header: key, status: 405, keys: detail},
		{name: "users/me", path: OTXUserPath, header: key, status: 200, fields: map[string]string{"username": "threatpipe-sim"}},
	})

	// Pulses carry the documented fields; malware families are listed under related and per pulse.
	_, url := dtServe(t, OTX{}, Options{})
	_, _, body := dtGet(t, http.MethodGet, url+otxPath(busy), key)
	info := dtObject(t, body)["pulse_info"].(map[string]any)
	pulses := info["pulses"].([]any)
	if int(info["count"].(float64)) != len(pulses) || len(pulses) < 6 {
		t.Fatalf("count %v, %d pulses", info["count"], len(pulses))
	}
	for _, p := range pulses {
		for _, k := range []string{"id", "name", "tags", "malware_families", "attack_ids", "author", "TLP", "created", "modified", "indicator_count"} {
			if _, ok := p.(map[string]any)[k]; !ok {
				t.Fatalf("pulse without %s: %v", k, p)
			}
		}
	}
	families := info["related"].(map[string]any)["alienvault"].(map[string]any)["malware_families"].([]any)
	if len(families) == 0 || !slices.ContainsFunc(families, func(f any) bool { return f == "Mirai" || f == "Gafgyt" || f == "Mozi" }) {
		t.Fatalf("related malware families %v", families)
	}
	res, err := otxClient(t, url).Lookup(context.Background(), dtIndicator(busy))
	if err != nil || res.Verdict != enrich.VerdictMalicious {
		t.Fatalf("%+v %v", res, err)
	}
	if s, err := otxClient(t, url).CheckAccount(context.Background()); err != nil || s == "" {
		t.Fatalf("CheckAccount: %q %v", s, err)
	}
}
