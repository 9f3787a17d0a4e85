// Package sinkticket is the Do flow the ticket sinks (jira, servicenow, thehive) share: a new
// ticket for an action, or a comment on the ticket an earlier action on the same target opened
// (Action.Prior), and a new ticket after all when the system answers 404 for that one because
// it was deleted or is no longer visible.
package sinkticket

import (
	"context"
	"fmt"
	"net/http"

	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/sinkhttp"
)

// Flow is what one ticket sink brings to Do. O is the sink's per-action settings.
type Flow[O any] struct {
	// Sink names the sink at the start of Do's own errors ("jira").
	Sink string
	// Options are the action's settings: the sink's configuration overridden by its params, as
	// the sink's ValidateParams checks them.
	Options func(params map[string]string) (O, error)
	// IsRef reports whether a.Prior can be one of the system's references; RefIs names one
	// for the error when it cannot ("an issue key").
	IsRef func(ref string) bool
	RefIs string
	// Create opens a ticket for a.
	Create func(ctx context.Context, a *sinks.Action, o O) (sinks.Result, error)
	// Comment records the repeat on the ticket a.Prior and returns the Result's Detail. An
	// error that is an HTTP 404 (sinkhttp.IsStatus) means the ticket is gone.
	Comment func(ctx context.Context, a *sinks.Action) (detail string, err error)
	// GoneNoun, when set, comes before a.Prior in the Detail of the ticket opened in place of a
	// gone one: "created X (incident Y no longer exists)" rather than "(Y no longer exists)".
	GoneNoun string
}

// Do is a ticket sink's sinks.Sink.Do: it checks a (not nil, valid params, a Key, which each
// sink turns into the trace that its Find looks for), then comments on a.Prior when it is set,
// and creates a ticket when it is not or when that ticket is gone.
func Do[O any](ctx context.Context, a *sinks.Action, f Flow[O]) (sinks.Result, error) {
	if a == nil {
		return sinks.Result{}, fmt.Errorf("%s: nil action", f.Sink)
	}
	o, err := f.Options(a.Params)
	if err != nil {
		return sinks.Result{}, err
	}
	if a.Key == "" {
		return sinks.Result{}, fmt.Errorf("%s: action has no Key", f.Sink)
	}
	if a.Prior == "" {
		return f.Create(ctx, a, o)
	}
	if !f.IsRef(a.Prior) {
		return sinks.Result{}, fmt.Errorf("%s: prior reference %q is not %s", f.Sink, a.Prior, f.RefIs)
	}
	detail, err := f.Comment(ctx, a)
	if err == nil {
		return sinks.Result{Ref: a.Prior, Detail: detail}, nil
	}
	if !sinkhttp.IsStatus(err, http.StatusNotFound) {
		return sinks.Result{}, err
	}
	res, err := f.Create(ctx, a, o)
	if err != nil {
		return sinks.Result{}, err
	}
	gone := a.Prior
	if f.GoneNoun != "" {
		gone = f.GoneNoun + " " + gone
	}
	res.Detail += " (" + gone + " no longer exists)"
	return res, nil
}
