package lists

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parseFile(t *testing.T, name, format string) parsed {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p, err := parse(bytes.NewReader(data), format, defaultLimits())
	if err != nil {
		t.Fatalf("%s as %s: %v", name, format, err)
	}
	return p
}

// match is the entry that covers ip, or "".
func match(p parsed, ip string) string {
	a := netip.MustParseAddr(ip).Unmap()
	pfx, ok := p.table.LookupPrefixLPM(netip.PrefixFrom(a, a.BitLen()))
	if !ok {
		return ""
	}
	return pfx.String()
}

func TestParseFixtures(t *testing.T) {
	for _, tc := range []struct {
		file, format, detected string
		entries, skipped       int
		hits                   map[string]string // address → matching entry; "" for a miss
	}{
		{"drop.txt", FormatSpamhaus, FormatSpamhaus, 4, 1, map[string]string{
			"192.0.2.5": "192.0.2.0/25", "192.0.2.200": "", "198.51.100.255": "198.51.100.0/24",
			"203.0.113.70": "203.0.113.64/26", "203.0.113.205": "203.0.113.200/29", "203.0.113.199": ""}},
		{"drop_v4.json", FormatSpamhaus, FormatSpamhaus, 4, 1, map[string]string{
			"192.0.2.127": "192.0.2.0/25", "192.0.2.128": "", "203.0.113.207": "203.0.113.200/29", "::ffff:198.51.100.1": "198.51.100.0/24"}},
		{"drop_v6.json", FormatSpamhaus, FormatSpamhaus, 2, 0, map[string]string{
			"2001:db8:1ff::1": "2001:db8:100::/40", "2001:db8:ab12::9": "2001:db8:ab00::/40", "2001:db8:200::1": "", "192.0.2.1": ""}},
		{"firehol_level1.netset", FormatNetset, FormatPlain, 5, 0, map[string]string{
			"192.0.2.99": "192.0.2.0/24", "198.51.100.7": "198.51.100.7/32", "198.51.100.12": "198.51.100.8/29",
			"198.51.100.6": "", "203.0.113.250": "203.0.113.250/32", "203.0.113.251": ""}},
		{"exit-addresses", FormatTorExit, FormatTorExit, 4, 1, map[string]string{
			"198.51.100.7": "198.51.100.7/32", "203.0.113.51": "203.0.113.51/32", "192.0.2.77": "192.0.2.77/32", "192.0.2.78": ""}},
		{"torbulkexitlist", FormatTorExit, FormatPlain, 5, 0, map[string]string{
			"203.0.113.50": "203.0.113.50/32", "2001:db8:7::1": "2001:db8:7::1/128", "2001:db8:7::2": ""}},
		{"misp_public_dns.json", FormatMISP, FormatMISP, 6, 3, map[string]string{
			"1.1.1.1": "1.1.1.0/24", "8.8.8.8": "8.8.8.8/32", "8.8.8.9": "", "9.9.9.9": "9.9.9.9/32",
			"2001:4860:4860::8888": "2001:4860:4860::8888/128", "2606:4700:4700::1111": "2606:4700:4700::/48"}},
		{"plain.txt", FormatPlain, FormatPlain, 6, 3, map[string]string{
			"192.0.2.1": "192.0.2.1/32", "192.0.2.200": "192.0.2.0/24", "198.51.100.3": "198.51.100.0/24",
			"2001:db8:1:2::3": "2001:db8:1::/48", "203.0.113.9": "203.0.113.9/32", "203.0.113.129": "203.0.113.128/25",
			"203.0.113.10": "", "fe80::1": ""}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			for _, format := range []string{tc.format, FormatAuto} {
				p := parseFile(t, tc.file, format)
				want := format
				if format == FormatAuto {
					want = tc.detected
				}
				if p.format != want || p.table.Size() != tc.entries || p.skipped != tc.skipped {
					t.Fatalf("as %s: format %s, %d entries, %d skipped; want %s, %d, %d",
						format, p.format, p.table.Size(), p.skipped, want, tc.entries, tc.skipped)
				}
				for ip, entry := range tc.hits {
					if got := match(p, ip); got != entry {
						t.Errorf("as %s: %s matches %q, want %q", format, ip, got, entry)
					}
				}
			}
		})
	}
}

