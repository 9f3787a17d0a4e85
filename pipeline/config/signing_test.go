package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSigningKeys(t *testing.T) {
	const key, other = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     []string
		wantErr string // "" means valid
		key     string
	}{
		{"none", nil, "", ""},
		{"key", []string{"THREATPIPE_SIGNING_KEY=" + key}, "", key},
		{"key from a file, newline trimmed", []string{"THREATPIPE_SIGNING_KEY_FILE=" + file}, "", key},
		{"both key and file", []string{"THREATPIPE_SIGNING_KEY=" + key, "THREATPIPE_SIGNING_KEY_FILE=" + file}, "THREATPIPE_SIGNING_KEY and THREATPIPE_SIGNING_KEY_FILE are both set", ""},
		{"short key", []string{"THREATPIPE_SIGNING_KEY=short"}, "THREATPIPE_SIGNING_KEY: must be at least 32 characters", ""},
		{"rotation", []string{"THREATPIPE_SIGNING_KEY=" + key, "THREATPIPE_SIGNING_PREVIOUS_KEY=" + other}, "", key},
		{"short previous key", []string{"THREATPIPE_SIGNING_KEY=" + key, "THREATPIPE_SIGNING_PREVIOUS_KEY=short"}, "THREATPIPE_SIGNING_PREVIOUS_KEY: must be at least 32", ""},
		{"previous key alone", []string{"THREATPIPE_SIGNING_PREVIOUS_KEY=" + other}, "THREATPIPE_SIGNING_PREVIOUS_KEY: is a second key besides THREATPIPE_SIGNING_KEY", ""},
		{"the same key twice", []string{"THREATPIPE_SIGNING_KEY=" + key, "THREATPIPE_SIGNING_PREVIOUS_KEY=" + key}, "make them differ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load: %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), key) {
					t.Errorf("the error reveals the key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Signing.Key.Reveal() != tt.key || !c.Act.RequireSignature {
				t.Errorf("key %q, require %v", c.Signing.Key.Reveal(), c.Act.RequireSignature)
			}
		})
	}
}
