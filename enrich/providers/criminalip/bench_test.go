package criminalip

import (
	"os"
	"testing"
)

func BenchmarkDecodeReport(b *testing.B) {
	body, err := os.ReadFile("testdata/report_full.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeReport(body); err != nil {
			b.Fatal(err)
		}
	}
}
