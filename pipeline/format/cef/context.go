package cef

import (
	"encoding/json"
	"strings"

	"github.com/threatpipe/threatpipe/pipeline/format/internal/linefmt"
)

// context builds the scored events' context: the header fields under fixed names, the
// severity's level, then every extension key with its unescaped value, as strings and in line
// order. It is flat rather than nested so that the carried-context limit can leave out single
// large extension fields; an extension key that repeats a header name keeps the header's value.
func context(h [headerFields]string, pairs []pair, size int) json.RawMessage {
	o := linefmt.NewObject(size + 128)
	o.Add("cef_version", strings.TrimSpace(h[0]))
	o.Add("vendor", h[1])
	o.Add("product", h[2])
	o.Add("version", h[3])
	o.Add("signature_id", h[4])
	o.Add("name", h[5])
	o.Add("severity", h[6])
	if level, ok := severityLevel(h[6]); ok {
		o.Add("severity_level", level)
	}
	for _, p := range pairs {
		o.Add(p.key, p.value)
	}
	return o.JSON()
}
