package geoip

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/health"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// timeAfter gives each version of a file its own modification time.
func timeAfter(n int) time.Time { return time.Now().Add(time.Duration(n) * time.Second) }

func observed(t *testing.T, p *Provider) *observer.ObservedLogs {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	for _, d := range []*db{p.city, p.asn} {
		if d != nil {
			d.log = zap.New(core)
		}
	}
	return logs
}

func TestReloadOnChange(t *testing.T) {
	p, cfg := setup(t, cityDB(t), asnDB(t, "EXAMPLE-NET"))
	logs := observed(t, p)

	p.poll() // unchanged: nothing to do
	if logs.Len() != 0 {
		t.Fatalf("unchanged files logged %v", logs.All())
	}
	install(t, cfg.ASNDB, asnDB(t, "RENAMED-NET"), timeAfter(1))
	p.poll()
	if res := lookup(t, p, "192.0.2.1"); res.ASOrganization != "RENAMED-NET" || res.City != "Amsterdam" {
		t.Fatalf("after reload: %+v", res)
	}
	if n := logs.FilterMessage("GeoIP database reloaded").Len(); n != 1 {
		t.Fatalf("%d reload messages", n)
	}
}

func TestReloadInPlaceRewrite(t *testing.T) {
	// `cp new.mmdb ASN.mmdb` truncates and rewrites the file the source read: safe, because
	// the source holds its own copy (a memory map would fault here).
	p, cfg := setup(t, nil, asnDB(t, "EXAMPLE-NET"))
	if err := os.WriteFile(cfg.ASNDB, asnDB(t, "IN-PLACE"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(cfg.ASNDB, timeAfter(1), timeAfter(1)); err != nil {
		t.Fatal(err)
	}
	p.poll()
	if res := lookup(t, p, "192.0.2.1"); res.ASOrganization != "IN-PLACE" {
		t.Fatalf("%+v", res)
	}
}

func TestReloadFailureKeepsOldAndLogsOnce(t *testing.T) {
	p, cfg := setup(t, cityDB(t), asnDB(t, "EXAMPLE-NET"))
	logs := observed(t, p)

	install(t, cfg.ASNDB, []byte("half a download"), timeAfter(1))
	p.poll()
	p.poll()
	if res := lookup(t, p, "192.0.2.1"); res.ASOrganization != "EXAMPLE-NET" {
		t.Fatalf("broken file replaced the database: %+v", res)
	}
	if n := logs.FilterMessage("cannot load the changed GeoIP database; keeping the loaded version").Len(); n != 1 {
		t.Fatalf("%d failure messages, want 1: %v", n, logs.All())
	}
	asn := fileNamed(t, p, EnvPrefix+"ASN_DB")
	if !strings.Contains(asn.LastError, "is not a MaxMind database") || asn.Format != "GeoLite2-ASN" || asn.Kind != "asn" {
		t.Fatalf("health after a failed reload: %+v", asn)
	}
	if city := fileNamed(t, p, EnvPrefix+"CITY_DB"); city.LastError != "" || city.Kind != "city" || city.LoadedAt.IsZero() {
		t.Fatalf("the city database's health: %+v", city)
	}
	// The wrong type is a failure too.
	install(t, cfg.ASNDB, cityDB(t), timeAfter(2))
	p.poll()
	if res := lookup(t, p, "192.0.2.1"); res.ASOrganization != "EXAMPLE-NET" {
		t.Fatalf("wrong type replaced the database: %+v", res)
	}
	// A vanished file: logged once, the loaded version stays.
	if err := os.Remove(cfg.ASNDB); err != nil {
		t.Fatal(err)
	}
	p.poll()
	p.poll()
	if n := logs.FilterMessage("cannot read the GeoIP database; keeping the loaded version").Len(); n != 1 {
		t.Fatalf("%d missing-file messages, want 1", n)
	}
	// A good version after the failures is loaded.
	install(t, cfg.ASNDB, asnDB(t, "FIXED-NET"), timeAfter(3))
	p.poll()
	if res := lookup(t, p, "192.0.2.1"); res.ASOrganization != "FIXED-NET" {
		t.Fatalf("%+v", res)
	}
	if asn := fileNamed(t, p, EnvPrefix+"ASN_DB"); asn.LastError != "" || asn.BuiltAt.IsZero() {
		t.Fatalf("health after a good reload: %+v", asn)
	}
}

func fileNamed(t *testing.T, p *Provider, name string) health.File {
	t.Helper()
	for _, f := range p.Files() {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no file %s in %+v", name, p.Files())
	return health.File{}
}

func TestLookupsRaceReload(t *testing.T) {
	p, cfg := setup(t, cityDB(t), asnDB(t, "ORG-0"))
	versions := make([][]byte, 4)
	for i := range versions {
		versions[i] = asnDB(t, fmt.Sprintf("ORG-%d", i))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				res, err := p.Lookup(context.Background(), ind("192.0.2.1"))
				if err != nil || res.ASNumber != 64500 || len(res.ASOrganization) != 5 || res.City != "Amsterdam" {
					errs <- fmt.Errorf("%+v %v", res, err)
					return
				}
			}
		})
	}
	for i := range 40 {
		install(t, cfg.ASNDB, versions[i%len(versions)], timeAfter(i+1))
		p.poll()
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if res := lookup(t, p, "192.0.2.1"); res.ASOrganization != "ORG-3" {
		t.Fatalf("last version not loaded: %+v", res)
	}
}

func TestRun(t *testing.T) {
	p, cfg := setup(t, nil, asnDB(t, "EXAMPLE-NET"))
	p.interval = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	install(t, cfg.ASNDB, asnDB(t, "RUN-NET"), timeAfter(1))
	deadline := time.Now().Add(5 * time.Second)
	for lookup(t, p, "192.0.2.1").ASOrganization != "RUN-NET" {
		if time.Now().After(deadline) {
			t.Fatal("Run did not reload the changed file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
}
