package gate

import (
	"net/netip"
	"slices"
	"testing"
)

func TestEmbedded(t *testing.T) {
	tests := []struct {
		addr string
		want []Embedding
	}{
		{"10.0.0.1", nil},
		{"2606:4700::1111", nil},
		{"::ffff:1.2.3.4", []Embedding{{Form: FormIPv4Mapped, Addr: netip.MustParseAddr("1.2.3.4")}}},
		{"::1.2.3.4", []Embedding{{Form: FormIPv4Compatible, Addr: netip.MustParseAddr("1.2.3.4")}}},
		{"::ffff:0:1.2.3.4", []Embedding{{Form: FormIPv4Translated, Addr: netip.MustParseAddr("1.2.3.4")}}},
		{"64:ff9b::1.2.3.4", []Embedding{{Form: FormNAT64, Addr: netip.MustParseAddr("1.2.3.4")}}},
		{"2002:102:304:ffff::1", []Embedding{{Form: Form6to4, Addr: netip.MustParseAddr("1.2.3.4")}}},
		{"2001:0:102:304:8000:63bf:fefd:fcfb", []Embedding{
			{Form: FormTeredoServer, Addr: netip.MustParseAddr("1.2.3.4")}, {Form: FormTeredoClient, Addr: netip.MustParseAddr("1.2.3.4")}}},
		// A Teredo address whose flags and port read as an ISATAP identifier names three.
		{"2001:0:102:304:0:5efe:fefd:fcfb", []Embedding{
			{Form: FormTeredoServer, Addr: netip.MustParseAddr("1.2.3.4")}, {Form: FormTeredoClient, Addr: netip.MustParseAddr("1.2.3.4")},
			{Form: FormISATAP, Addr: netip.MustParseAddr("254.253.252.251")}}},
		{"2001:db8::5efe:102:304", []Embedding{{Form: FormISATAP, Addr: netip.MustParseAddr("1.2.3.4")}}},
		{"2001:db8::300:5efe:102:304", []Embedding{{Form: FormISATAP, Addr: netip.MustParseAddr("1.2.3.4")}}},
	}
	for _, tt := range tests {
		got := Embedded(netip.MustParseAddr(tt.addr), nil)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Embedded(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
