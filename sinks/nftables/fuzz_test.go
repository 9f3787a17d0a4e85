package nftables

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecodeListing checks the decoder of `nft -j list set` output never panics and that what it
// accepts is usable: valid zone-less addresses and sane expiries. The fixtures seed it.
func FuzzDecodeListing(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"nftables": [{"set": {"type": "ipv4_addr", "flags": "timeout", "elem": "192.0.3.1"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		l, err := decodeListing(body)
		if err != nil {
			if l != nil || !errors.Is(err, errListing) {
				t.Fatalf("listing %v with error %v", l, err)
			}
			return
		}
		for _, e := range l.elems {
			if !e.addr.IsValid() || e.addr.Zone() != "" {
				t.Fatalf("bad address %v", e.addr)
			}
			if e.expires < 0 || e.expires > maxSeconds*time.Second || (e.permanent && e.expires != 0) {
				t.Fatalf("bad expiry %+v", e)
			}
		}
	})
}
