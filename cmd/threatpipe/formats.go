package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/threatpipe/threatpipe/pipeline/config"
	formats "github.com/threatpipe/threatpipe/pipeline/format/all"
)

// checkInputFormat names THREATPIPE_KAFKA_INPUT_FORMAT when it is not a format threatpipe reads.
func checkInputFormat(cfg *config.Config) error {
	if f := cfg.Kafka.InputFormat; !slices.Contains(formats.Names(), f) {
		return fmt.Errorf("%sKAFKA_INPUT_FORMAT: unknown format %q (one of %s)", config.Prefix, f, strings.Join(formats.Names(), ", "))
	}
	return nil
}
