package taxii

import (
	"testing"
)

// FuzzParseQuery: any query string either is refused or yields bounded filters, and a cursor
// it accepts survives a round trip and names a canonical address.
func FuzzParseQuery(f *testing.F) {
	next := Cursor{AddedMS: 1773478800000, IP: "2001:db8::7", Skip: 2}.String()
	for _, seed := range []string{
		"", "limit=10", "limit=0", "limit=-3", "limit=99999999999999999999", "added_after=2026-03-14T09:00:00.123456Z",
		"added_after=yesterday", "next=" + next, "next=Yz", "next=" + Cursor{IP: "10.0.0.1"}.String() + "&limit=5",
		"match[type]=indicator,sighting&match[id]=indicator--09d5cfb2-8219-565f-aa54-f3afedb53a26",
		"match[version]=last", "match[version]=first", "match[spec_version]=2.0", "%zz", "a=b;c",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := ParseQuery(raw)
		if err != nil {
			return
		}
		if q.Limit < 1 || q.Limit > MaxLimit || len(q.Types) > maxMatch || len(q.IDs) > maxMatch {
			t.Fatalf("unbounded query %+v", q)
		}
		if q.Next != nil {
			c, err := ParseCursor(q.Next.String())
			if err != nil || c != *q.Next || canonical(c.IP) != c.IP || c.Skip > maxSkip {
				t.Fatalf("cursor %+v does not round-trip: %+v %v", *q.Next, c, err)
			}
		}
	})
}

// FuzzParseCursor: a next value either is refused or names a canonical address.
func FuzzParseCursor(f *testing.F) {
	for _, c := range []Cursor{{1, "203.0.113.7", 0}, {0, "::1", 16}, {1 << 50, "2001:db8::1", 3}} {
		f.Add(c.String())
	}
	f.Add("YzEuMS4wLjEwLjAuMC4x")
	f.Add("YzEuLTEuMC4xLjIuMy40")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			return
		}
		if _, ok := patternOf(c.IP); !ok || c.AddedMS < 0 || c.Skip < 0 || c.Skip > maxSkip {
			t.Fatalf("accepted %+v", c)
		}
	})
}

// FuzzParseCredentials: a credentials file either is refused or yields named 32-byte digests
// restricted to known collections.
func FuzzParseCredentials(f *testing.F) {
	h := sha256Hex("x")
	f.Add([]byte("alice:sha256:"+h+"\n# c\n\nbob:sha256:"+h+":critical,high\n"), true)
	f.Add([]byte("siem:"+h+":*\n"), false)
	f.Add([]byte("alice:$2b$10$abc\n"), true)
	f.Add([]byte("a:sha256:"+h+"\na:sha256:"+h), true)
	f.Fuzz(func(t *testing.T, raw []byte, users bool) {
		creds, err := ParseCredentials(raw, users)
		if err != nil {
			return
		}
		for _, c := range creds {
			if c.name == "" {
				t.Fatal("empty name accepted")
			}
			for a := range c.collections {
				if !isAlias(a) {
					t.Fatalf("collection %q accepted", a)
				}
			}
		}
	})
}
