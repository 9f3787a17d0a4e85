// Package linefmt holds what the line input formats (pipeline/format/cef, pipeline/format/kv)
// share: the JSON object their context is written as, the syslog header many of their lines
// arrive behind, and the time spellings they carry. It is internal: the formats are the API.
package linefmt
