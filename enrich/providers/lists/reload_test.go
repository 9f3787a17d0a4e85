package lists

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// reloadable is a source over one plain list in a temporary file, with a clock and observed
// logs.
func reloadable(t *testing.T, content string, lim limits) (*Source, string, *time.Time, *observer.ObservedLogs) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "list.txt")
	writeList(t, path, content, epoch)
	now := epoch
	core, logs := observer.New(zapcore.InfoLevel)
	s, err := newSource([]Def{{Name: "drop", Path: path, Kind: event.ListBlock}},
		Options{Log: zap.New(core), Now: func() time.Time { return now }}, lim)
	if err != nil {
		t.Fatal(err)
	}
	return s, path, &now, logs
}

func TestReloadOnChange(t *testing.T) {
	s, path, now, logs := reloadable(t, "192.0.2.0/24\n", defaultLimits())
	s.poll() // unchanged
	if logs.Len() != 0 {
		t.Fatalf("unchanged file logged %v", logs.All())
	}
	*now = epoch.Add(time.Hour)
	writeList(t, path, "198.51.100.0/24\nbogus\n", epoch.Add(time.Minute))
	s.poll()
	if lookup(t, s, "192.0.2.1").Verdict != event.VerdictNotFound || lookup(t, s, "198.51.100.1").Verdict != event.VerdictMalicious {
		t.Fatal("the new version was not swapped in")
	}
	st := s.Files()[0]
	if st.Entries != 1 || st.Skipped != 1 || !st.LoadedAt.Equal(epoch.Add(time.Hour)) || st.LastError != "" {
		t.Fatalf("%+v", st)
	}
	if logs.FilterMessage("list reloaded").Len() != 1 {
		t.Fatalf("%v", logs.All())
	}
}

func TestReloadFailureKeepsOld(t *testing.T) {
	s, path, _, logs := reloadable(t, "192.0.2.0/24\n", limits{line: 64, file: 1024})
	failures := func() int {
		return logs.FilterMessage("cannot load the changed list; keeping the loaded version").Len()
	}
	still := func(step string) {
		t.Helper()
		if lookup(t, s, "192.0.2.1").Verdict != event.VerdictMalicious {
			t.Fatalf("%s: the loaded version was dropped", step)
		}
	}

	writeList(t, path, "192.0.2.1\n"+strings.Repeat("x", 100)+"\n", epoch.Add(1*time.Minute))
	s.poll()
	s.poll()
	still("long line")
	if st := s.Files()[0]; !strings.Contains(st.LastError, "line 2 is longer than 64 bytes") || st.Entries != 1 || !st.LoadedAt.Equal(epoch) {
		t.Fatalf("%+v", st)
	}
	if failures() != 1 {
		t.Fatalf("%d failure logs, want 1", failures())
	}

	writeList(t, path, strings.Repeat("192.0.2.1\n", 200), epoch.Add(2*time.Minute))
	s.poll()
	still("large file")
	if st := s.Files()[0]; !strings.Contains(st.LastError, "larger than 1024 bytes") || !strings.Contains(st.LastError, `list "drop"`) {
		t.Fatalf("%+v", st)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s.poll()
	s.poll()
	still("missing file")
	if failures() != 3 {
		t.Fatalf("%d failure logs, want 3 (one per change)", failures())
	}

	writeList(t, path, "203.0.113.0/24\n", epoch.Add(3*time.Minute))
	s.poll()
	if st := s.Files()[0]; st.LastError != "" || lookup(t, s, "203.0.113.1").Verdict != event.VerdictMalicious {
		t.Fatalf("fixed file not loaded: %+v", st)
	}
}

func TestLookupsRaceReload(t *testing.T) {
	s, path, _, _ := reloadable(t, "192.0.2.0/24\n198.51.100.0/24\n", defaultLimits())
	versions := []string{"192.0.2.0/24\n198.51.100.0/24\n", "192.0.2.0/25\n198.51.100.0/24\n2001:db8::/32\n"}
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				res, err := s.Lookup(context.Background(), ind("192.0.2.1"))
				if err != nil || res.Verdict != event.VerdictMalicious || len(res.Lists) != 1 {
					errs <- fmt.Errorf("%+v %v", res, err)
					return
				}
				_ = s.Files()
			}
		})
	}
	for i := range 60 {
		writeList(t, path, versions[i%2], epoch.Add(time.Duration(i+1)*time.Second))
		s.poll()
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if res := lookup(t, s, "2001:db8::1"); res.Verdict != event.VerdictMalicious {
		t.Fatalf("last version not loaded: %+v", res)
	}
}

func TestRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tor.txt")
	writeList(t, path, "192.0.2.1\n", epoch)
	s, err := New([]Def{{Name: "tor", Path: path, Kind: event.ListTag}}, Options{ReloadInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	writeList(t, path, "192.0.2.1\n192.0.2.2\n", epoch.Add(time.Minute))
	deadline := time.Now().Add(5 * time.Second)
	for lookup(t, s, "192.0.2.2").Verdict != event.VerdictUnrated {
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
