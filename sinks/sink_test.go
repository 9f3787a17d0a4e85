package sinks

import (
	"net/netip"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

func TestSeverityLabel(t *testing.T) {
	for _, tt := range []struct {
		in   event.Severity
		want string
	}{
		{"", "unknown"},
		{event.SeverityCritical, "critical"},
		{event.SeverityInfo, "info"},
		{"odd", "odd"},
	} {
		if got := (&Action{Severity: tt.in}).SeverityLabel(); got != tt.want {
			t.Errorf("SeverityLabel of %q = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStepLabel(t *testing.T) {
	for _, tt := range []struct {
		playbook, step, want string
	}{
		{"", "", ""},
		{"pb", "", "pb"},
		{"", "ticket", "ticket"},
		{"pb", "ticket", "pb / ticket"},
	} {
		if got := (&Action{Playbook: tt.playbook, Step: tt.step}).StepLabel(); got != tt.want {
			t.Errorf("StepLabel of %q, %q = %q, want %q", tt.playbook, tt.step, got, tt.want)
		}
	}
}

func TestSeenAt(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	observed := now.Add(-time.Hour)
	processed := now.Add(-time.Minute)
	for _, tt := range []struct {
		name string
		ev   *event.Scored
		want time.Time
	}{
		{"no event", nil, now},
		{"no times", &event.Scored{}, now},
		{"processed only", &event.Scored{ProcessedAt: processed}, processed},
		{"observed first", &event.Scored{ObservedAt: observed, ProcessedAt: processed}, observed},
	} {
		if got := (&Action{Event: tt.ev}).SeenAt(now); !got.Equal(tt.want) {
			t.Errorf("%s: SeenAt = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestUntilOr(t *testing.T) {
	def := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	until := def.Add(-time.Hour)
	if got := (&Action{}).UntilOr(def); !got.Equal(def) {
		t.Errorf("no Until: %v, want the default %v", got, def)
	}
	if got := (&Action{Until: until}).UntilOr(def); !got.Equal(until) {
		t.Errorf("Until set: %v, want %v", got, until)
	}
}

func TestBlockTarget(t *testing.T) {
	long := "x"
	for len(long) < 100 {
		long += long
	}
	for _, tt := range []struct {
		target  string
		want    netip.Addr
		wantErr string
	}{
		{target: "203.0.113.7", want: netip.MustParseAddr("203.0.113.7")},
		{target: "2001:db8::1", want: netip.MustParseAddr("2001:db8::1")},
		{target: "::ffff:203.0.113.7", want: netip.MustParseAddr("203.0.113.7")},
		{target: "", wantErr: `edl: target "" is not an IP address`},
		{target: "203.0.113.7/32", wantErr: `edl: target "203.0.113.7/32" is not an IP address`},
		{target: long, wantErr: `edl: target "` + long[:80] + `..." is not an IP address`},
		{target: "fe80::1%eth0", wantErr: `edl: target "fe80::1%eth0" has an IPv6 zone`},
		{target: "0.0.0.0", wantErr: "edl: refusing to list 0.0.0.0 (unspecified, loopback or multicast)"},
		{target: "::", wantErr: "edl: refusing to list :: (unspecified, loopback or multicast)"},
		{target: "127.0.0.2", wantErr: "edl: refusing to list 127.0.0.2 (unspecified, loopback or multicast)"},
		{target: "::ffff:127.0.0.1", wantErr: "edl: refusing to list 127.0.0.1 (unspecified, loopback or multicast)"},
		{target: "ff02::1", wantErr: "edl: refusing to list ff02::1 (unspecified, loopback or multicast)"},
		{target: "224.0.0.1", wantErr: "edl: refusing to list 224.0.0.1 (unspecified, loopback or multicast)"},
	} {
		got, err := BlockTarget("edl", "list", tt.target)
		switch {
		case tt.wantErr != "":
			if err == nil || err.Error() != tt.wantErr || got.IsValid() {
				t.Errorf("BlockTarget(%q) = %v, %v; want error %q", tt.target, got, err, tt.wantErr)
			}
		case err != nil || got != tt.want:
			t.Errorf("BlockTarget(%q) = %v, %v; want %v", tt.target, got, err, tt.want)
		}
	}
}
