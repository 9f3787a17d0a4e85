package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type parseInner struct {
	Workers int           `env:"WORKERS" envDefault:"1"`
	Every   time.Duration `env:"EVERY" envDefault:"1s"`
}

type ParseEmbedded struct {
	Workers int `env:"EMBEDDED_WORKERS" envDefault:"1"`
}

type parseOuter struct {
	A       parseInner `envPrefix:"A_"`
	B       parseInner `envPrefix:"B_"`
	On      bool       `env:"ON" envDefault:"false"`
	Key     Secret     `env:"KEY_FILE,file"`
	private int        // unexported: env skips it, and so must VarsOf
	ParseEmbedded
}

func TestParseNamesTheVariableOfSharedFieldNames(t *testing.T) {
	for _, tc := range []struct {
		env       map[string]string
		want, not []string
	}{
		{map[string]string{"X_A_WORKERS": "abc"}, []string{`X_A_WORKERS: invalid value: "abc" is not a valid number`}, []string{"X_B_WORKERS", "EMBEDDED"}},
		{map[string]string{"X_B_WORKERS": "abc"}, []string{"X_B_WORKERS: invalid value"}, []string{"X_A_WORKERS", "EMBEDDED"}},
		{map[string]string{"X_EMBEDDED_WORKERS": "abc"}, []string{"X_EMBEDDED_WORKERS: invalid value"}, []string{"X_A_WORKERS", "X_B_WORKERS"}},
		{map[string]string{"X_A_WORKERS": "1", "X_B_WORKERS": "x", "X_EMBEDDED_WORKERS": "y"}, []string{`X_B_WORKERS: invalid value: "x"`, `X_EMBEDDED_WORKERS: invalid value: "y"`}, []string{"X_A_WORKERS"}},
		{map[string]string{"X_A_EVERY": "5 parsecs"}, []string{"X_A_EVERY: invalid value", "parsecs"}, []string{"X_B_EVERY"}},
		{map[string]string{"X_ON": "maybe"}, []string{`X_ON: invalid value: "maybe" is not true or false`}, nil},
		{map[string]string{"X_A_WORKERS": "99999999999999999999"}, []string{"X_A_WORKERS", "out of range"}, nil},
		{map[string]string{"X_KEY_FILE": "/nonexistent/key"}, []string{`X_KEY_FILE: cannot read "/nonexistent/key"`}, nil},
	} {
		var out parseOuter
		err := Parse(&out, "X_", tc.env)
		if err == nil {
			t.Errorf("%v: Parse accepted it", tc.env)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", tc.env, err, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(err.Error(), n) {
				t.Errorf("%v: error %q names %s, which is valid", tc.env, err, n)
			}
		}
	}
}

func TestParseValid(t *testing.T) {
	var out parseOuter
	if err := Parse(&out, "X_", map[string]string{"X_A_WORKERS": "3", "X_B_EVERY": "2m", "X_ON": "true"}); err != nil {
		t.Fatal(err)
	}
	if out.A.Workers != 3 || out.B.Workers != 1 || out.B.Every != 2*time.Minute || !out.On || out.Workers != 1 {
		t.Errorf("parsed %+v", out)
	}
}

func TestVarsOfFollowsTheParser(t *testing.T) {
	var names []string
	for _, v := range VarsOf("X_", reflect.TypeFor[parseOuter]()) {
		names = append(names, v.Name)
	}
	want := "X_A_WORKERS X_A_EVERY X_B_WORKERS X_B_EVERY X_ON X_KEY_FILE X_EMBEDDED_WORKERS"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("VarsOf = %s, want %s", got, want)
	}
}

func TestLoadNamesPipelineWorkersNotActWorkers(t *testing.T) {
	for _, name := range []string{"THREATPIPE_PIPELINE_WORKERS", "THREATPIPE_ACT_WORKERS", "THREATPIPE_PIPELINE_MAX_IN_FLIGHT", "THREATPIPE_ACT_MAX_IN_FLIGHT", "THREATPIPE_KAFKA_TLS_ENABLED", "THREATPIPE_REDIS_TLS_ENABLED"} {
		_, err := Load([]string{name + "=abc"})
		if err == nil || !strings.HasPrefix(err.Error(), name+": invalid value") {
			t.Errorf("%s=abc: error %v, want it to start with %s", name, err, name)
		}
	}
}
