package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
	"github.com/threatpipe/threatpipe/view"
)

// TestExport exports a real store (on the test Redis) as a STIX bundle and as CSV.
func TestExport(t *testing.T) {
	addr := pipelinetest.Redis(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	prefix := pipelinetest.Name(t, "tp")
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+":*").Result()
		if len(keys) > 0 {
			rdb.Del(context.Background(), keys...)
		}
		_ = rdb.Close()
	})
	store := view.NewStore(rdb, prefix, view.StoreOptions{})
	base := time.Now().UTC().Add(-time.Hour)
	for i, score := range []int{95, 70, 50, 30, 10, 90} {
		ind, _ := event.ParseIP(fmt.Sprintf("198.51.100.%d", i+1))
		ev := &event.Scored{EventID: fmt.Sprint(i), ObservedAt: base.Add(time.Duration(i) * time.Minute), Indicator: ind,
			Score: score, Severity: event.SeverityOf(score), Reasons: []event.Reason{{Source: "criminalip", Detail: "d", Points: score}}}
		if _, err := store.ApplyScored(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	environ := []string{"THREATPIPE_REDIS_ADDR=" + addr, "THREATPIPE_REDIS_KEY_PREFIX=" + prefix}
	export := func(args ...string) []byte {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), &environment{environ: environ, stdout: &stdout, stderr: &stderr}, append([]string{"export"}, args...)); code != 0 {
			t.Fatalf("export %v: exit %d: %s", args, code, stderr.String())
		}
		return stdout.Bytes()
	}
	var bundle struct {
		Type    string `json:"type"`
		Objects []struct {
			Type string `json:"type"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(export(), &bundle); err != nil || bundle.Type != "bundle" || len(bundle.Objects) != 1+5*3 {
		t.Fatalf("bundle %+v %v", bundle, err)
	}
	out := filepath.Join(t.TempDir(), "crit.csv")
	export("--format", "csv", "--severity", "critical", "--since", base.Add(30*time.Second).Format(time.RFC3339Nano), "--out", out)
	raw, _ := os.ReadFile(out)
	rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][0] != "198.51.100.6" || rows[1][3] != "critical" {
		t.Fatalf("csv %q %v", rows, err)
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), &environment{environ: environ, stdout: &stderr, stderr: &stderr}, []string{"export", "--severity", "info"}); code != 1 {
		t.Fatalf("--severity info: exit %d", code)
	}
}
