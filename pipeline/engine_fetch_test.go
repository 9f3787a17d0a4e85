package pipeline

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
)

// A broker restart fails fetches for a while: the engine waits it out and goes on consuming,
// rather than exit and leave the pipeline down (every replica at once).
func TestFetchRidesOutUnreachableBrokers(t *testing.T) {
	msgs := []kafka.Message{nativeMsg(0, 0, "8.8.8.8"), nativeMsg(0, 1, "8.8.4.4")}
	h := startWithErrors(t, msgs,
		fmt.Errorf("failed to dial: %w", syscall.ECONNREFUSED),
		io.ErrUnexpectedEOF,
		kafka.RebalanceInProgress,
		kafka.NotCoordinatorForGroup)
	waitUntil(t, "both events committed after the outage", func() bool { return h.source.committedAt(0) == 2 })
	if got := testutil.ToFloat64(h.metrics.FetchErrors); got != 4 {
		t.Errorf("fetch errors counted %v, want 4", got)
	}
	if err := h.stop(t); err != nil {
		t.Fatalf("engine returned %v after riding out the outage", err)
	}
}

// Errors an operator must fix stop the consumer, with the cause.
func TestFetchStopsOnErrorsWaitingCannotFix(t *testing.T) {
	for _, err := range []error{kafka.SASLAuthenticationFailed, kafka.GroupAuthorizationFailed,
		fmt.Errorf("join: %w", kafka.TopicAuthorizationFailed), io.EOF} {
		t.Run(err.Error(), func(t *testing.T) {
			h := startWithErrors(t, nil, err)
			select {
			case got := <-h.result:
				h.result <- got
				if !errors.Is(got, err) || !strings.Contains(got.Error(), "fetch from in") {
					t.Fatalf("engine returned %v, want the fetch error %v", got, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the engine kept retrying an error waiting cannot fix")
			}
		})
	}
}

func startWithErrors(t *testing.T, msgs []kafka.Message, errs ...error) *harness {
	t.Helper()
	src := newFakeSource(msgs)
	for _, err := range errs {
		src.errs <- err
	}
	return startSource(t, defaultOptions(), src, &blockingProcessor{}, &fakePublisher{})
}

// Large events pause fetching by their bytes, not only by their count.
func TestInFlightBytesBoundFetching(t *testing.T) {
	var msgs []kafka.Message
	pad := strings.Repeat("x", 10_000)
	for i := range 50 {
		m := nativeMsg(0, int64(i), "8.8.4.4")
		m.Value = []byte(strings.Replace(string(m.Value), `"source":"fw"`, `"source":"fw","context":{"pad":"`+pad+`"}`, 1))
		msgs = append(msgs, m)
	}
	opts := defaultOptions()
	opts.MaxInFlight = 64
	opts.MaxInFlightBytes = 35_000 // three inputs and their outputs, roughly
	pub := &fakePublisher{hold: make(chan struct{})}
	h := start(t, opts, msgs, &blockingProcessor{}, pub)

	waitUntil(t, "fetching to pause", func() bool { return h.source.fetched.Load() > 0 })
	time.Sleep(100 * time.Millisecond)
	fetched := h.source.fetched.Load()
	if fetched >= 10 {
		t.Fatalf("fetched %d events of 10 KB with a 35 KB budget and the output stalled", fetched)
	}
	if held := testutil.ToFloat64(h.metrics.InFlightBytes); held < 35_000 || held > 35_000+3*20_000 {
		t.Errorf("in-flight bytes gauge %v: want just past the 35 KB bound", held)
	}
	close(pub.hold)
	waitUntil(t, "everything committed once the output recovers", func() bool { return h.source.committedAt(0) == 50 })
	waitUntil(t, "the byte count back to zero", func() bool { return testutil.ToFloat64(h.metrics.InFlightBytes) == 0 })
}
