package redisx

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/pipelinetest"
)

func secureConfig(t *testing.T, s *pipelinetest.Secure, overrides ...string) *config.Redis {
	t.Helper()
	c, err := config.Load(s.Env(append([]string{"THREATPIPE_REDIS_DIAL_TIMEOUT=1s"}, overrides...)...))
	if err != nil {
		t.Fatal(err)
	}
	return &c.Redis
}

// TestSecuredRedis runs threatpipe's client against the TLS-only Redis (client certificate
// required, ACL user, default user off): a write, a read and a Lua script, as the cache and the
// ledger do.
func TestSecuredRedis(t *testing.T) {
	s := pipelinetest.SecureServices(t)
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"CA, client certificate and ACL user", nil},
		{"server name", []string{"THREATPIPE_REDIS_TLS_SERVER_NAME=localhost"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := secureConfig(t, s, tc.env...)
			client := New(cfg)
			defer client.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := CheckSettings(ctx, client, cfg); err != nil {
				t.Fatalf("check settings: %v", err)
			}
			key := pipelinetest.Name(t, "k")
			if err := client.Set(ctx, key, "v", time.Minute).Err(); err != nil {
				t.Fatalf("set: %v", err)
			}
			got, err := client.Eval(ctx, "return redis.call('GET', KEYS[1])", []string{key}).Text()
			if err != nil || got != "v" {
				t.Fatalf("eval get = %q, %v", got, err)
			}
			if err := Ping(client)(ctx); err != nil {
				t.Errorf("readiness: %v", err)
			}
			// The default user is off: the same server without credentials refuses.
			anon := secureConfig(t, s, tc.env...)
			anon.Username, anon.Password = "", ""
			anonClient := New(anon)
			defer anonClient.Close()
			if err := anonClient.Get(ctx, key).Err(); err == nil {
				t.Error("a client without the ACL user's credentials could read")
			}
		})
	}
}

// TestSecuredRedisBadSettingsNamed checks that every setting the secured Redis cannot accept is
// reported by CheckSettings with the variable to fix.
func TestSecuredRedisBadSettingsNamed(t *testing.T) {
	s := pipelinetest.SecureServices(t)
	for _, tc := range []struct {
		name, want string
		env        []string
	}{
		{"wrong password", "THREATPIPE_REDIS_PASSWORD", []string{"THREATPIPE_REDIS_PASSWORD=wrong"}},
		{"unknown user", "THREATPIPE_REDIS_PASSWORD", []string{"THREATPIPE_REDIS_USERNAME=nobody"}},
		{"no credentials", "THREATPIPE_REDIS_PASSWORD", []string{"THREATPIPE_REDIS_USERNAME=", "THREATPIPE_REDIS_PASSWORD="}},
		{"untrusted CA", "THREATPIPE_REDIS_TLS_CA_FILE", []string{"THREATPIPE_REDIS_TLS_CA_FILE=" + pipelinetest.UntrustedCA(t)}},
		{"wrong server name", "THREATPIPE_REDIS_TLS_SERVER_NAME", []string{"THREATPIPE_REDIS_TLS_SERVER_NAME=redis.example.org"}},
		{"no client certificate", "THREATPIPE_REDIS_TLS_CERT_FILE", []string{"THREATPIPE_REDIS_TLS_CERT_FILE=", "THREATPIPE_REDIS_TLS_KEY_FILE="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := secureConfig(t, s, tc.env...)
			client := New(cfg)
			defer client.Close()
			start := time.Now()
			err := CheckSettings(context.Background(), client, cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
				t.Fatalf("CheckSettings = %v, want an error starting with %s", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s to report it", d)
			}
			if strings.Contains(err.Error(), s.Var("REDIS_PASSWORD")) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	cfg := secureConfig(t, s, "THREATPIPE_REDIS_ADDR=127.0.0.1:1")
	client := New(cfg)
	defer client.Close()
	if err := CheckSettings(context.Background(), client, cfg); err != nil {
		t.Errorf("a closed port must not be a settings error: %v", err)
	}
}
