package enrich

import (
	"context"
	"slices"
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

func TestEnricherProcessesAndCountsGated(t *testing.T) {
	r := newRig(t)
	a := &fakeProvider{name: providerName(t) + "a"}
	b := &fakeProvider{name: providerName(t) + "b", answer: func(int64, event.Indicator) (*event.Intel, error) {
		return &event.Intel{Verdict: event.VerdictBenign, Score: 10, Detail: "fine", CountryISO: "NL"}, nil
	}}
	e := NewEnricher(OneStage(r.lookuper(t, a, testPolicy(), "x"), r.lookuper(t, b, testPolicy(), "x")), nil, r.metrics)
	ev := scoredFor(t, "185.220.101.4")
	if err := e.Process(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	// 85 (weight 0.7) against a benign 10 (0.7 x 0.5): (59.5 + 3.5) / 1.05 = 60, plus tor's 10.
	if ev.Score != 70 || len(ev.Providers) != 2 || ev.Providers[b.name].Result.CountryISO != "NL" || ev.Geo.CountryISOCode != "NL" ||
		!slices.Equal(ev.ValidatedBy, []string{a.name}) || ev.Confidence == 0 {
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
