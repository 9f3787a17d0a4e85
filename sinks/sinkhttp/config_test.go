package sinkhttp

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/threatpipe/threatpipe/pipeline/config"
)

const testPrefix = "THREATPIPE_SINK_TEST_"

// sinkConfig embeds PolicyConfig the way sink packages do.
type sinkConfig struct {
	URL string `env:"URL" desc:"endpoint"`
	PolicyConfig
}

func TestPolicyConfigParse(t *testing.T) {
	for _, tt := range []struct {
		name           string
		vars           map[string]string
		attempt, total time.Duration
	}{
		{"defaults", nil, 10 * time.Second, 30 * time.Second},
		{"set", map[string]string{testPrefix + "ATTEMPT_TIMEOUT": "2s", testPrefix + "RETRY_BUDGET": "1m"}, 2 * time.Second, time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c sinkConfig
			if err := env.ParseWithOptions(&c, env.Options{Prefix: testPrefix, Environment: tt.vars}); err != nil {
				t.Fatal(err)
			}
			if c.AttemptTimeout != tt.attempt || c.RetryBudget != tt.total {
				t.Fatalf("parsed %+v", c.PolicyConfig)
			}
			if err := c.Validate(testPrefix); err != nil {
				t.Fatal(err)
			}
			if p := c.Policy(); p != (Policy{AttemptTimeout: tt.attempt, RetryBudget: tt.total}) {
				t.Fatalf("policy %+v", p)
			}
		})
	}
}

func TestPolicyConfigVars(t *testing.T) {
	vars := config.VarsOf(testPrefix, reflect.TypeFor[sinkConfig]())
	var names []string
	for _, v := range vars {
		names = append(names, v.Name)
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
	}
	want := []string{testPrefix + "URL", testPrefix + "ATTEMPT_TIMEOUT", testPrefix + "RETRY_BUDGET"}
	if !slices.Equal(names, want) {
		t.Fatalf("vars %v, want %v", names, want)
	}
}

func TestPolicyConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		attempt, total time.Duration
		want           []string // variables the error names; none: valid
	}{
		{time.Second, time.Second, nil},
		{time.Second, time.Minute, nil},
		{0, time.Minute, []string{"ATTEMPT_TIMEOUT: must be greater than zero"}},
		{-time.Second, 0, []string{"ATTEMPT_TIMEOUT: must be greater than zero"}},
		{10 * time.Second, 5 * time.Second, []string{"RETRY_BUDGET: must be at least " + testPrefix + "ATTEMPT_TIMEOUT (10s)"}},
		{time.Second, 0, []string{"RETRY_BUDGET"}},
	} {
		err := PolicyConfig{AttemptTimeout: tt.attempt, RetryBudget: tt.total}.Validate(testPrefix)
		if len(tt.want) == 0 {
			if err != nil {
				t.Errorf("%s/%s: %v", tt.attempt, tt.total, err)
			}
			continue
		}
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), testPrefix+w) {
				t.Errorf("%s/%s: got %v, want %s%s", tt.attempt, tt.total, err, testPrefix, w)
			}
		}
	}
}

func TestCheckURL(t *testing.T) {
	const name = testPrefix + "URL"
	for _, tt := range []struct {
		raw        string
		url, base  string // the error each check gives; "" for none
		secretPart string // must not show in the error
	}{
		{"https://example.atlassian.net", "", "", ""},
		{"https://example.com/api/v1", "", "", ""},
		{"https://hooks.slack.com/services/T0/B0/s3cret", "", "", "s3cret"},
		{"https://receiver.example/hook?token=s3cret", "", "must not have a query", "s3cret"},
		{"https://receiver.example/hook?", "", "must not have a query", ""},
		{"http://127.0.0.1:8080", "", "", ""},
		{"http://localhost:9/x", "", "", ""},
		{"http://[::1]:80", "", "", ""},
		{"", "must not be empty", "must not be empty", ""},
		{"http://example.com/s3cret", "must be an https URL", "must be an https URL", "s3cret"},
		{"http://127.0.0.1.nip.io/", "must be an https URL", "must be an https URL", ""},
		{"ftp://example.com/", "must be an https URL", "must be an https URL", ""},
		{"example.com/s3cret", "must be an absolute https URL", "must be an absolute https URL", "s3cret"},
		{"https:s3cret", "must be an absolute https URL", "must be an absolute https URL", "s3cret"},
		{"https://bob:s3cret@example.com", "must not contain user information", "must not contain user information", "s3cret"},
		{"https://example.com/#s3cret", "must not have a fragment", "must not have a fragment", "s3cret"},
		{"https://example.com/x#", "must not have a fragment", "must not have a fragment", ""},
		{"%zzs3cret", "is not a URL", "is not a URL", "s3cret"},
	} {
		for _, c := range []struct {
			name  string
			check func(string, string) error
			want  string
		}{{"CheckURL", CheckURL, tt.url}, {"CheckBaseURL", CheckBaseURL, tt.base}} {
			err := c.check(name, tt.raw)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("%s(%q): %v", c.name, tt.raw, err)
			case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), name+": "+c.want)):
				t.Errorf("%s(%q): got %v, want %q", c.name, tt.raw, err, c.want)
			case err != nil && tt.secretPart != "" && strings.Contains(err.Error(), tt.secretPart):
				t.Errorf("%s(%q): error quotes the URL: %v", c.name, tt.raw, err)
			}
		}
	}
}

func TestCheckHeaderSecret(t *testing.T) {
	const name = testPrefix + "TOKEN"
	for _, tt := range []struct {
		value string
		ok    bool
	}{
		{"ATATT3xFfGF0-t0ken_0123456789=", true},
		{"", true}, // whether it must be set is the caller's to say
		{"s3cret\n", false},
		{"s3cret with space", false},
		{"s3cret\t", false},
		{"s3cret\x7f", false},
		{"s3cret\x00", false},
	} {
		err := CheckHeaderSecret(name, tt.value)
		switch {
		case tt.ok && err != nil:
			t.Errorf("%q: %v", tt.value, err)
		case !tt.ok && (err == nil || !strings.HasPrefix(err.Error(), name+": ")):
			t.Errorf("%q: got %v, want an error naming %s", tt.value, err, name)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("error quotes the secret: %v", err)
		}
	}
}
