package config

import (
	"slices"
	"strings"
	"testing"
)

func TestLedgerRedis(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      []string
		addrs    []string
		db       int
		separate bool
	}{
		{"default: the cache's", nil, []string{"127.0.0.1:6379"}, 0, false},
		{"the cache's database", []string{"THREATPIPE_REDIS_DB=3"}, []string{"127.0.0.1:6379"}, 3, false},
		{"a database of its own", []string{"THREATPIPE_ACT_REDIS_DB=1"}, []string{"127.0.0.1:6379"}, 1, true},
		{"a server of its own", []string{"THREATPIPE_REDIS_DB=2", "THREATPIPE_ACT_REDIS_ADDR=ledger:6380"}, []string{"ledger:6380"}, 2, true},
		{"the same named twice", []string{"THREATPIPE_ACT_REDIS_ADDR=127.0.0.1:6379", "THREATPIPE_ACT_REDIS_DB=0"}, []string{"127.0.0.1:6379"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(append([]string{"THREATPIPE_REDIS_PASSWORD=s3cret"}, tc.env...))
			if err != nil {
				t.Fatal(err)
			}
			l := c.LedgerRedis()
			if !slices.Equal(l.Addrs, tc.addrs) || l.DB != tc.db || c.SeparateLedgerRedis() != tc.separate {
				t.Errorf("ledger redis %v db %d separate %v; want %v %d %v", l.Addrs, l.DB, c.SeparateLedgerRedis(), tc.addrs, tc.db, tc.separate)
			}
			if l.Password.Reveal() != "s3cret" || l.KeyPrefix != c.Redis.KeyPrefix {
				t.Errorf("credentials or prefix not shared: %+v", l)
			}
		})
	}
}

func TestLedgerRedisErrorsNameTheVariable(t *testing.T) {
	for env, name := range map[string]string{
		"THREATPIPE_ACT_REDIS_ADDR=nohostport": "THREATPIPE_ACT_REDIS_ADDR",
		"THREATPIPE_ACT_REDIS_DB=-2":           "THREATPIPE_ACT_REDIS_DB",
		"THREATPIPE_ACT_REDIS_DB=x":            "THREATPIPE_ACT_REDIS_DB",
	} {
		if _, err := Load([]string{env}); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want an error naming %s", env, err, name)
		}
	}
	_, err := Load([]string{"THREATPIPE_ACT_REDIS_ADDR=a:7000,b:7000", "THREATPIPE_ACT_REDIS_DB=1"})
	if err == nil || !strings.Contains(err.Error(), "THREATPIPE_ACT_REDIS_DB") {
		t.Errorf("database 1 of a Cluster: %v", err)
	}
}
