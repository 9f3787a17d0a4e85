package sinks

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// NoParams is the ParamValidator check of a sink that takes no step params: nil for none, else
// one error per key, in sorted order, each saying "<sink>: unknown param "<key>"". sink is the
// error prefix, normally the sink's Name.
func NoParams(sink string, params map[string]string) error {
	if len(params) == 0 {
		return nil
	}
	errs := make([]error, 0, len(params))
	for _, k := range slices.Sorted(maps.Keys(params)) {
		errs = append(errs, fmt.Errorf("%s: unknown param %q (the sink takes none)", sink, k))
	}
	return errors.Join(errs...)
}
