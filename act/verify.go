package act

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline"
	"github.com/threatpipe/threatpipe/pipeline/sign"
)

// VerifyOptions configure the signature check in front of a playbook handler.
type VerifyOptions struct {
	Verifier *sign.Verifier
	// Purpose is what the topic's records are signed for: sign.Scored or sign.Change.
	Purpose sign.Purpose
	// Require refuses unsigned records; a record with a bad signature is always refused.
	Require  bool
	Name     string // consumer group, written into dead letters
	DLQTopic string
}

// Verified is a pipeline.Handler that passes on only the records whose HMAC signature
// (pipeline/sign) verifies: anyone who can write to the scored topic could otherwise make act
// block, page and open tickets. A refused record is dead-lettered with its reason as the error
// class (unsigned, bad_signature, unknown_key, malformed_signature) and counted; it is never
// acted on, and the offset is committed like any dead letter's.
type Verified struct {
	next    pipeline.Handler
	o       VerifyOptions
	metrics *Metrics
	log     *zap.Logger
	now     func() time.Time
	// lastLog throttles the refusal warning: records from a hostile producer must not flood
	// the logs (the metric and the dead letters count each one).
	lastLog atomic.Int64
}

var _ pipeline.Handler = (*Verified)(nil)

// verifyLogEvery is the shortest interval between two refusal warnings.
const verifyLogEvery = time.Minute

// NewVerified puts the signature check in front of next.
func NewVerified(next pipeline.Handler, o VerifyOptions, m *Metrics, log *zap.Logger) *Verified {
	return &Verified{next: next, o: o, metrics: m, log: log, now: time.Now}
}

// Handle implements pipeline.Handler.
func (v *Verified) Handle(ctx context.Context, msg kafka.Message) ([]kafka.Message, error) {
	err := v.o.Verifier.Verify(v.o.Purpose, msg)
	switch {
	case err == nil:
		v.metrics.Signatures.WithLabelValues(string(v.o.Purpose), "verified").Inc()
		return v.next.Handle(ctx, msg)
	case sign.Reason(err) == "unsigned" && !v.o.Require:
		v.metrics.Signatures.WithLabelValues(string(v.o.Purpose), "unsigned_accepted").Inc()
		return v.next.Handle(ctx, msg)
	}
	reason := sign.Reason(err)
	v.metrics.Signatures.WithLabelValues(string(v.o.Purpose), "refused_"+reason).Inc()
	now := v.now()
	if last := v.lastLog.Load(); now.UnixNano()-last >= int64(verifyLogEvery) && v.lastLog.CompareAndSwap(last, now.UnixNano()) {
		v.log.Warn("refusing records whose signature does not verify (THREATPIPE_SIGNING_KEY); they are dead-lettered, never acted on; "+
			"the count is threatpipe_act_signatures_total", zap.String("reason", reason), zap.String("topic", msg.Topic),
			zap.Int("partition", msg.Partition), zap.Int64("offset", msg.Offset), zap.Error(err))
	}
	dl := pipeline.DeadLetter(msg, v.o.DLQTopic, reason, "not acted on: "+err.Error(), now)
	dl.Headers = append(dl.Headers, kafka.Header{Key: HeaderWorker, Value: []byte(v.o.Name)})
	return []kafka.Message{dl}, nil
}
