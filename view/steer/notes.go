package steer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/threatpipe/threatpipe/act"
)

// Notes are capped per indicator and forgotten a while after the last one: the view's store
// forgets indicators too, and notes must not keep Redis growing.
const (
	MaxNotes     = 100
	notesRetain  = 180 * 24 * time.Hour
	notePreview  = 200 // characters of a note in its audit record
	notesKeyPart = ":view:notes:"
)

// Note is an analyst's note on an indicator.
type Note struct {
	Author string    `json:"author"`
	Role   string    `json:"role,omitempty"`
	Text   string    `json:"text"`
	At     time.Time `json:"at"`
}

func (s *Service) notesKey(ip string) string { return s.o.Prefix + notesKeyPart + ip }

// Note adds who's note on ip (at most MaxNote characters); the newest MaxNotes are kept.
func (s *Service) Note(ctx context.Context, who Actor, ip, body string) (act.Record, error) {
	if err := who.check(); err != nil {
		return act.Record{}, err
	}
	ip, err := address(ip)
	if err != nil {
		return act.Record{}, err
	}
	if body, err = text("text", body, MaxNote); err != nil {
		return act.Record{}, err
	}
	now := s.o.Now()
	raw, err := json.Marshal(Note{Author: who.Name, Role: who.Role, Text: body, At: now.UTC()})
	if err != nil {
		return act.Record{}, fmt.Errorf("steer: encode note: %w", err)
	}
	key := s.notesKey(ip)
	_, err = s.o.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, key, raw)
		p.LTrim(ctx, key, 0, MaxNotes-1)
		p.Expire(ctx, key, notesRetain)
		return nil
	})
	if err != nil {
		err = fmt.Errorf("steer: note on %s: %w", ip, err)
	}
	return s.finish(ctx, who, StepNote, ip, preview(body), now, err)
}

// Notes returns the notes on ip, newest first.
func (s *Service) Notes(ctx context.Context, ip string) ([]Note, error) {
	ip, err := address(ip)
	if err != nil {
		return nil, err
	}
	vals, err := s.o.Redis.LRange(ctx, s.notesKey(ip), 0, MaxNotes-1).Result()
	if err != nil {
		return nil, fmt.Errorf("steer: notes on %s: %w", ip, err)
	}
	notes := make([]Note, 0, len(vals))
	for _, v := range vals {
		var n Note
		if json.Unmarshal([]byte(v), &n) == nil { // one bad entry must not hide the others
			notes = append(notes, n)
		}
	}
	return notes, nil
}

// preview is a note as its audit record carries it: the first notePreview characters.
func preview(s string) string {
	r := []rune(s)
	if len(r) <= notePreview {
		return s
	}
	return string(r[:notePreview]) + "…"
}
