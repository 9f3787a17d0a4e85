package produce

import (
	"reflect"
	"strings"
	"testing"
)

// Regression: readLine once allowed max+1 bytes for any line ending, so a CRLF-terminated line of
// exactly MaxLineBytes was rejected and an unterminated last line of MaxLineBytes+1 accepted.
func TestRegressionMaxLineBytesIgnoresLineEnding(t *testing.T) {
	o := opts()
	o.MaxLineBytes = 7
	w, st, errs, err := run(t, "{\"a\":1}\r\n{\"b\":22}", o)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.values(); !reflect.DeepEqual(got, []string{`{"a":1}`}) {
		t.Errorf("values = %q, want only the 7-byte CRLF line", got)
	}
	if st.Rejected != 1 || len(errs) != 1 || !strings.HasPrefix(errs[0], "line 2: longer than 7 bytes") {
		t.Errorf("rejected %d, errOut %q; want line 2 (8 bytes) rejected", st.Rejected, errs)
	}
}

// Regression: message once reported a valid JSON array or number as "invalid JSON: json: cannot
// unmarshal array ...": only null got the "not a JSON object" reason.
func TestRegressionNonObjectJSONReportedAsInvalid(t *testing.T) {
	_, _, errs, err := run(t, "[1,2]\n42\n\"s\"\n", opts())
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if !strings.Contains(e, "not a JSON object") || strings.Contains(e, "invalid JSON") {
			t.Errorf("line %d: report %q, want \"not a JSON object\"", i+1, e)
		}
	}
}
