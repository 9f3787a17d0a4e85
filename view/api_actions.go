package view

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/threatpipe/threatpipe/act"
	"github.com/threatpipe/threatpipe/pipeline/allowlist"
	"github.com/threatpipe/threatpipe/view/steer"
)

// The analyst actions' JSON API. Bodies are JSON objects of at most maxActionBody bytes with
// no unknown fields (a misspelt field must not be silently ignored); an action answers its
// audit record: {"record": {...}}. docs/view.md has examples.

// actionError is the body of a refused or failed action.
type actionError struct {
	Error string `json:"error"`
	// Field names the offending input (ip, reason, text, expires_in, on, target, body).
	Field string `json:"field,omitempty"`
	// Record is the failed action's audit record (outcome failed), when it got that far.
	Record *act.Record `json:"record,omitempty"`
}

type actionResult struct {
	Record act.Record `json:"record"`
}

// decodeBody reads r's JSON body into v; an empty body is an empty object.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxActionBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		return bodyError(err)
	}
	return nil
}

// bodyError is a body that cannot be read, as an input error naming the field when it can.
func bodyError(err error) error {
	var ie *steer.InputError
	if errors.As(err, &ie) {
		return ie
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &steer.InputError{Field: "body", Msg: fmt.Sprintf("is larger than %d bytes", maxActionBody)}
	}
	return &steer.InputError{Field: "body", Msg: "is not the expected JSON object: " + err.Error()}
}

// answer writes an action's outcome: status ok with its record, or the error's status.
func (u *UI) answer(w http.ResponseWriter, r *http.Request, ok int, rec act.Record, err error) {
	if err == nil {
		writeJSON(w, ok, actionResult{Record: rec})
		return
	}
	status := actionStatus(r, err)
	body := actionError{Error: u.actionMessage(r, status, err), Field: fieldOf(err)}
	if rec.Step != "" {
		body.Record = &rec
	}
	writeJSON(w, status, body)
}

// refuse answers a request refused before any action (bad path or body).
func (u *UI) refuse(w http.ResponseWriter, r *http.Request, err error) {
	u.answer(w, r, 0, act.Record{}, err)
}

type falsePositiveBody struct {
	Reason    string    `json:"reason"`
	ExpiresIn expiresIn `json:"expires_in"`
}

func (u *UI) apiFalsePositive(w http.ResponseWriter, r *http.Request) {
	var b falsePositiveBody
	var d time.Duration
	ip, err := ipAndBody(w, r, &b)
	if err == nil {
		d, err = parseExpiry(string(b.ExpiresIn))
	}
	if err != nil {
		u.refuse(w, r, err)
		return
	}
	rec, err := u.opts.Steer.FalsePositive(r.Context(), actor(r), ip, b.Reason, d)
	u.answer(w, r, http.StatusOK, rec, err)
}

type reasonBody struct {
	Reason string `json:"reason"`
}

func (u *UI) apiUnblock(w http.ResponseWriter, r *http.Request) {
	var b reasonBody
	ip, err := ipAndBody(w, r, &b)
	if err != nil {
		u.refuse(w, r, err)
		return
	}
	rec, err := u.opts.Steer.Unblock(r.Context(), actor(r), ip, b.Reason)
	u.answer(w, r, http.StatusOK, rec, err)
}

func (u *UI) apiRefresh(w http.ResponseWriter, r *http.Request) {
	ip, err := ipAndBody(w, r, &struct{}{})
	if err != nil {
		u.refuse(w, r, err)
		return
	}
	rec, err := u.opts.Steer.Refresh(r.Context(), actor(r), ip)
	u.answer(w, r, http.StatusOK, rec, err)
}

type noteBody struct {
	Text string `json:"text"`
}

func (u *UI) apiAddNote(w http.ResponseWriter, r *http.Request) {
	var b noteBody
	ip, err := ipAndBody(w, r, &b)
	if err != nil {
		u.refuse(w, r, err)
		return
	}
	rec, err := u.opts.Steer.Note(r.Context(), actor(r), ip, b.Text)
	u.answer(w, r, http.StatusCreated, rec, err)
}

func (u *UI) apiNotes(w http.ResponseWriter, r *http.Request) {
	ip, err := pathIP(r)
	if err != nil {
		u.refuse(w, r, err)
		return
	}
	notes, err := u.opts.Steer.Notes(r.Context(), ip)
	if err != nil {
		u.refuse(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ip": ip, "notes": notes})
}

// ipAndBody reads the {ip} path value and the JSON body into v.
func ipAndBody(w http.ResponseWriter, r *http.Request, v any) (string, error) {
	ip, err := pathIP(r)
	if err != nil {
		return "", err
	}
	return ip, decodeBody(w, r, v)
}

type killSwitchBody struct {
	On     *bool  `json:"on"`
	Reason string `json:"reason"`
}

func (u *UI) apiKillSwitch(w http.ResponseWriter, r *http.Request) {
	on, err := u.opts.Steer.KillSwitch(r.Context())
	if err != nil {
		u.refuse(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"on": on})
}

func (u *UI) apiSetKillSwitch(w http.ResponseWriter, r *http.Request) {
	var b killSwitchBody
	err := decodeBody(w, r, &b)
	if err == nil && b.On == nil {
		err = &steer.InputError{Field: "on", Msg: "is required (true or false)"}
	}
	if err != nil {
		u.refuse(w, r, err)
		return
	}
	rec, err := u.opts.Steer.SetKillSwitch(r.Context(), actor(r), *b.On, b.Reason)
	u.answer(w, r, http.StatusOK, rec, err)
}

func (u *UI) apiAllowlist(w http.ResponseWriter, r *http.Request) {
	entries, err := u.opts.Steer.Allowlist(r.Context())
	if err != nil {
		u.refuse(w, r, err)
		return
	}
	if entries == nil {
		entries = []allowlist.Entry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}

type allowlistBody struct {
	Target    string    `json:"target"`
	Reason    string    `json:"reason"`
	ExpiresIn expiresIn `json:"expires_in"`
}

func (u *UI) apiAllowlistAdd(w http.ResponseWriter, r *http.Request) {
	var b allowlistBody
	err := decodeBody(w, r, &b)
	var d time.Duration
	if err == nil {
		d, err = parseExpiry(string(b.ExpiresIn))
	}
	if err != nil {
		u.refuse(w, r, err)
		return
	}
	rec, err := u.opts.Steer.AllowlistAdd(r.Context(), actor(r), b.Target, b.Reason, d)
	u.answer(w, r, http.StatusCreated, rec, err)
}

func (u *UI) apiAllowlistRemove(w http.ResponseWriter, r *http.Request) {
	var b reasonTargetBody
	if err := decodeBody(w, r, &b); err != nil {
		u.refuse(w, r, err)
		return
	}
	rec, err := u.opts.Steer.AllowlistRemove(r.Context(), actor(r), b.Target, b.Reason)
	u.answer(w, r, http.StatusOK, rec, err)
}

type reasonTargetBody struct {
	Target string `json:"target"`
	Reason string `json:"reason"`
}
