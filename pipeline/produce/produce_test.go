package produce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// fakeWriter records every batch; failOn makes its failOn-th call (1-based) fail.
type fakeWriter struct {
	batches [][]kafka.Message
	calls   int
	failOn  int
	err     error
}

func (w *fakeWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.calls++
	if w.failOn != 0 && w.calls >= w.failOn {
		return w.err
	}
	b := make([]kafka.Message, len(msgs))
	copy(b, msgs)
	w.batches = append(w.batches, b)
	return nil
}

func (w *fakeWriter) values() []string {
	var out []string
	for _, b := range w.batches {
		for _, m := range b {
			out = append(out, string(m.Value))
		}
	}
	return out
}

func (w *fakeWriter) sizes() []int {
	var out []int
	for _, b := range w.batches {
		out = append(out, len(b))
	}
	return out
}

func opts() Options {
	return Options{Topic: "threat.indicators", BatchSize: 100, MaxLineBytes: 1 << 20}
}

func run(t *testing.T, input string, o Options) (*fakeWriter, Stats, []string, error) {
	t.Helper()
	w := &fakeWriter{}
	var errOut bytes.Buffer
	st, err := Run(context.Background(), strings.NewReader(input), w, o, &errOut)
	var lines []string
	if s := strings.TrimSuffix(errOut.String(), "\n"); s != "" {
		lines = strings.Split(s, "\n")
	}
	return w, st, lines, err
}

func wantStats(t *testing.T, st Stats, lines, produced, rejected int64) {
	t.Helper()
	if st.Lines != lines || st.Produced != produced || st.Rejected != rejected {
		t.Fatalf("Stats = {Lines:%d Produced:%d Rejected:%d}, want {%d %d %d}",
			st.Lines, st.Produced, st.Rejected, lines, produced, rejected)
	}
}

