// Package hostile is the hostile input corpus: input messages that SIEM traffic, broken producers
// and attackers send (deep nesting in every field, thousands of addresses in one event, 300 KB
// documents, invalid UTF-8, numbers no parser can hold, every odd spelling of an address), each
// with what threatpipe must make of it, and the checks that every record threatpipe publishes
// parses with the strict standard parsers (Go's encoding/json and Python's json).
//
// The decoder's tests run the corpus through the decoder and encoder; the end-to-end test in
// cmd/threatpipe runs it through a real enricher on a real broker and measures its memory.
package hostile

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Item is one input message of the corpus and what it must become.
type Item struct {
	Name string
	// Ordinary marks an everyday event mixed into the corpus: it must be scored, whatever the
	// hostile items around it do.
	Ordinary bool
	Value    []byte
	Want     Want
}

// Want is the outcome an item must have. Every item has one: scored events for exactly the
// indicators in Scored, a dead letter of class DeadLetter, or both (an event over the indicator
// limit has its first indicators scored and is dead-lettered for the rest).
type Want struct {
	// Scored are the canonical indicator values the item's scored events name, in order.
	Scored []string
	// DeadLetter is the error class of its dead letter; "" when it has none.
	DeadLetter string
	// ContextTruncated says its scored events carry a cut context (context_truncated set)
	// under the default THREATPIPE_PIPELINE_MAX_CONTEXT_BYTES.
	ContextTruncated bool
}

// Hostile reports whether the item is one of the hostile ones.
func (it Item) Hostile() bool { return !it.Ordinary }

//go:embed testdata/corpus.jsonl
var committed []byte

// committedItem is one line of testdata/corpus.jsonl.
type committedItem struct {
	Name       string   `json:"name"`
	Text       *string  `json:"text"`
	Base64     string   `json:"base64"`
	Scored     []string `json:"scored"`
	DeadLetter string   `json:"dead_letter"`
	Truncated  bool     `json:"context_truncated"`
}

// Committed returns the items of testdata/corpus.jsonl: the odd address forms, invalid UTF-8,
// awkward text and numbers, and the nesting limit's edges.
func Committed() ([]Item, error) {
	var out []Item
	sc := bufio.NewScanner(bytes.NewReader(committed))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 || raw[0] == '#' {
			continue
		}
		var c committedItem
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("corpus.jsonl:%d: %w", line, err)
		}
		it := Item{Name: c.Name, Want: Want{Scored: c.Scored, DeadLetter: c.DeadLetter, ContextTruncated: c.Truncated}}
		switch {
		case c.Text != nil:
			it.Value = []byte(*c.Text)
		default:
			v, err := base64.StdEncoding.DecodeString(c.Base64)
			if err != nil {
				return nil, fmt.Errorf("corpus.jsonl:%d: base64: %w", line, err)
			}
			it.Value = v
		}
		if it.Name == "" || (len(it.Want.Scored) == 0 && it.Want.DeadLetter == "") {
			return nil, fmt.Errorf("corpus.jsonl:%d: an item needs a name and an outcome", line)
		}
		out = append(out, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("corpus.jsonl: %w", err)
	}
	return out, nil
}

// Corpus returns the whole corpus: the committed items, then the generated ones, with unique
// names.
func Corpus() ([]Item, error) {
	items, err := Committed()
	if err != nil {
		return nil, err
	}
	items = append(items, Generated()...)
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if seen[it.Name] {
			return nil, fmt.Errorf("corpus: item %q twice", it.Name)
		}
		seen[it.Name] = true
	}
	return items, nil
}
