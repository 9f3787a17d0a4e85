package view

import (
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/health"
)

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{GroupID: "threatpipe-view", Retention: 168 * time.Hour, History: 100, Refresh: 5 * time.Second, DedupEvents: 1000,
		ScanLimit: 10000, SweepInterval: time.Minute, HealthMaxAge: 15 * time.Second, Workers: 32, MaxInFlight: 1024,
		MaxIndicators: DefaultMaxIndicators, Gated: GatedCount}
	if *c != want {
		t.Errorf("defaults %+v, want %+v", *c, want)
	}
	o := c.StoreOptions()
	if o.Retention != want.Retention || o.History != 100 || o.ScanLimit != 10000 || o.DedupEvents != 1000 || o.HealthMaxAge != health.ReportTTL ||
		o.MaxIndicators != 50000 || o.Gated != GatedCount {
		t.Errorf("store options %+v", o)
	}
	for _, v := range Vars() {
		if !strings.HasPrefix(v.Name, "THREATPIPE_VIEW_") || v.Description == "" || v.Default == "" {
			t.Errorf("variable %+v lacks a prefix, default or description", v)
		}
	}
	if len(Vars()) != 12 {
		t.Errorf("%d variables", len(Vars()))
	}
}

func TestLoadConfigErrorsNameTheVariable(t *testing.T) {
	for env, name := range map[string]string{
		"THREATPIPE_VIEW_RETENTION=soon":    "THREATPIPE_VIEW_RETENTION",
		"THREATPIPE_VIEW_RETENTION=10s":     "THREATPIPE_VIEW_RETENTION",
		"THREATPIPE_VIEW_HISTORY=0":         "THREATPIPE_VIEW_HISTORY",
		"THREATPIPE_VIEW_HISTORY=many":      "THREATPIPE_VIEW_HISTORY",
		"THREATPIPE_VIEW_REFRESH=100ms":     "THREATPIPE_VIEW_REFRESH",
		"THREATPIPE_VIEW_GROUP_ID= ":        "THREATPIPE_VIEW_GROUP_ID",
		"THREATPIPE_VIEW_DEDUP_EVENTS=0":    "THREATPIPE_VIEW_DEDUP_EVENTS",
		"THREATPIPE_VIEW_SCAN_LIMIT=10":     "THREATPIPE_VIEW_SCAN_LIMIT",
		"THREATPIPE_VIEW_SWEEP_INTERVAL=0s": "THREATPIPE_VIEW_SWEEP_INTERVAL",
		"THREATPIPE_VIEW_HEALTH_MAX_AGE=0s": "THREATPIPE_VIEW_HEALTH_MAX_AGE",
		"THREATPIPE_VIEW_WORKERS=0":         "THREATPIPE_VIEW_WORKERS",
		"THREATPIPE_VIEW_MAX_IN_FLIGHT=1":   "THREATPIPE_VIEW_MAX_IN_FLIGHT",
		"THREATPIPE_VIEW_MAX_INDICATORS=10": "THREATPIPE_VIEW_MAX_INDICATORS",
		"THREATPIPE_VIEW_MAX_INDICATORS=x":  "THREATPIPE_VIEW_MAX_INDICATORS",
		"THREATPIPE_VIEW_GATED=drop":        "THREATPIPE_VIEW_GATED",
	} {
		_, err := LoadConfig([]string{env})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want an error naming %s", env, err, name)
		}
	}
	c, err := LoadConfig([]string{"THREATPIPE_VIEW_RETENTION=24h", "THREATPIPE_VIEW_GROUP_ID=soc-view", "OTHER=x"})
	if err != nil || c.Retention != 24*time.Hour || c.GroupID != "soc-view" {
		t.Errorf("%+v %v", c, err)
	}
}