func jsonLines(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"event_id":"e%d","indicator":{"type":"ipv4-addr","value":"192.0.2.%d"}}`, i, i%250)
	}
	return out
}

func TestRunBatches(t *testing.T) {
	lines := jsonLines(7)
	o := opts()
	o.BatchSize = 3
	w, st, errs, err := run(t, strings.Join(lines, "\n")+"\n", o)
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, st, 7, 7, 0)
	if len(errs) != 0 {
		t.Fatalf("errOut = %q", errs)
	}
	if got := w.sizes(); !reflect.DeepEqual(got, []int{3, 3, 1}) {
		t.Fatalf("batch sizes = %v, want [3 3 1]", got)
	}
	if got := w.values(); !reflect.DeepEqual(got, lines) {
		t.Fatalf("values = %q, want %q", got, lines)
	}
	for _, b := range w.batches {
		for _, m := range b {
			if m.Topic != "threat.indicators" {
				t.Errorf("Topic = %q", m.Topic)
			}
			if m.Key != nil {
				t.Errorf("Key = %q without a KeyField", m.Key)
			}
		}
	}
}

func TestRunExactBatchMultiple(t *testing.T) {
	o := opts()
	o.BatchSize = 2
	w, st, _, err := run(t, strings.Join(jsonLines(4), "\n")+"\n", o)
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, st, 4, 4, 0)
	if got := w.sizes(); !reflect.DeepEqual(got, []int{2, 2}) {
		t.Fatalf("batch sizes = %v, want [2 2] (no empty write)", got)
	}
}

func TestRunEmptyInput(t *testing.T) {
	for _, in := range []string{"", "\n", "\n\n  \n\t\r\n"} {
		w, st, errs, err := run(t, in, opts())
		if err != nil || w.calls != 0 || len(errs) != 0 {
			t.Fatalf("input %q: err %v, %d writes, errOut %q", in, err, w.calls, errs)
		}
		wantStats(t, st, 0, 0, 0)
	}
}

// Values are copies: the reader's buffer is reused across lines, so a large final batch built
// from many buffer refills must still hold every line intact.
func TestRunValuesAreCopies(t *testing.T) {
	lines := jsonLines(5000) // ~400 KB, several bufio refills
	o := opts()
	o.BatchSize = 10_000
	w, st, _, err := run(t, strings.Join(lines, "\n"), o)
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, st, 5000, 5000, 0)
	if got := w.values(); !reflect.DeepEqual(got, lines) {
		t.Fatal("values were corrupted")
	}
}

func TestRunBlankLinesCountedInLineNumbers(t *testing.T) {
	in := "{\"a\":1}\n\n   \n{bad\n\t\n{\"b\":2}\n{also bad}\n"
	w, st, errs, err := run(t, in, opts())
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, st, 4, 2, 2)
	if got := w.values(); !reflect.DeepEqual(got, []string{`{"a":1}`, `{"b":2}`}) {
		t.Fatalf("values = %q", got)
	}
	if len(errs) != 2 || !strings.HasPrefix(errs[0], "line 4: invalid JSON: ") || !strings.HasPrefix(errs[1], "line 7: invalid JSON: ") {
		t.Fatalf("errOut = %q, want reports for lines 4 and 7", errs)
	}
	for _, e := range errs {
		if !strings.HasSuffix(e, "(use --allow-invalid to send it anyway)") {
			t.Errorf("report %q does not mention --allow-invalid", e)
		}
	}
}

func TestRunLinesAreTrimmed(t *testing.T) {
	w, _, _, err := run(t, "  \t{\"a\":1}  \n", opts())
	if err != nil {
		t.Fatal(err)
	}
	if got := w.values(); !reflect.DeepEqual(got, []string{`{"a":1}`}) {
		t.Fatalf("values = %q", got)
	}
}

func TestRunNotAnObject(t *testing.T) {
	in := "null\n[1,2]\n42\n\"str\"\ntrue\n{\"ok\":true}\n"
	w, st, errs, err := run(t, in, opts())
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, st, 6, 1, 5)
	if got := w.values(); !reflect.DeepEqual(got, []string{`{"ok":true}`}) {
		t.Fatalf("values = %q", got)
	}
	if len(errs) != 5 {
		t.Fatalf("errOut = %q, want 5 reports", errs)
	}
	if !strings.HasPrefix(errs[0], "line 1: not a JSON object") {
		t.Errorf("null: report %q", errs[0])
	}
	for i, e := range errs {
		if !strings.HasPrefix(e, fmt.Sprintf("line %d: ", i+1)) {
			t.Errorf("report %q, want line %d", e, i+1)
		}
	}
}

func TestRunAllowInvalid(t *testing.T) {
	in := "{bad\nnull\n[1]\n{\"a\":1}\n"
	o := opts()
	o.AllowInvalid = true
	o.KeyField = "a"
	w, st, errs, err := run(t, in, o)
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, st, 4, 4, 0)
	if len(errs) != 0 {
		t.Fatalf("errOut = %q", errs)
	}
	if got := w.values(); !reflect.DeepEqual(got, []string{"{bad", "null", "[1]", `{"a":1}`}) {
		t.Fatalf("values = %q", got)
	}
	for _, b := range w.batches {
		for _, m := range b {
			if m.Key != nil {
				t.Errorf("message %q has key %q", m.Value, m.Key)
			}
		}
	}
}

func TestRunTooLongLines(t *testing.T) {
	huge := `{"pad":"` + strings.Repeat("x", 100<<10) + `"}` // over the 64 KiB read buffer
	in := strings.Join([]string{
		`{"a":1}`,
		`{"this line is long":"0123456789"}`,
		`{"b":2}`,
		huge,
		`{"c":3}`,
	}, "\n") + "\n"
	o := opts()
	o.MaxLineBytes = 20
	o.BatchSize = 2
	w, st, errs, err := run(t, in, o)
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, st, 5, 3, 2)
	if got := w.values(); !reflect.DeepEqual(got, []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}) {
		t.Fatalf("values = %q", got)
	}
	want := []string{"line 2: longer than 20 bytes; skipped", "line 4: longer than 20 bytes; skipped"}
	if !reflect.DeepEqual(errs, want) {
		t.Fatalf("errOut = %q, want %q", errs, want)
	}
}

func TestRunLongLineWithinLimit(t *testing.T) {
	huge := `{"pad":"` + strings.Repeat("y", 200<<10) + `"}`
	o := opts()
	o.MaxLineBytes = len(huge)
	w, st, errs, err := run(t, huge+"\n"+`{"z":1}`+"\n", o)
	if err != nil || len(errs) != 0 {
		t.Fatalf("err %v, errOut %q", err, errs)
	}
	wantStats(t, st, 2, 2, 0)
	if got := w.values(); len(got) != 2 || got[0] != huge || got[1] != `{"z":1}` {
		t.Fatalf("long line not produced intact (%d values)", len(got))
	}

	// Last line too long and without a newline.
	o.MaxLineBytes = 10
	w, st, errs, err = run(t, `{"a":1}`+"\n"+huge, o)
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, st, 2, 1, 1)
	if !reflect.DeepEqual(errs, []string{"line 2: longer than 10 bytes; skipped"}) {
		t.Fatalf("errOut = %q", errs)
	}
}

func TestRunMaxLineBytesBoundary(t *testing.T) {
	line := `{"k":"0123456789"}` // 18 bytes
	o := opts()
	o.MaxLineBytes = len(line)
	_, st, errs, err := run(t, line+"\n"+line+"x\n", o)
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, st, 2, 1, 1)
	if !reflect.DeepEqual(errs, []string{"line 2: longer than 18 bytes; skipped"}) {
		t.Fatalf("errOut = %q", errs)
	}
}

func TestRunCRLF(t *testing.T) {
	in := "{\"a\":1}\r\n\r\n{\"b\":2}\r\n{bad\r\n"
	w, st, errs, err := run(t, in, opts())
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, st, 3, 2, 1)
	if got := w.values(); !reflect.DeepEqual(got, []string{`{"a":1}`, `{"b":2}`}) {
		t.Fatalf("values = %q", got)
	}
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "line 4: ") {
		t.Fatalf("errOut = %q", errs)
	}
}

func TestRunLastLineWithoutNewline(t *testing.T) {
	in := "{\"a\":1}\n\n{\"b\":2}"
	w, st, _, err := run(t, in, opts())
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, st, 2, 2, 0)
	if got := w.values(); !reflect.DeepEqual(got, []string{`{"a":1}`, `{"b":2}`}) {
		t.Fatalf("values = %q", got)
	}
	// The unterminated last line keeps its line number.
	_, _, errs, err := run(t, "{\"a\":1}\n\n{bad", opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "line 3: invalid JSON") {
		t.Fatalf("errOut = %q", errs)
	}
}

func TestRunKeyField(t *testing.T) {
	in := strings.Join([]string{
		`{"indicator":{"type":"ipv4-addr","value":"192.0.2.1"}}`,
		`{"indicator":{"type":"ipv4-addr"}}`,
		`{"other":1}`,
		`{"indicator":{"value":42}}`,
		`{"indicator":"192.0.2.9"}`,
		`{"indicator":{"value":{"deep":"x"}}}`,
		`{"indicator":{"value":""}}`,
		`{"indicator":{"value":"2001:db8::1"},"indicator.value":"dotted"}`,
	}, "\n")
	o := opts()
	o.KeyField = "indicator.value"
	w, st, _, err := run(t, in, o)
	if err != nil {
		t.Fatal(err)
	}
	wantStats(t, st, 8, 8, 0)
	var keys []any
	for _, m := range w.batches[0] {
		if m.Key == nil {
			keys = append(keys, nil)
		} else {
			keys = append(keys, string(m.Key))
		}
	}
	want := []any{"192.0.2.1", nil, nil, nil, nil, nil, "", "2001:db8::1"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys = %v, want %v", keys, want)
	}

	// A top-level key.
	o.KeyField = "event_id"
	w, _, _, err = run(t, `{"event_id":"evt-7"}`, o)
	if err != nil {
		t.Fatal(err)
	}
	if k := string(w.batches[0][0].Key); k != "evt-7" {
		t.Fatalf("key = %q", k)
	}
}

func TestRunWriterError(t *testing.T) {
	boom := errors.New("broker unavailable")
	w := &fakeWriter{failOn: 2, err: boom}
	o := opts()
	o.BatchSize = 2
	var errOut bytes.Buffer
	st, err := Run(context.Background(), strings.NewReader(strings.Join(jsonLines(7), "\n")), w, o, &errOut)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want it to wrap %v", err, boom)
	}
	if !strings.Contains(err.Error(), "write 2 messages to threat.indicators") {
		t.Errorf("err = %q", err)
	}
	// Stopped at the failed second batch: four lines read, two produced.
	wantStats(t, st, 4, 2, 0)
	if w.calls != 2 {
		t.Errorf("%d writes after a failure, want 2", w.calls)
	}

	// A failure of the final, partial batch is returned too.
	w = &fakeWriter{failOn: 1, err: boom}
	st, err = Run(context.Background(), strings.NewReader(`{"a":1}`), w, opts(), &errOut)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "write 1 messages") {
		t.Fatalf("err = %v", err)
	}
	wantStats(t, st, 1, 0, 0)
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestRunReadError(t *testing.T) {
	eio := errors.New("input/output error")
	r := &failingReader{data: []byte("{\"a\":1}\n{\"b\":2}\n{\"c\""), err: eio}
	w := &fakeWriter{}
	var errOut bytes.Buffer
	st, err := Run(context.Background(), r, w, opts(), &errOut)
	if !errors.Is(err, eio) || !strings.Contains(err.Error(), "read input") {
		t.Fatalf("err = %v, want a read input error wrapping %v", err, eio)
	}
	// Lines read before the failure are still produced; the partial line is rejected.
	if got := w.values(); !reflect.DeepEqual(got, []string{`{"a":1}`, `{"b":2}`}) {
		t.Fatalf("values = %q", got)
	}
	wantStats(t, st, 3, 2, 1)
	if !strings.HasPrefix(errOut.String(), "line 3: invalid JSON") {
		t.Errorf("errOut = %q", errOut.String())
	}
}

func TestRunProgress(t *testing.T) {
	var calls []Stats
	o := opts()
	o.BatchSize = 2
	o.Progress = func(s Stats) { calls = append(calls, s) }
	o.ProgressEvery = 0 // every flush
	_, st, _, err := run(t, strings.Join(jsonLines(5), "\n")+"\n{bad\n", o)
	if err != nil {
		t.Fatal(err)
	}
	var produced []int64
	for _, c := range calls {
		produced = append(produced, c.Produced)
		if c.Elapsed <= 0 {
			t.Errorf("progress Elapsed = %v", c.Elapsed)
		}
	}
	if !reflect.DeepEqual(produced, []int64{2, 4, 5}) {
		t.Fatalf("progress Produced = %v, want [2 4 5]", produced)
	}
	if last := calls[len(calls)-1]; last.Lines != 6 || last.Rejected != 1 {
		t.Errorf("last progress = %+v", last)
	}
	wantStats(t, st, 6, 5, 1)

	// A long interval suppresses progress within a quick run.
	calls = nil
	o.ProgressEvery = 1 << 62
	if _, _, _, err := run(t, strings.Join(jsonLines(5), "\n"), o); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 0 {
		t.Fatalf("progress called %d times", len(calls))
	}
}

var _ io.Reader = (*failingReader)(nil)
