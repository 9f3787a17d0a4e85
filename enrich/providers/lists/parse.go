package lists

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/gaissmai/bart"
)

// List file formats.
const (
	FormatAuto     = "auto"   // detect from the content (the default)
	FormatPlain    = "plain"  // one address or CIDR a line, # and ; comments
	FormatNetset   = "netset" // FireHOL .netset/.ipset: plain with a # header
	FormatSpamhaus = "spamhaus_drop"
	FormatTorExit  = "tor_exit"
	FormatMISP     = "misp_warninglist"
)

// Limits on what a list file may weigh. A longer line or a larger file fails the load (an
// old version stays in use on reload): such a file is not a list, and reading it unbounded is
// how a bad download becomes an outage.
const (
	MaxLineBytes = 4 << 10
	MaxFileBytes = 64 << 20
)

// limits are the bounds one parse applies (tests and the fuzzer use smaller ones).
type limits struct {
	line int
	file int64
}

func defaultLimits() limits { return limits{line: MaxLineBytes, file: MaxFileBytes} }

// detectBytes is how much of a file auto detection reads ahead.
const detectBytes = 64 << 10

// parsed is one version of a list.
type parsed struct {
	table   *bart.Lite
	format  string // the format read: auto resolved to what it detected
	skipped int    // entries that are not an address or CIDR
}

const bom = "\ufeff"

// parse reads a list in format (FormatAuto detects it). Lines or entries that are not an
// address or CIDR are counted in skipped, never fatal; host bits are masked and IPv4-mapped
// IPv6 entries stored as IPv4, the form lookups use. It fails on a line or file over lim and
// on a MISP document that is not JSON.
func parse(r io.Reader, format string, lim limits) (parsed, error) {
	br := bufio.NewReaderSize(&capReader{r: r, left: lim.file, limit: lim.file}, detectBytes)
	if format == FormatAuto {
		head, _ := br.Peek(detectBytes) // a read error resurfaces below
		format = detect(head)
	}
	p := parsed{table: new(bart.Lite), format: format}
	if format == FormatMISP {
		return p, p.misp(br)
	}
	each := (*parsed).plainLine
	switch format {
	case FormatSpamhaus:
		each = (*parsed).spamhausLine
	case FormatTorExit:
		each = (*parsed).torLine
	}
	return p, p.lines(br, lim.line, each)
}

// detect names the format of a file that starts with head, from its first line that is not
// blank or a comment: a JSON object with a "list" member, or a JSON document spread over
// lines, is a MISP warninglist; any other JSON object is a line of Spamhaus DROP's NDJSON;
// "ExitNode" or "ExitAddress" starts Tor's exit-addresses; "; SBL" marks DROP's text form.
// Everything else is plain (which also reads FireHOL netsets, DROP's text form and Tor's bulk
// exit list: they are all one address or CIDR a line with comments).
func detect(head []byte) string {
	head = bytes.TrimPrefix(head, []byte(bom))
	for len(head) > 0 {
		var line []byte
		line, head, _ = bytes.Cut(head, []byte("\n"))
		s := bytes.TrimSpace(line)
		switch {
		case len(s) == 0 || s[0] == '#' || s[0] == ';':
			continue
		case s[0] == '{':
			var probe struct {
				List json.RawMessage `json:"list"`
			}
			if json.Unmarshal(s, &probe) == nil && probe.List == nil {
				return FormatSpamhaus
			}
			return FormatMISP
		case bytes.HasPrefix(s, []byte("ExitNode ")) || bytes.HasPrefix(s, []byte("ExitAddress ")):
			return FormatTorExit
		case bytes.Contains(s, []byte("; SBL")):
			return FormatSpamhaus
		}
		return FormatPlain
	}
	return FormatPlain
}

// lines feeds every line to each through a scanner bounded to the line limit.
func (p *parsed) lines(r io.Reader, maxLine int, each func(*parsed, string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxLine+2), maxLine+2) // +2: the line end, \r\n at most
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(line) > maxLine {
			return fmt.Errorf("line %d is longer than %d bytes", n, maxLine)
		}
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte(bom))
		}
		each(p, string(line))
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return fmt.Errorf("line %d is longer than %d bytes", n+1, maxLine)
	}
	return sc.Err()
}

// plainLine reads "198.51.100.0/24", "192.0.2.1 # comment" or "1.10.16.0/20 ; SBL256894".
func (p *parsed) plainLine(line string) {
	if i := strings.IndexAny(line, "#;"); i >= 0 {
		line = line[:i]
	}
	if line = strings.TrimSpace(line); line != "" {
		p.add(line)
	}
}

// spamhausLine reads DROP's NDJSON ({"cidr":"1.10.16.0/20","sblid":"SBL256894","rir":"apnic"},
// ending with a {"type":"metadata",...} line) and its older text form.
func (p *parsed) spamhausLine(line string) {
	s := strings.TrimSpace(line)
	if !strings.HasPrefix(s, "{") {
		p.plainLine(line)
		return
	}
	var rec struct {
		CIDR string `json:"cidr"`
		Type string `json:"type"`
	}
	switch err := json.Unmarshal([]byte(s), &rec); {
	case err == nil && rec.Type == "metadata":
	case err == nil && rec.CIDR != "":
		p.add(strings.TrimSpace(rec.CIDR))
	default:
		p.skipped++
	}
}

// torLine reads check.torproject.org's exit-addresses (ExitNode, Published, LastStatus and
// ExitAddress 192.0.2.7 2024-01-01 00:00:00 lines) and the bulk exit list (one address a line).
func (p *parsed) torLine(line string) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return
	}
	switch f[0] {
	case "ExitNode", "Published", "LastStatus":
	case "ExitAddress":
		if len(f) < 2 {
			p.skipped++
			return
		}
		p.add(f[1])
	default:
		p.plainLine(line)
	}
}

// misp reads a MISP warninglist: {"name":…,"type":"cidr",…,"list":["192.0.2.0/24",…]}. Entries
// that are not an address or CIDR (hostnames in a "string" list, say) are skipped.
func (p *parsed) misp(r io.Reader) error {
	var doc struct {
		List []json.RawMessage `json:"list"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		var tooLarge *tooLargeError
		if errors.As(err, &tooLarge) {
			return tooLarge
		}
		return fmt.Errorf("not a MISP warninglist: %w", err)
	}
	if doc.List == nil {
		return errors.New(`not a MISP warninglist: no "list" array`)
	}
	for _, raw := range doc.List {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			p.skipped++
			continue
		}
		p.add(strings.TrimSpace(s))
	}
	return nil
}

func (p *parsed) add(entry string) {
	if pfx, ok := parseEntry(entry); ok {
		p.table.Insert(pfx)
	} else {
		p.skipped++
	}
}

// parseEntry reads an address or a CIDR, masking host bits; IPv4-mapped IPv6 becomes IPv4.
func parseEntry(s string) (netip.Prefix, bool) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, false
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
		pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
	}
	return pfx.Masked(), true
}

// capReader fails, rather than stopping short, when its reader has more than limit bytes: a
// truncated read would silently load part of a list.
type capReader struct {
	r           io.Reader
	left, limit int64
}

type tooLargeError struct{ limit int64 }

func (e *tooLargeError) Error() string { return fmt.Sprintf("file is larger than %d bytes", e.limit) }

func (c *capReader) Read(b []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		if n, err := c.r.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, &tooLargeError{c.limit}
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.r.Read(b)
	c.left -= int64(n)
	return n, err
}
