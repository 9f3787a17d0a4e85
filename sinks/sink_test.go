package sinks

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/neverblock"
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

func TestBlockable(t *testing.T) {
	never := neverblock.New([]netip.Prefix{netip.MustParsePrefix("45.155.205.0/24")}, nil)
	for _, tt := range []struct {
		list    *neverblock.List
		target  string
		want    netip.Addr
		wantErr string
		never   bool // the error matches ErrNeverBlock
	}{
		{list: never, target: "185.220.101.1", want: netip.MustParseAddr("185.220.101.1")},
		{list: never, target: "::ffff:185.220.101.1", want: netip.MustParseAddr("185.220.101.1")},
		{list: never, target: "64:ff9b::b9dc:6501", want: netip.MustParseAddr("64:ff9b::b9dc:6501")},
		{list: never, target: "not-an-ip", wantErr: `edl: target "not-an-ip" is not an IP address`},
		{list: never, target: "fe80::1%eth0", wantErr: `edl: target "fe80::1%eth0" has an IPv6 zone`},
		{list: never, target: "10.0.0.1", wantErr: "edl: refusing to list 10.0.0.1: it is never blocked (private 10.0.0.0/8)", never: true},
		{list: never, target: "::ffff:127.0.0.1", wantErr: "edl: refusing to list 127.0.0.1: it is never blocked (loopback 127.0.0.0/8)", never: true},
		{list: never, target: "45.155.205.233", wantErr: "edl: refusing to list 45.155.205.233: it is never blocked (own_range 45.155.205.0/24)", never: true},
		{list: never, target: "64:ff9b::a00:1", wantErr: "edl: refusing to list 64:ff9b::a00:1: it is never blocked (private 10.0.0.0/8: embeds 10.0.0.1 (nat64))", never: true},
		{list: never, target: "2002:2d9b:cde9::1", wantErr: "embeds 45.155.205.233 (6to4)", never: true},
		// Without a list, the built-in ranges still hold; the operator's do not.
		{target: "2002:a00:1::1", wantErr: "embeds 10.0.0.1 (6to4)", never: true},
		{target: "45.155.205.233", want: netip.MustParseAddr("45.155.205.233")},
	} {
		got, err := Blockable(tt.list, "edl", "list", tt.target)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || got.IsValid() || errors.Is(err, ErrNeverBlock) != tt.never {
				t.Errorf("Blockable(%q) = %v, %v; want error %q (never-block %v)", tt.target, got, err, tt.wantErr, tt.never)
			}
		case err != nil || got != tt.want:
			t.Errorf("Blockable(%q) = %v, %v; want %v", tt.target, got, err, tt.want)
		}
	}
}
