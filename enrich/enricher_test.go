package enrich

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/event"
)

func scoredFor(t *testing.T, value string) *event.Scored {
	t.Helper()
	return event.NewScored(&event.Input{EventID: "e"}, event.Sighting{Indicator: ip(value)}, event.Origin{}, time.Now())
}

func TestFuse(t *testing.T) {
	ev := scoredFor(t, "8.8.8.8")
	ev.Providers = map[string]*event.ProviderOutcome{
		"a": {Status: event.StatusOK, Cache: &event.CacheInfo{Hit: true, AgeSeconds: 30}, Result: &event.Intel{
			Verdict: event.VerdictMalicious, Score: 85, Detail: "a says bad", Tags: []string{"tor", "scanner"},
			ASNumber: 64500, ASOrganization: "EXAMPLE-AS", CountryISO: "DE", City: "Frankfurt", ISP: "Example GmbH",
			Location: &event.Geo{Lat: 50.1, Lon: 8.6}}},
		"b": {Status: event.StatusOK, Result: &event.Intel{Verdict: event.VerdictSuspicious, Score: 40, Detail: "b says meh",
			Tags: []string{"scanner", "vpn"}, ASNumber: 1, CountryISO: "US"}},
		"c": {Status: event.StatusNotFound, Result: &event.Intel{Verdict: event.VerdictNotFound}},
		"d": {Status: event.StatusQuotaExhausted, Error: "spent"},
	}
	Fuse(ev, []string{"a", "b", "c", "d"})
	if ev.Score != 85 || ev.Severity != event.SeverityCritical {
		t.Errorf("score %d severity %s, want the highest provider score 85 (critical)", ev.Score, ev.Severity)
	}
	if got := strings.Join(ev.Tags, ","); got != "scanner,tor,vpn" {
		t.Errorf("tags %q", got)
	}
	if len(ev.Reasons) != 4 || ev.Reasons[0] != (event.Reason{Source: "a", Detail: "a says bad (cached 30s ago)", Points: 85}) ||
		ev.Reasons[2].Detail != "no record of this address" || ev.Reasons[3].Detail != "not consulted: quota_exhausted" {
		t.Errorf("reasons %+v", ev.Reasons)
	}
	if ev.AS == nil || ev.AS.Number != 64500 || ev.AS.Organization.Name != "EXAMPLE-AS" || ev.Geo.CountryISOCode != "DE" ||
		ev.Geo.Location.Lat != 50.1 || ev.ISP != "Example GmbH" {
		t.Errorf("context from the first provider: as %+v geo %+v isp %q", ev.AS, ev.Geo, ev.ISP)
	}

	quiet := scoredFor(t, "9.9.9.9")
	quiet.Providers = map[string]*event.ProviderOutcome{"a": {Status: event.StatusFailed, Error: "503"}}
	Fuse(quiet, []string{"a"})
	if quiet.Score != 0 || quiet.Severity != event.SeverityInfo || quiet.AS != nil || len(quiet.Tags) != 0 {
		t.Errorf("a failed provider must add nothing: %+v", quiet)
	}
}

