package eve

import (
	"testing"

	"github.com/threatpipe/threatpipe/pipeline/format/internal/fmttest"
)

// The user guide's alert: the cost of one EVE message, alone and through the shared decoder in
// auto mode (fmttest.Benchmark).
var benchValue = []byte(`{"timestamp":"2017-04-07T22:24:37.251547+0100","flow_id":586497171462735,"pcap_cnt":53381,"event_type":"alert","src_ip":"192.168.2.14","src_port":50096,"dest_ip":"209.53.113.5","dest_port":80,"proto":"TCP","metadata":{"flowbits":["http.dottedquadhost"]},"tx_id":4,"alert":{"action":"allowed","gid":1,"signature_id":2018358,"rev":10,"signature":"ET HUNTING GENERIC SUSPICIOUS POST to Dotted Quad with Fake Browser 1","category":"Potentially Bad Traffic","severity":2},"app_proto":"http"}`)

func BenchmarkDecode(b *testing.B) { fmttest.Benchmark(b, New(), benchValue) }
