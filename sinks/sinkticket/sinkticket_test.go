package sinkticket

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// fake records the calls the flow makes.
type fake struct {
	optionsErr error
	commentErr error
	createErr  error
	calls      []string
}

func (f *fake) flow(goneNoun string) Flow[string] {
	return Flow[string]{
		Sink: "tix",
		Options: func(params map[string]string) (string, error) {
			f.calls = append(f.calls, "options")
			return "queue=" + params["queue"], f.optionsErr
		},
		IsRef: func(ref string) bool { return strings.HasPrefix(ref, "T-") },
		RefIs: "a ticket key",
		Create: func(_ context.Context, a *sinks.Action, o string) (sinks.Result, error) {
			f.calls = append(f.calls, "create "+o)
			if f.createErr != nil {
				return sinks.Result{}, f.createErr
			}
			return sinks.Result{Ref: "T-2", Detail: "created T-2"}, nil
		},
		Comment: func(_ context.Context, a *sinks.Action) (string, error) {
			f.calls = append(f.calls, "comment "+a.Prior)
			if f.commentErr != nil {
				return "", f.commentErr
			}
			return "commented on " + a.Prior + " (#7)", nil
		},
		GoneNoun: goneNoun,
	}
}

func TestDo(t *testing.T) {
	notFound := fmt.Errorf("comment on T-1: %w", &sinkhttp.StatusError{Sink: "tix", Status: 404})
	forbidden := fmt.Errorf("comment on T-1: %w", &sinkhttp.StatusError{Sink: "tix", Status: 403})
	action := func(prior string) *sinks.Action {
		return &sinks.Action{Key: "pb/ticket/203.0.113.7/w1", Prior: prior, Params: map[string]string{"queue": "soc"}}
	}
	for _, tt := range []struct {
		name     string
		a        *sinks.Action
		fake     fake
		goneNoun string
		want     sinks.Result
		wantErr  string
		calls    []string
	}{
		{name: "nil action", a: nil, wantErr: "tix: nil action"},
		{name: "bad params", a: action(""), fake: fake{optionsErr: errors.New(`tix: param "x": unknown`)},
			wantErr: `tix: param "x": unknown`, calls: []string{"options"}},
		{name: "no key", a: &sinks.Action{}, wantErr: "tix: action has no Key", calls: []string{"options"}},
		{name: "no prior creates", a: action(""), want: sinks.Result{Ref: "T-2", Detail: "created T-2"},
			calls: []string{"options", "create queue=soc"}},
		{name: "create fails", a: action(""), fake: fake{createErr: errors.New("boom")}, wantErr: "boom",
			calls: []string{"options", "create queue=soc"}},
		{name: "prior not a reference", a: action("../x"), wantErr: `tix: prior reference "../x" is not a ticket key`,
			calls: []string{"options"}},
		{name: "prior comments", a: action("T-1"), want: sinks.Result{Ref: "T-1", Detail: "commented on T-1 (#7)"},
			calls: []string{"options", "comment T-1"}},
		{name: "comment fails", a: action("T-1"), fake: fake{commentErr: forbidden}, wantErr: forbidden.Error(),
			calls: []string{"options", "comment T-1"}},
		{name: "gone prior creates", a: action("T-1"), fake: fake{commentErr: notFound},
			want:  sinks.Result{Ref: "T-2", Detail: "created T-2 (T-1 no longer exists)"},
			calls: []string{"options", "comment T-1", "create queue=soc"}},
		{name: "gone prior named", a: action("T-1"), fake: fake{commentErr: notFound}, goneNoun: "incident",
			want:  sinks.Result{Ref: "T-2", Detail: "created T-2 (incident T-1 no longer exists)"},
			calls: []string{"options", "comment T-1", "create queue=soc"}},
		{name: "gone prior, create fails", a: action("T-1"), fake: fake{commentErr: notFound, createErr: errors.New("boom")},
			wantErr: "boom", calls: []string{"options", "comment T-1", "create queue=soc"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.fake
			got, err := Do(context.Background(), tt.a, f.flow(tt.goneNoun))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || got != (sinks.Result{}) {
					t.Fatalf("Do = %+v, %v; want error %q", got, err, tt.wantErr)
				}
			} else if err != nil || got != tt.want {
				t.Fatalf("Do = %+v, %v; want %+v", got, err, tt.want)
			}
			if strings.Join(f.calls, "; ") != strings.Join(tt.calls, "; ") {
				t.Errorf("calls %q, want %q", f.calls, tt.calls)
			}
		})
	}
}
