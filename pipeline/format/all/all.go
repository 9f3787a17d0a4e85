// Package all registers every input format threatpipe reads besides the built-in native and ECS
// events (pipeline/event). Adding a format is one package under pipeline/format and one line
// here; the order is the order auto mode sniffs in.
package all

import (
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/format/cef"
	"github.com/threatpipe/threatpipe/pipeline/format/eve"
	"github.com/threatpipe/threatpipe/pipeline/format/kv"
	"github.com/threatpipe/threatpipe/pipeline/format/zeek"
)

// Formats returns a decoder of every registered format, in sniff order.
func Formats() []event.FormatDecoder {
	return []event.FormatDecoder{
		eve.New(),
		zeek.New(),
		cef.New(),
		kv.New(),
	}
}

// Names lists the values THREATPIPE_KAFKA_INPUT_FORMAT accepts.
func Names() []string {
	names := []string{string(event.AutoFormat), string(event.FormatNative), string(event.FormatECS)}
	for _, f := range Formats() {
		names = append(names, string(f.Name()))
	}
	return names
}