func TestEnricherProcessesAndCountsGated(t *testing.T) {
	r := newRig(t)
	a := &fakeProvider{name: providerName(t) + "a"}
	b := &fakeProvider{name: providerName(t) + "b", answer: func(int64, event.Indicator) (*event.Intel, error) {
		return &event.Intel{Verdict: event.VerdictBenign, Score: 10, Detail: "fine", CountryISO: "NL"}, nil
	}}
	e := NewEnricher([]*Lookuper{r.lookuper(t, a, testPolicy(), "x"), r.lookuper(t, b, testPolicy(), "x")}, r.metrics)
	ev := scoredFor(t, "185.220.101.4")
	if err := e.Process(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if ev.Score != 85 || len(ev.Providers) != 2 || ev.Providers[b.name].Result.CountryISO != "NL" || ev.Geo.CountryISOCode != "NL" {
		t.Fatalf("scored %+v", ev)
	}
	e.Gated()
	if g := testutil.ToFloat64(r.metrics.Saved.WithLabelValues(a.name, "gated")); g != 1 {
		t.Errorf("gated savings %v", g)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Process(ctx, scoredFor(t, "185.220.101.5")); err == nil {
		t.Error("a cancelled context must be returned so the engine leaves the event uncommitted")
	}
}

type testConfig struct {
	Key string `env:"API_KEY" desc:"key"`
	Policy
}

func (c *testConfig) Resolve() error   { return nil }
func (c *testConfig) Configured() bool { return c.Key != "" }

func TestRegistryLoadsConfiguredProvidersOnly(t *testing.T) {
	reg := Register[testConfig]("demo", func(c *testConfig, _ Deps) (Provider, error) {
		return &fakeProvider{name: "demo:" + c.Key}, nil
	}, Defaults{"RATE_LIMIT": "0.5", "QUOTA_PERIOD": "month"})
	if reg.Prefix != config.Prefix+"DEMO_" {
		t.Fatalf("prefix %q", reg.Prefix)
	}
	names := map[string]bool{}
	for _, v := range reg.Vars() {
		names[v.Name] = true
	}
	for _, want := range []string{"THREATPIPE_DEMO_API_KEY", "THREATPIPE_DEMO_RATE_LIMIT", "THREATPIPE_DEMO_QUOTA", "THREATPIPE_DEMO_TTL_BENIGN"} {
		if !names[want] {
			t.Errorf("Vars lacks %s (have %v)", want, names)
		}
	}
	got, err := Load([]Registration{reg}, nil, Deps{})
	if err != nil || len(got) != 0 {
		t.Fatalf("without a key the provider must be off: %v %v", got, err)
	}
	got, err = Load([]Registration{reg}, []string{"THREATPIPE_DEMO_API_KEY=k", "THREATPIPE_DEMO_QUOTA=100"}, Deps{})
	if err != nil || len(got) != 1 || got[0].Provider.Name() != "demo:k" || got[0].Policy.Quota != 100 || got[0].Policy.TTLBenign != 24*time.Hour {
		t.Fatalf("configured: %+v %v", got, err)
	}
	// The provider's own defaults apply where the variable is unset, and are documented.
	if p := got[0].Policy; p.RateLimit != 0.5 || p.QuotaPeriod != PeriodMonth {
		t.Errorf("provider defaults not applied: rate %v period %q", p.RateLimit, p.QuotaPeriod)
	}
	for _, v := range reg.Vars() {
		if v.Name == "THREATPIPE_DEMO_RATE_LIMIT" && v.Default != "0.5" {
			t.Errorf("documented default of %s = %q, want the provider's 0.5", v.Name, v.Default)
		}
	}
	got, err = Load([]Registration{reg}, []string{"THREATPIPE_DEMO_API_KEY=k", "THREATPIPE_DEMO_RATE_LIMIT=2"}, Deps{})
	if err != nil || got[0].Policy.RateLimit != 2 {
		t.Errorf("a set variable must win over the provider default: %v %v", got, err)
	}
	if got, _ := Load([]Registration{reg}, []string{"THREATPIPE_DEMO_API_KEY=k", "THREATPIPE_DEMO_ENABLED=false"}, Deps{}); len(got) != 0 {
		t.Error("ENABLED=false must switch the provider off")
	}
	for bad, want := range map[string]string{
		"THREATPIPE_DEMO_RATE_LIMIT=0":         "THREATPIPE_DEMO_RATE_LIMIT",
		"THREATPIPE_DEMO_QUOTA_WARN_RATIO=1.5": "THREATPIPE_DEMO_QUOTA_WARN_RATIO",
		"THREATPIPE_DEMO_QUOTA=-1":             "THREATPIPE_DEMO_QUOTA",
		"THREATPIPE_DEMO_QUOTA_PERIOD=week":    "THREATPIPE_DEMO_QUOTA_PERIOD",
		"THREATPIPE_DEMO_DAILY_QUOTA=100":      "THREATPIPE_DEMO_QUOTA (with",
		"THREATPIPE_DEMO_TTL_BENIGN=0s":        "THREATPIPE_DEMO_TTL_",
	} {
		if _, err := Load([]Registration{reg}, []string{"THREATPIPE_DEMO_API_KEY=k", bad}, Deps{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v should name %s", bad, err, want)
		}
	}
}
