package event

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBoundCarried(t *testing.T) {
	big := strings.Repeat("x", 300)
	tests := []struct {
		name        string
		context     string
		extra       map[string]string
		limit       int
		wantContext string
		wantExtra   map[string]string
		want        *Truncation // nil: untouched
	}{
		{
			name: "under the limit", context: `{"a": 1, "b": "` + big + `"}`, limit: 400,
			wantContext: `{"a": 1, "b": "` + big + `"}`,
		},
		{
			name: "the largest member goes", context: `{"@timestamp":"t", "message" : "` + big + `", "source":{"ip":"8.8.8.8"}}`, limit: 100,
			wantContext: `{"@timestamp":"t","source":{"ip":"8.8.8.8"}}`,
			want:        &Truncation{OriginalBytes: 361, Omitted: []string{"context.message"}, OmittedCount: 1},
		},
		{
			name: "as many as it takes, the later of equals first", context: `{"a":"1111","b":"2222","c":"3333","d":"4444"}`, limit: 30,
			wantContext: `{"a":"1111","b":"2222"}`,
			want:        &Truncation{OriginalBytes: 45, Omitted: []string{"context.d", "context.c"}, OmittedCount: 2},
		},
		{
			name: "nothing fits", context: `{"a":"` + big + `"}`, limit: 10,
			want: &Truncation{OriginalBytes: 308, Omitted: []string{"context.a"}, OmittedCount: 1},
		},
		{
			name: "extra fields count too", context: `{"rule":"r"}`, extra: map[string]string{"tenant": `"acme"`, "blob": `"` + big + `"`}, limit: 60,
			wantContext: `{"rule":"r"}`, wantExtra: map[string]string{"tenant": `"acme"`},
			want: &Truncation{OriginalBytes: 12 + 2 + 16 + 310, Omitted: []string{"extra.blob"}, OmittedCount: 1},
		},
		{
			name: "escaped and duplicate keys", context: `{"a\"b":"` + big + `","k":1,"k":"` + big + `!"}`, limit: 40,
			wantContext: `{"k":1}`,
			want:        &Truncation{OriginalBytes: 625, Omitted: []string{`context.a"b`, "context.k"}, OmittedCount: 2},
		},
		{
			name: "nested values stay whole", context: `{"a":{"b":[1,{"c":"}"}]},"d":"` + big + `"}`, limit: 50,
			wantContext: `{"a":{"b":[1,{"c":"}"}]}}`,
			want:        &Truncation{OriginalBytes: 332, Omitted: []string{"context.d"}, OmittedCount: 1},
		},
		{
			name: "only whitespace over the limit: re-spaced, nothing left out", context: `{ "a" :  1 ,  "b" : 2   }`, limit: 20,
			wantContext: `{"a":1,"b":2}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &Input{Context: json.RawMessage(tt.context)}
			if tt.extra != nil {
				in.Extra = map[string]json.RawMessage{}
				for k, v := range tt.extra {
					in.Extra[k] = json.RawMessage(v)
				}
			}
			boundCarried(in, tt.limit)
			if string(in.Context) != tt.wantContext {
				t.Errorf("context %s, want %s", in.Context, tt.wantContext)
			}
			var gotExtra map[string]string
			for k, v := range in.Extra {
				if gotExtra == nil {
					gotExtra = map[string]string{}
				}
				gotExtra[k] = string(v)
			}
			if !reflect.DeepEqual(gotExtra, tt.wantExtra) {
				t.Errorf("extra %v, want %v", gotExtra, tt.wantExtra)
			}
			if !reflect.DeepEqual(in.Truncated, tt.want) {
				t.Errorf("truncated %+v, want %+v", in.Truncated, tt.want)
			}
			if in.Context != nil && !json.Valid(in.Context) {
				t.Errorf("context %s is not valid JSON", in.Context)
			}
		})
	}
}

func TestBoundCarriedNamesAtMost16(t *testing.T) {
	var members []string
	for i := range 40 {
		members = append(members, fmt.Sprintf(`"%s%02d":"%s"`, strings.Repeat("k", 100), i, strings.Repeat("v", 100-i)))
	}
	in := &Input{Context: json.RawMessage("{" + strings.Join(members, ",") + "}")}
	boundCarried(in, 1000)
	tr := in.Truncated
	if tr == nil || tr.OmittedCount < 30 || len(tr.Omitted) != 16 {
		t.Fatalf("truncated %+v", tr)
	}
	// The largest (member 00) went first; its name is cut to 64 bytes.
	if want := "context." + strings.Repeat("k", 56) + "…"; tr.Omitted[0] != want {
		t.Errorf("first name %q, want %q (cut to 64 bytes)", tr.Omitted[0], want)
	}
	if len(in.Context) > 1000 || !json.Valid(in.Context) || !strings.HasSuffix(string(in.Context), `39":"`+strings.Repeat("v", 61)+`"}`) {
		t.Errorf("context %d bytes, valid %v: %.60s", len(in.Context), json.Valid(in.Context), in.Context)
	}
}

// A document under the limit is carried as it arrived, without a copy.
func TestBoundCarriedLeavesSmallContextAlone(t *testing.T) {
	msg := []byte(`{"source":{"ip":"8.8.8.8"},"message":"hello, a message longer than the address"}`)
	in, err := NewLimitedDecoder(Limits{MaxBytes: 1 << 20, MaxIndicators: 32, MaxContextBytes: len(msg)}).Decode(msg, time.Unix(0, 0), "fb")
	if err != nil {
		t.Fatal(err)
	}
	if &in.Context[0] != &msg[0] || in.Truncated != nil {
		t.Errorf("context copied or truncated: %+v", in.Truncated)
	}
	in, err = NewLimitedDecoder(Limits{MaxBytes: 1 << 20, MaxIndicators: 32, MaxContextBytes: len(msg) - 1}).Decode(msg, time.Unix(0, 0), "fb")
	if err != nil {
		t.Fatal(err)
	}
	if string(in.Context) != `{"source":{"ip":"8.8.8.8"}}` || in.Truncated == nil || in.Truncated.Omitted[0] != "context.message" {
		t.Errorf("context %s, truncated %+v", in.Context, in.Truncated)
	}
}

func TestDropCarried(t *testing.T) {
	s := &Scored{Context: json.RawMessage(`{"a":1}`), Extra: map[string]json.RawMessage{"t": json.RawMessage(`"x"`)}, Warnings: []string{"w"}}
	if !s.DropCarried("too big") {
		t.Fatal("nothing dropped")
	}
	want := &Truncation{OriginalBytes: 7 + 10, Omitted: []string{"context", "extra"}, OmittedCount: 2}
	if s.Context != nil || s.Extra != nil || !reflect.DeepEqual(s.ContextTruncated, want) ||
		!reflect.DeepEqual(s.Warnings, []string{"w", "context and extra fields dropped: too big"}) {
		t.Errorf("after DropCarried: %+v", s)
	}
	if s.DropCarried("again") {
		t.Error("dropped twice")
	}
	// An earlier truncation keeps its original size.
	s = &Scored{Context: json.RawMessage(`{}`), ContextTruncated: &Truncation{OriginalBytes: 5000, Omitted: []string{"context.m"}, OmittedCount: 1}}
	s.DropCarried("x")
	if s.ContextTruncated.OriginalBytes != 5000 || !reflect.DeepEqual(s.ContextTruncated.Omitted, []string{"context"}) {
		t.Errorf("truncation %+v", s.ContextTruncated)
	}
}
