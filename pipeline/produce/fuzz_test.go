package produce

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzRun feeds arbitrary input to the JSON-lines reader: it must never fail on content, every
// non-blank line is either produced or reported, and everything produced is a JSON object.
func FuzzRun(f *testing.F) {
	for _, seed := range []string{
		"{\"a\":1}\n{\"b\":2}\n",
		"{\"a\":1}\r\n\r\n[1,2]\n",
		"not json\n{\"indicator\":{\"value\":\"1.2.3.4\"}}",
		"\xff\xfe\n{}\n",
		strings.Repeat("x", 100) + "\n{\"k\":\"v\"}",
		"",
	} {
		f.Add(seed, 64)
	}
	f.Fuzz(func(t *testing.T, input string, maxLine int) {
		if maxLine <= 0 || maxLine > 1<<16 {
			maxLine = 64
		}
		w := &fakeWriter{}
		var errOut bytes.Buffer
		o := Options{Topic: "t", BatchSize: 3, MaxLineBytes: maxLine, KeyField: "indicator.value"}
		st, err := Run(context.Background(), strings.NewReader(input), w, o, &errOut)
		if err != nil {
			t.Fatalf("content must never fail the run: %v", err)
		}
		if st.Produced+st.Rejected != st.Lines {
			t.Fatalf("lines %d != produced %d + rejected %d", st.Lines, st.Produced, st.Rejected)
		}
		if reports := strings.Count(errOut.String(), "\n"); int64(reports) != st.Rejected {
			t.Fatalf("%d reports for %d rejected lines", reports, st.Rejected)
		}
		for _, v := range w.values() {
			var obj map[string]json.RawMessage
			if json.Unmarshal([]byte(v), &obj) != nil || obj == nil || len(v) > maxLine {
				t.Fatalf("produced a line that is not a JSON object within the limit: %q", v)
			}
		}
	})
}