func TestDetect(t *testing.T) {
	for in, want := range map[string]string{
		"":                                         FormatPlain,
		"# only comments\n; here\n":                FormatPlain,
		"\ufeff192.0.2.1\n":                        FormatPlain,
		"\n\n  2001:db8::1\n":                      FormatPlain,
		"; DROP\n192.0.2.0/24 ; SBL1\n":            FormatSpamhaus,
		`{"cidr":"192.0.2.0/24","sblid":"SBL1"}`:   FormatSpamhaus,
		`{"type":"metadata","records":0}`:          FormatSpamhaus,
		"{\n  \"list\": [\"192.0.2.1\"]\n}\n":      FormatMISP,
		`{"name":"x","list":["192.0.2.1"]}`:        FormatMISP,
		"ExitNode ABC\nPublished 2024-01-01\n":     FormatTorExit,
		"ExitAddress 192.0.2.1 2024-01-01 00:00\n": FormatTorExit,
		"ExitNodes are great\n":                    FormatPlain,
	} {
		if got := detect([]byte(in)); got != want {
			t.Errorf("detect(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParsePlainDetails(t *testing.T) {
	in := "\ufeff192.0.2.1\r\n192.0.2.9/30#comment\r\n 198.51.100.1 extra words\n::ffff:198.51.100.0/120\n::ffff:0:0/95\n#\n;\n\n01.2.3.4\n1.2.3.4 ; 5.6.7.8\n"
	p, err := parse(strings.NewReader(in), FormatPlain, defaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for pfx := range p.table.AllSorted() {
		got = append(got, pfx.String())
	}
	want := "1.2.3.4/32 192.0.2.1/32 192.0.2.8/30 198.51.100.0/24 ::fffe:0:0/95"
	if strings.Join(got, " ") != want {
		t.Fatalf("entries %v, want %s", got, want)
	}
	// "198.51.100.1 extra words" and "01.2.3.4" (a leading zero is ambiguous) are skipped.
	if p.skipped != 2 {
		t.Fatalf("skipped %d, want 2", p.skipped)
	}
}

func TestParseMISPErrors(t *testing.T) {
	for _, in := range []string{"{\n\"list\": [\"192.0.2.1\"", `{"name":"no list"}`, "{\n  broken"} {
		if _, err := parse(strings.NewReader(in), FormatMISP, defaultLimits()); err == nil || !strings.Contains(err.Error(), "MISP") {
			t.Errorf("%q: %v", in, err)
		}
	}
	// Entries that are not strings are skipped.
	p, err := parse(strings.NewReader(`{"list":["192.0.2.1", 7, null, {"a":1}, "  198.51.100.0/24 "]}`), FormatAuto, defaultLimits())
	if err != nil || p.table.Size() != 2 || p.skipped != 3 {
		t.Fatalf("%v: %d entries, %d skipped", err, p.table.Size(), p.skipped)
	}
}

func TestParseLimits(t *testing.T) {
	lim := limits{line: 64, file: 1024}
	long := "192.0.2.1 # " + strings.Repeat("x", 60) + "\n"
	for _, format := range []string{FormatAuto, FormatPlain, FormatSpamhaus, FormatTorExit} {
		if _, err := parse(strings.NewReader("192.0.2.1\n"+long), format, lim); err == nil || !strings.Contains(err.Error(), "line 2 is longer than 64 bytes") {
			t.Errorf("%s, long line: %v", format, err)
		}
	}
	// Exactly at the line limit, with \r\n, is fine.
	exact := "192.0.2.1 #" + strings.Repeat("x", 64-11) + "\r\n"
	if _, err := parse(strings.NewReader(exact+exact), FormatPlain, lim); err != nil {
		t.Errorf("line at the limit: %v", err)
	}
	big := strings.Repeat("192.0.2.1\n", 103) // 1030 bytes
	bigMISP := `{"list":["` + strings.Repeat("x", 1024) + `"]}`
	for format, in := range map[string]string{FormatAuto: big, FormatPlain: big, FormatTorExit: big, FormatMISP: bigMISP} {
		_, err := parse(strings.NewReader(in), format, lim)
		var tooLarge *tooLargeError
		if !errors.As(err, &tooLarge) {
			t.Errorf("%s, large file: %v", format, err)
		}
	}
	if _, err := parse(strings.NewReader(big[:1020]), FormatPlain, lim); err != nil {
		t.Errorf("file under the limit: %v", err)
	}
	// The real line limit.
	if _, err := parse(strings.NewReader(strings.Repeat("#", MaxLineBytes+1)), FormatPlain, defaultLimits()); err == nil {
		t.Error("a line over 4 KiB was accepted")
	}
}
