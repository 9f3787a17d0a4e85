package pipeline

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"
)

// DependencyBackOff is the wait between attempts of a loop that needs Kafka or Redis back:
// from 100 ms, doubling to 5 s, each wait randomised by ±50% so that replicas that lost the
// dependency together do not all retry in step. It never gives up: the caller's context ends
// the loop.
func DependencyBackOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// sleep waits d or until done is closed; it reports whether the wait ran out.
func sleep(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// fatalFetchErrors are the broker's answers that waiting cannot fix: the credentials or the
// ACLs are wrong, and an operator must act. Everything else (the broker restarting, a leader
// moving, the network) is waited out.
var fatalFetchErrors = []error{
	kafka.SASLAuthenticationFailed, kafka.UnsupportedSASLMechanism, kafka.IllegalSASLState,
	kafka.TopicAuthorizationFailed, kafka.GroupAuthorizationFailed, kafka.ClusterAuthorizationFailed,
	kafka.InvalidGroupId,
}

// fatalFetch reports whether a fetch error should stop the consumer.
func fatalFetch(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, kafka.ErrGroupClosed) { // the reader was closed
		return true
	}
	return Unrecoverable(err)
}

// Unrecoverable reports whether a broker's answer is one that waiting cannot fix (credentials,
// ACLs): a loop waiting for the brokers should stop on it and say so.
func Unrecoverable(err error) bool {
	for _, f := range fatalFetchErrors {
		if errors.Is(err, f) {
			return true
		}
	}
	return false
}

// Sleep waits d or until ctx ends; it reports whether the wait ran out (false: ctx ended, stop).
// A wait of zero or less returns at once, true unless ctx has ended.
func Sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	if d <= 0 {
		return true
	}
	return sleep(d, ctx.Done())
}
