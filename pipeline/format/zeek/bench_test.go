package zeek

import (
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/format/internal/fmttest"
)

// The documentation's conn.log record: the cost of one Zeek message, alone and through the
// shared decoder in auto mode (fmttest.Benchmark).
var benchValue = []byte(`{"ts":1591367999.430166,"uid":"C5bLoe2Mvxqhawzqqd","id.orig_h":"192.168.4.76","id.orig_p":46378,"id.resp_h":"31.3.245.133","id.resp_p":80,"proto":"tcp","service":"http","duration":0.25411510467529297,"orig_bytes":77,"resp_bytes":295,"conn_state":"SF","missed_bytes":0,"history":"ShADadFf","orig_pkts":6,"orig_ip_bytes":397,"resp_pkts":4,"resp_ip_bytes":511}`)

func BenchmarkDecode(b *testing.B) { fmttest.Benchmark(b, New(), benchValue) }
