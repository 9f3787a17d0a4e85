// Package produce publishes JSON lines to a Kafka topic: the `threatpipe produce` command, used
// to replay SIEM exports, seed tests and drive demos.
package produce

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Writer is the part of *kafka.Writer the producer uses (synchronous writes).
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Options control a run.
type Options struct {
	Topic string
	// BatchSize is how many lines are written per produce call.
	BatchSize int
	// MaxLineBytes rejects longer lines.
	MaxLineBytes int
	// AllowInvalid sends lines that are not JSON objects anyway (to exercise a dead-letter path)
	// instead of rejecting them.
	AllowInvalid bool
	// KeyField, if set, is a dotted path into each line's JSON whose string value becomes the
	// message key (e.g. indicator.value).
	KeyField string
	// Progress, if set, is called about every ProgressEvery with the running totals.
	Progress      func(Stats)
	ProgressEvery time.Duration
}

// Stats are a run's totals.
type Stats struct {
	Lines    int64 // non-blank lines read
	Produced int64 // acknowledged by Kafka
	Rejected int64 // reported to the error writer and not sent
	Elapsed  time.Duration
}

// LineError describes one rejected line.
type LineError struct {
	Line   int64
	Reason string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Run reads r line by line and publishes each JSON line as one message. Each rejected line is
// reported to errOut as it is met; the run continues. It returns the totals and the first write
// or read error.
func Run(ctx context.Context, r io.Reader, w Writer, opts Options, errOut io.Writer) (Stats, error) {
	start := time.Now()
	var st Stats
	br := bufio.NewReaderSize(r, 64<<10)
	batch := make([]kafka.Message, 0, opts.BatchSize)
	lastProgress := start
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return fmt.Errorf("write %d messages to %s: %w", len(batch), opts.Topic, err)
		}
		st.Produced += int64(len(batch))
		batch = batch[:0]
		if opts.Progress != nil && time.Since(lastProgress) >= opts.ProgressEvery {
			lastProgress = time.Now()
			st.Elapsed = time.Since(start)
			opts.Progress(st)
		}
		return nil
	}
	var lineNo int64
	for {
		line, tooLong, readErr := readLine(br, opts.MaxLineBytes)
		if readErr == nil || len(line) > 0 || tooLong {
			lineNo++
		}
		if tooLong {
			st.Lines++
			st.Rejected++
			fmt.Fprintln(errOut, (&LineError{Line: lineNo, Reason: fmt.Sprintf("longer than %d bytes; skipped", opts.MaxLineBytes)}).Error())
		} else if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			st.Lines++
			if msg, err := message(trimmed, lineNo, opts); err != nil {
				st.Rejected++
				fmt.Fprintln(errOut, err.Error())
			} else {
				batch = append(batch, msg)
				if len(batch) >= opts.BatchSize {
					if err := flush(); err != nil {
						st.Elapsed = time.Since(start)
						return st, err
					}
				}
			}
		}
		if readErr != nil {
			err := flush()
			st.Elapsed = time.Since(start)
			if errors.Is(readErr, io.EOF) {
				return st, err
			}
			return st, errors.Join(fmt.Errorf("read input: %w", readErr), err)
		}
	}
}

func message(line []byte, lineNo int64, opts Options) (kafka.Message, error) {
	value := append([]byte(nil), line...)
	msg := kafka.Message{Topic: opts.Topic, Value: value}
	var obj map[string]json.RawMessage
	var reason string
	switch {
	case !json.Valid(value):
		reason = "invalid JSON: " + json.Unmarshal(value, new(any)).Error()
	case json.Unmarshal(value, &obj) != nil || obj == nil:
		reason = "not a JSON object"
	}
	if reason != "" {
		if opts.AllowInvalid {
			return msg, nil
		}
		return msg, &LineError{Line: lineNo, Reason: reason + " (use --allow-invalid to send it anyway)"}
	}
	if opts.KeyField != "" {
		if key, ok := lookup(obj, opts.KeyField); ok {
			msg.Key = []byte(key)
		}
	}
	return msg, nil
}

// lookup follows a dotted path of object keys to a string value.
func lookup(obj map[string]json.RawMessage, path string) (string, bool) {
	head, rest, nested := strings.Cut(path, ".")
	raw, ok := obj[head]
	if !ok {
		return "", false
	}
	if !nested {
		var s string
		return s, json.Unmarshal(raw, &s) == nil
	}
	var inner map[string]json.RawMessage
	if json.Unmarshal(raw, &inner) != nil {
		return "", false
	}
	return lookup(inner, rest)
}

// readLine returns the next line without its line ending (LF or CRLF). A line whose content
// is over max bytes is consumed and reported as tooLong rather than failing the whole run.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		// Keep up to max content bytes plus a CRLF; the exact length is checked at the end.
		if !tooLong && len(buf)+len(chunk) <= max+2 {
			buf = append(buf, chunk...)
		} else {
			tooLong, buf = true, nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		buf = bytes.TrimSuffix(bytes.TrimSuffix(buf, []byte("\n")), []byte("\r"))
		if len(buf) > max {
			tooLong, buf = true, nil
		}
		return buf, tooLong, err
	}
}
