package rules

import (
	"os"
	"testing"
)

func BenchmarkExtractCriminalIP(b *testing.B) {
	raw, err := os.ReadFile("../providers/criminalip/testdata/report_full.json")
	if err != nil {
		b.Fatal(err)
	}
	f, _ := Load("")
	c, err := f.Compile([]string{"criminalip", "abuseipdb", "virustotal", "greynoise", "otx", "internetdb", "geoip"})
	if err != nil {
		b.Fatal(err)
	}
	x := c.SourceOptions("criminalip").Fields
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		x.Extract(raw)
	}
}
