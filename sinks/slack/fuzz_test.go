package slack

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/threatpipe/threatpipe/pipeline/event"
)

// FuzzCheckAnswer checks the answer decoder on arbitrary bodies: no panic, only "ok" accepted,
// and error text bounded and printable. Seeds: testdata/fuzz/FuzzCheckAnswer (the fixtures).
func FuzzCheckAnswer(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		err := checkAnswer(body)
		if (err == nil) != (strings.TrimSpace(string(body)) == "ok") {
			t.Fatalf("%q: %v", body, err)
		}
		if err != nil && (len(err.Error()) > 400 || !utf8.ValidString(err.Error()) || strings.ContainsAny(err.Error(), "\n\r")) {
			t.Fatalf("error %q", err)
		}
	})
}

// FuzzBuildMessage checks that whatever the event holds, the message stays within Slack's
// limits and would be accepted.
func FuzzBuildMessage(f *testing.F) {
	f.Add("threatpipe: 203.0.113.7 scored 92", "Example & Co", "abuseipdb", "reported <120> times", "botnet", "@here", 3)
	f.Add(strings.Repeat("<&>", 200), strings.Repeat("\xff", 50), "", "\n\n", "", "", 200)
	f.Fuzz(func(t *testing.T, title, isp, source, detail, tag, note string, reasons int) {
		a := testAction()
		a.Title, a.ISP, a.Tags = title, isp, []string{tag, tag}
		a.Params = map[string]string{ParamChannelNote: note}
		if (&Sink{}).ValidateParams(a.Params) != nil {
			a.Params = nil // Do refuses such params before building
		}
		a.Reasons = make([]event.Reason, min(max(reasons, 0), 300))
		for i := range a.Reasons {
			a.Reasons[i] = event.Reason{Source: source, Detail: detail, Points: i}
		}
		body, err := json.Marshal(buildMessage(a))
		if err != nil {
			t.Fatal(err)
		}
		if status, code, _ := validatePayload(body); status != http.StatusOK {
			t.Fatalf("Slack would reject it (%s): %s", code, body)
		}
	})
}
