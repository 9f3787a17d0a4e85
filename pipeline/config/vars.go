package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/caarlos0/env/v10"
)

// Var describes one environment variable, for documentation and for naming it in errors.
type Var struct {
	Name        string
	Default     string
	Description string
	Secret      bool
	// prefix is Name without the field's own key: the Options.Prefix caarlos0/env used for it.
	prefix string
	field  reflect.StructField
}

// Type is the Go type the variable is parsed into.
func (v Var) Type() reflect.Type { return v.field.Type }

// Vars lists every variable of Config in declaration order.
func Vars() []Var {
	return VarsOf(Prefix, reflect.TypeOf(Config{}))
}

// VarsOf lists the variables of any env-tagged struct type under prefix (provider configs use
// it for their own documentation).
func VarsOf(prefix string, t reflect.Type) []Var {
	var out []Var
	walk(t, prefix, &out)
	return out
}

// walk follows caarlos0/env's own traversal: exported fields only; a field's own key first, then,
// for a struct-typed field, its fields under the field's envPrefix (empty for an embedded one).
func walk(t reflect.Type, prefix string, out *[]Var) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if key, _, _ := strings.Cut(f.Tag.Get("env"), ","); key != "" {
			*out = append(*out, Var{
				Name: prefix + key, Default: f.Tag.Get("envDefault"), Description: f.Tag.Get("desc"),
				Secret: f.Tag.Get("secret") == "true", prefix: prefix, field: f,
			})
		}
		if f.Type.Kind() == reflect.Struct {
			walk(f.Type, prefix+f.Tag.Get("envPrefix"), out)
		}
	}
}

// Parse fills v, a pointer to an env-tagged struct, from environ (names to values) with every
// variable under prefix, and reports each value that does not parse naming its variable.
// caarlos0/env names only the Go field of a bad value, and fields share names across prefixes
// (THREATPIPE_PIPELINE_WORKERS and THREATPIPE_ACT_WORKERS are both Workers), so each field of
// that name is parsed again on its own to find which variable holds the bad value.
func Parse(v any, prefix string, environ map[string]string) error {
	err := env.ParseWithOptions(v, env.Options{Prefix: prefix, Environment: environ})
	if err == nil {
		return nil
	}
	return explainParseError(err, VarsOf(prefix, reflect.TypeOf(v)), environ)
}

func explainParseError(err error, vars []Var, environ map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	reported := make(map[string]bool)
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		var fe env.LoadFileContentError
		switch {
		case errors.As(e, &pe):
			found := false
			for _, v := range vars {
				if v.field.Name != pe.Name || v.field.Type != pe.Type || reported[v.Name] {
					continue
				}
				if bad := parseOne(v, environ); bad != nil {
					reported[v.Name], found = true, true
					errs = append(errs, fmt.Errorf("%s: invalid value: %v", v.Name, describe(bad)))
				}
			}
			if !found {
				errs = append(errs, e)
			}
		case errors.As(e, &fe):
			errs = append(errs, fmt.Errorf("%s: cannot read %q: %v", fe.Key, fe.Filename, describe(fe.Err)))
		default:
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// parseOne parses v alone, in a struct holding only its field, and returns the parse error of
// its value, if any.
func parseOne(v Var, environ map[string]string) error {
	one := reflect.New(reflect.StructOf([]reflect.StructField{{Name: "V", Type: v.field.Type, Tag: v.field.Tag}}))
	err := env.ParseWithOptions(one.Interface(), env.Options{Prefix: v.prefix, Environment: environ})
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return nil
	}
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			return pe.Err
		}
	}
	return nil
}

// describe drops strconv's noisy wrapping ("strconv.ParseInt: parsing "x": invalid syntax").
func describe(err error) error {
	var ne *strconv.NumError
	if !errors.As(err, &ne) {
		return err
	}
	switch {
	case ne.Func == "ParseBool":
		return fmt.Errorf("%q is not true or false", ne.Num)
	case errors.Is(ne.Err, strconv.ErrRange):
		return fmt.Errorf("%q is out of range", ne.Num)
	default:
		return fmt.Errorf("%q is not a valid number", ne.Num)
	}
}
