package webhook

import (
	"crypto/hmac"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzVerify checks Verify on arbitrary headers and bodies: no panic, and it accepts a request
// only when one of the signatures is the body's true HMAC for that timestamp. Seeds:
// testdata/fuzz/FuzzVerify (the signed-request fixture and variations).
func FuzzVerify(f *testing.F) {
	secret := []byte(testSecret)
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte, skew int64) {
		h := http.Header{}
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		secs, _ := strconv.ParseInt(ts, 10, 64)
		now := time.Unix(secs, 0).Add(time.Duration(skew%600) * time.Second)
		if Verify(secret, h, body, now, time.Minute) != nil {
			return
		}
		want := mac(secret, ts, body)
		for _, s := range strings.Split(sig, ",") {
			got, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "v1="))
			if err == nil && hmac.Equal(got, want) {
				if d := now.Sub(time.Unix(secs, 0)); d > time.Minute || d < -time.Minute {
					t.Fatalf("accepted a timestamp %s off", d)
				}
				return
			}
		}
		t.Fatalf("accepted ts=%q sig=%q body=%q without a valid signature", ts, sig, body)
	})
}
