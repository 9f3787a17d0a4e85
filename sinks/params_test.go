package sinks

import (
	"strings"
	"testing"
)

func TestNoParams(t *testing.T) {
	for _, params := range []map[string]string{nil, {}} {
		if err := NoParams("edl", params); err != nil {
			t.Errorf("%v: %v", params, err)
		}
	}
	err := NoParams("edl", map[string]string{"zeta": "1", "alpha": "2", "mid": ""})
	if err == nil {
		t.Fatal("params accepted")
	}
	want := `edl: unknown param "alpha" (the sink takes none)` + "\n" +
		`edl: unknown param "mid" (the sink takes none)` + "\n" +
		`edl: unknown param "zeta" (the sink takes none)`
	if err.Error() != want {
		t.Fatalf("error\n%s\nwant\n%s", err, want)
	}
	// The order does not depend on map iteration.
	for range 20 {
		if got := NoParams("edl", map[string]string{"zeta": "1", "alpha": "2", "mid": ""}); got.Error() != want {
			t.Fatalf("unstable order: %v", got)
		}
	}
	if err := NoParams("kafka sink", map[string]string{"x": "y"}); err == nil || !strings.HasPrefix(err.Error(), "kafka sink: ") {
		t.Fatalf("prefix: %v", err)
	}
}
