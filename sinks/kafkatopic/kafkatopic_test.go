package kafkatopic

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/sinks"
	"github.com/threatpipe/threatpipe/sinks/webhook"
)

func TestDoPublishesThePayloadKeyedByTarget(t *testing.T) {
	type sent struct {
		topic, key string
		value      []byte
	}
	var got []sent
	s := &Sink{topic: "soc.alerts", produce: func(_ context.Context, topic, key string, value []byte) error {
		got = append(got, sent{topic, key, value})
		return nil
	}}
	a := &sinks.Action{Key: "tpa-1", Playbook: "critical", Step: "page", Kind: sinks.KindAlert, Target: "185.220.101.7",
		Score: 92, Severity: event.SeverityCritical, Tags: []string{"tor"}, Title: "threatpipe: 185.220.101.7 scored 92 (critical)"}
	res, err := s.Do(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].topic != "soc.alerts" || got[0].key != "185.220.101.7" {
		t.Fatalf("published %+v", got)
	}
	var p webhook.Payload
	if err := json.Unmarshal(got[0].value, &p); err != nil {
		t.Fatal(err)
	}
	if p.Action != webhook.ActionAlert || p.Key != "tpa-1" || p.Target != a.Target || p.Score != 92 || p.Reasons == nil {
		t.Fatalf("payload %+v", p)
	}
	if !strings.Contains(res.Detail, "soc.alerts") {
		t.Errorf("detail %q", res.Detail)
	}
}

func TestDoReportsPublishFailure(t *testing.T) {
	s := &Sink{topic: "t", produce: func(context.Context, string, string, []byte) error { return errors.New("broker down") }}
	_, err := s.Do(context.Background(), &sinks.Action{Target: "185.220.101.7", Until: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "broker down") {
		t.Fatalf("err = %v", err)
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []struct {
		cfg     Config
		wantErr string
	}{
		{Config{Enabled: true, Topic: "soc.alerts"}, ""},
		{Config{Enabled: true, Topic: "bad topic"}, "THREATPIPE_SINK_KAFKA_TOPIC"},
		{Config{Enabled: false, Topic: "bad topic"}, ""},
	} {
		err := c.cfg.Resolve()
		if (err == nil) != (c.wantErr == "") || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%+v: err = %v, want %q", c.cfg, err, c.wantErr)
		}
	}
	if err := (&Sink{}).ValidateParams(map[string]string{"x": "y"}); err == nil {
		t.Error("params accepted")
	}
}

func TestValidateParamsListsEveryKey(t *testing.T) {
	err := (&Sink{}).ValidateParams(map[string]string{"x": "y", "partition": "1"})
	if err == nil || !strings.Contains(err.Error(), `kafka sink: unknown param "partition"`) || !strings.Contains(err.Error(), `kafka sink: unknown param "x"`) {
		t.Fatalf("err = %v", err)
	}
	if err := (&Sink{}).ValidateParams(nil); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsArePrefixed(t *testing.T) {
	called := false
	s := &Sink{topic: "t", produce: func(context.Context, string, string, []byte) error { called = true; return errors.New("broker down") }}
	if _, err := s.Do(context.Background(), nil); err == nil || err.Error() != "kafka sink: nil action" {
		t.Fatalf("nil action: %v", err)
	}
	if called {
		t.Fatal("published a nil action")
	}
	if _, err := s.Do(context.Background(), &sinks.Action{Target: "185.220.101.7"}); err == nil || !strings.HasPrefix(err.Error(), "kafka sink: ") {
		t.Fatalf("publish failure: %v", err)
	}
}
