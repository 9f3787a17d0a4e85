// Package pipeline is threatpipe's streaming core: it consumes indicator events from Kafka,
// decodes and gates them, runs a Processor per indicator in a bounded worker pool, publishes
// scored events and dead letters, and commits an input offset only after every output it
// produced is acknowledged by Kafka.
//
// Delivery is at least once. Events complete out of order; a per-partition tracker commits only
// the highest contiguous completed offset, so a slow event never holds back the ones behind it
// and is never committed before it is done. After a crash, the events redelivered are those
// fetched after the last commit: at most MaxInFlight plus one commit interval's worth.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/threatpipe/threatpipe/pipeline/commit"
	"github.com/threatpipe/threatpipe/pipeline/event"
	"github.com/threatpipe/threatpipe/pipeline/telemetry"
)

// Source is the consumer side of the engine; *kafka.Reader in consumer-group mode satisfies it.
// FetchMessage must not commit; CommitMessages commits each message's Offset+1.
type Source interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Publisher is the producer side; an asynchronous *kafka.Writer satisfies it. WriteMessages
// enqueues and returns; the outcome of every message reaches the completion function the
// Publisher was built with (see NewPublisher), carrying each message's WriterData back.
// Close flushes what is queued and waits for its completions.
type Publisher interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// NewPublisher builds a Publisher that reports outcomes to completion.
type NewPublisher func(completion func(msgs []kafka.Message, err error)) Publisher

// Handler turns one input message into the messages to publish for it: scored events and dead
// letters for the enricher, audit records for the playbook workers. The engine commits the input
// once every one of them is acknowledged (at once when there are none).
//
// Implementations must be safe for concurrent use. Handle returns an error only when ctx ended
// before it could finish (a hard shutdown): the input then stays uncommitted and is redelivered.
// Anything else, bad input included, becomes an output (a dead letter), never an error.
type Handler interface {
	Handle(ctx context.Context, msg kafka.Message) ([]kafka.Message, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, msg kafka.Message) ([]kafka.Message, error)

// Handle implements Handler.
func (f HandlerFunc) Handle(ctx context.Context, msg kafka.Message) ([]kafka.Message, error) {
	return f(ctx, msg)
}

// Processor enriches one indicator's scored event in place: score, severity, tags, reasons.
//
// Implementations must be safe for concurrent use, must honour ctx, and should not hold an event
// forever: a provider that fails is recorded in the event, and Process returns nil. An error
// return means the event could not be enriched at all; it is still published, with the error in
// its warnings. Process is not called for gated indicators.
type Processor interface {
	Process(ctx context.Context, ev *event.Scored) error
}

// GateObserver is optionally implemented by a Processor that wants to know about indicators the
// gate spared a lookup (to count the savings).
type GateObserver interface {
	Gated()
}

// OwnRangeProcessor is optionally implemented by a Processor that asks some of its sources about
// the operator's own addresses too (offline lists, say: to learn that one of them is on a block
// list). Such an indicator keeps its gate (it is never blocked) and is processed as well.
type OwnRangeProcessor interface {
	EnrichesOwnRanges() bool
}

// Options are the engine's settings.
type Options struct {
	InputTopic, OutputTopic, DLQTopic string
	Workers                           int
	MaxInFlight                       int
	// MaxInFlightBytes bounds the bytes held by in-flight events, inputs and outputs together:
	// fetching pauses while they exceed it. The message count alone does not bound memory
	// when events are large. Zero means no byte bound.
	MaxInFlightBytes int64
	MaxEventBytes    int
	MaxIndicators    int
	CommitInterval   time.Duration
	ShutdownTimeout  time.Duration
}

// Engine runs one consumer's pipeline. Create it with New and call Run once.
type Engine struct {
	opts    Options
	source  Source
	pub     Publisher
	handler Handler
	tracker *commit.Tracker
	metrics *telemetry.PipelineMetrics
	log     *zap.Logger
	now     func() time.Time

	slots    chan struct{} // one per in-flight input message: the backpressure bound
	bytes    atomic.Int64  // held by in-flight jobs, inputs and outputs (Options.MaxInFlightBytes)
	freed    chan struct{} // signalled when bytes fall, to wake a fetch waiting for room
	inFlight sync.WaitGroup
	retries  chan []kafka.Message
	outbox   chan []kafka.Message // scored events and dead letters of finished jobs, to publishLoop
	stopped  chan struct{}        // closed when Run gives up on in-flight work; completions stop retrying

	// Observers resolved once: a label lookup per event is measurable on the hot path.
	publishSeconds, e2eSeconds         interface{ Observe(float64) }
	producedOut, producedDLQ, consumed interface{ Inc() }
}

// New wires an engine that runs h on every message of source. The caller owns source (closing
// it after Run returns, so the final commit can still go through); the engine owns the publisher
// it builds.
func New(opts Options, source Source, newPub NewPublisher, h Handler, m *telemetry.PipelineMetrics, log *zap.Logger) *Engine {
	e := &Engine{
		opts: opts, source: source, handler: h,
		tracker: commit.NewTracker(),
		metrics: m, log: log, now: time.Now,
		slots:   make(chan struct{}, opts.MaxInFlight),
		freed:   make(chan struct{}, 1),
		retries: make(chan []kafka.Message, 64),
		outbox:  make(chan []kafka.Message, opts.MaxInFlight),
		stopped: make(chan struct{}),
	}
	e.pub = newPub(e.completed)
	e.publishSeconds = m.StageSeconds.WithLabelValues(telemetry.StagePublish)
	e.e2eSeconds = m.StageSeconds.WithLabelValues(telemetry.StageEndToEnd)
	e.producedOut = m.Produced.WithLabelValues(opts.OutputTopic)
	e.producedDLQ = m.Produced.WithLabelValues(opts.DLQTopic)
	e.consumed = m.Consumed.WithLabelValues(opts.InputTopic)
	return e
}

// job is one input message on its way through the pipeline.
type job struct {
	msg       kafka.Message
	part      *commit.Partition
	pending   atomic.Int32 // outputs not yet acknowledged
	published time.Time
	charged   atomic.Int64 // bytes counted against Options.MaxInFlightBytes
}

// Run consumes until ctx is cancelled, then drains: it stops fetching, lets in-flight events
// finish and be acknowledged (for at most ShutdownTimeout), commits, and flushes the publisher.
// It returns nil after a clean drain and an error if fetching failed or the drain timed out.
func (e *Engine) Run(ctx context.Context) error {
	// Work outlives ctx so in-flight events can finish; it is cut at the drain deadline.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	jobs := make(chan *job, e.opts.Workers)
	var workers sync.WaitGroup
	for range e.opts.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range jobs {
				e.handle(workCtx, j)
			}
		}()
	}

	// The publish loop outlives the workers (it sends what they queued last) and ends when they
	// are all gone.
	publishDone := make(chan struct{})
	go func() { defer close(publishDone); e.publishLoop(workCtx) }()
	go func() { workers.Wait(); close(e.outbox) }()

	// Retries run until the drain ends: a failed publish of an in-flight event is what the
	// drain waits for.
	retriesDone := make(chan struct{})
	go func() { defer close(retriesDone); e.retryLoop(workCtx) }()
	defer func() { <-retriesDone }()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(jobs)
		return e.fetch(gctx, jobs)
	})
	g.Go(func() error { e.commitLoop(gctx); return nil })

	fetchErr := g.Wait() // returns once ctx is done (or fetching failed) and the loops stopped
	e.log.Info("draining in-flight events", zap.Duration("timeout", e.opts.ShutdownTimeout))

	drained := make(chan struct{})
	go func() { workers.Wait(); e.inFlight.Wait(); close(drained) }()
	var drainErr error
	select {
	case <-drained:
	case <-time.After(e.opts.ShutdownTimeout):
		drainErr = fmt.Errorf("drain timed out after %s; uncommitted events will be redelivered", e.opts.ShutdownTimeout)
	}
	close(e.stopped)
	cancelWork()
	// The publish loop ends once the workers have; a handler that ignores its cancelled
	// context would keep it alive, so the wait is bounded rather than hang shutdown.
	select {
	case <-publishDone:
	case <-time.After(publishLoopGrace):
		e.log.Warn("a handler did not return after cancellation; closing the publisher without it")
	}

	commitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	commitErr := e.commit(commitCtx)
	closeErr := e.pub.Close()
	if closeErr != nil {
		closeErr = fmt.Errorf("close publisher: %w", closeErr)
	}
	return errors.Join(fetchErr, drainErr, commitErr, closeErr)
}

func (e *Engine) fetch(ctx context.Context, jobs chan<- *job) error {
	wait := DependencyBackOff()
	failing := false
	for {
		if !e.acquire(ctx) {
			return nil
		}
		msg, err := e.source.FetchMessage(ctx)
		if err != nil {
			<-e.slots
			switch {
			case ctx.Err() != nil:
				return nil
			case fatalFetch(err):
				return fmt.Errorf("fetch from %s: %w", e.opts.InputTopic, err)
			}
			// The broker restarting, a leader moving, the network: the reader reconnects and
			// rejoins the group by itself, so wait and fetch again. Readiness reports the
			// broker meanwhile.
			if !failing {
				failing = true
				e.log.Warn("cannot fetch; retrying until the brokers answer", zap.String("topic", e.opts.InputTopic), zap.Error(err))
			}
			e.metrics.FetchErrors.Inc()
			if !sleep(wait.NextBackOff(), ctx.Done()) {
				return nil
			}
			continue
		}
		if failing {
			failing = false
			e.log.Info("fetching again", zap.String("topic", e.opts.InputTopic))
		}
		wait.Reset()
		e.consumed.Inc()
		e.metrics.InFlight.Inc()
		j := &job{msg: msg, part: e.tracker.Add(commit.TopicPartition{Topic: msg.Topic, Partition: msg.Partition}, msg.Offset)}
		e.charge(j, messageBytes(msg))
		e.inFlight.Add(1)
		select {
		case jobs <- j:
		case <-ctx.Done():
			// Fetched but never started: it stays uncommitted in the tracker and is redelivered.
			e.release(j)
			return nil
		}
	}
}

// acquire waits for a slot and for the in-flight bytes to fall under their bound; it reports
// false when ctx ended first.
func (e *Engine) acquire(ctx context.Context) bool {
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	for e.opts.MaxInFlightBytes > 0 && e.bytes.Load() >= e.opts.MaxInFlightBytes {
		select {
		case <-e.freed:
		case <-ctx.Done():
			<-e.slots
			return false
		}
	}
	return true
}

// charge counts n more bytes held by j. It never blocks: a job that grows past the bound
// (its outputs) only pauses the next fetch, so jobs in flight can always finish.
func (e *Engine) charge(j *job, n int64) {
	j.charged.Add(n)
	e.metrics.InFlightBytes.Set(float64(e.bytes.Add(n)))
}

// messageBytes approximates what a message holds in memory.
func messageBytes(m kafka.Message) int64 {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// release frees a job's slot and bytes without marking it done.
func (e *Engine) release(j *job) {
	if n := j.charged.Swap(0); n != 0 {
		e.metrics.InFlightBytes.Set(float64(e.bytes.Add(-n)))
		select {
		case e.freed <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	<-e.slots
	e.metrics.InFlight.Dec()
	e.inFlight.Done()
}

func (e *Engine) handle(ctx context.Context, j *job) {
	outs, err := e.handler.Handle(ctx, j.msg)
	if err != nil {
		// Hard stop: leave the message uncommitted so it is redelivered whole.
		e.release(j)
		return
	}
	if len(outs) == 0 {
		e.finish(j)
		return
	}
	e.publish(ctx, j, outs)
}

// publish hands a job's outputs to the publisher; completed() finishes the job once all are
// acknowledged.
func (e *Engine) publish(ctx context.Context, j *job, outs []kafka.Message) {
	var size int64
	for i := range outs {
		outs[i].WriterData = j
		size += messageBytes(outs[i])
	}
	e.charge(j, size)
	j.pending.Store(int32(len(outs)))
	j.published = e.now()
	select {
	case e.outbox <- outs:
	case <-ctx.Done():
		// Hard stop: the job stays uncommitted and is redelivered.
		e.release(j)
	}
}

// publishLoopGrace bounds how long shutdown waits for the publish loop after the drain.
const publishLoopGrace = 5 * time.Second

// maxPublishBatch bounds how many jobs' outputs one WriteMessages call carries.
const maxPublishBatch = 256

// publishLoop hands outputs to the publisher in batches: kafka-go's WriteMessages costs a
// metadata lookup and several allocations per call, which per input event was 8% of the
// cache-hit path. It takes whatever is queued (never waiting for more, so latency is not
// traded for it) and returns when the outbox is closed and empty.
func (e *Engine) publishLoop(ctx context.Context) {
	batch := make([]kafka.Message, 0, maxPublishBatch)
	for outs := range e.outbox {
		batch = append(batch[:0], outs...)
	more:
		for n := 1; n < maxPublishBatch; n++ {
			select {
			case outs, ok := <-e.outbox:
				if !ok {
					break more
				}
				batch = append(batch, outs...)
			default:
				break more
			}
		}
		if err := e.pub.WriteMessages(ctx, batch...); err != nil {
			// The publisher keeps no reference to a refused batch; the retry path owns a copy.
			e.completed(slices.Clone(batch), err)
		}
	}
}

// finish marks a job done: its offset becomes committable.
func (e *Engine) finish(j *job) {
	if !j.msg.Time.IsZero() {
		e.e2eSeconds.Observe(e.now().Sub(j.msg.Time).Seconds())
	}
	if !j.part.Done(j.msg.Offset) {
		e.log.Error("offset completed twice or never tracked", zap.String("topic", j.msg.Topic),
			zap.Int("partition", j.msg.Partition), zap.Int64("offset", j.msg.Offset))
	}
	e.release(j)
}

// completed is the publisher's completion callback, called from its goroutines.
func (e *Engine) completed(msgs []kafka.Message, err error) {
	if err != nil {
		e.metrics.PublishRetries.Add(float64(len(msgs)))
		e.log.Warn("publish failed; retrying", zap.Int("messages", len(msgs)), zap.Error(err))
		retry := shrinkIfTooLarge(msgs, err)
		select {
		case e.retries <- retry:
		case <-e.stopped:
			// Shutting down: the jobs stay uncommitted and are redelivered after restart.
		}
		return
	}
	now := e.now()
	for i := range msgs {
		j := msgs[i].WriterData.(*job)
		if msgs[i].Topic == e.opts.DLQTopic {
			e.producedDLQ.Inc()
		} else {
			e.producedOut.Inc()
		}
		if j.pending.Add(-1) == 0 {
			e.publishSeconds.Observe(now.Sub(j.published).Seconds())
			e.finish(j)
		}
	}
}

// retryLoop re-sends failed outputs with capped exponential backoff until they are
// acknowledged or ctx ends. Retrying a whole failed batch can publish a message twice; that is
// within at-least-once, and consumers key on event_id.
func (e *Engine) retryLoop(ctx context.Context) {
	wait := DependencyBackOff()
	for {
		select {
		case msgs := <-e.retries:
			for {
				if !sleep(wait.NextBackOff(), ctx.Done()) {
					return
				}
				// A broker outage fails many batches at once: retry everything that failed
				// meanwhile in one go, so the backoff is per wave and not per batch.
			gather:
				for {
					select {
					case more := <-e.retries:
						msgs = append(msgs, more...)
					default:
						break gather
					}
				}
				// An asynchronous publisher only fails here synchronously (closed, or a message
				// over its own size limit); the outcome of an accepted write reaches completed.
				err := e.pub.WriteMessages(ctx, msgs...)
				if err == nil {
					break
				}
				e.log.Warn("publish retry rejected", zap.Int("messages", len(msgs)), zap.Error(err))
				msgs = shrinkIfTooLarge(msgs, err)
			}
		case <-time.After(30 * time.Second):
			wait.Reset() // quiet for a while: the next failure starts small again
		case <-ctx.Done():
			return
		}
	}
}

func (e *Engine) commitLoop(ctx context.Context) {
	t := time.NewTicker(e.opts.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := e.commit(cctx); err != nil && ctx.Err() == nil {
				e.log.Warn("offset commit failed; retrying next interval", zap.Error(err))
			}
			cancel()
			e.reportLag()
		case <-ctx.Done():
			return
		}
	}
}

// commit commits every partition's highest contiguous completed offset.
func (e *Engine) commit(ctx context.Context) error {
	positions := e.tracker.Committable()
	if len(positions) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(positions))
	for i, p := range positions {
		msgs[i] = kafka.Message{Topic: p.Topic, Partition: p.Partition, Offset: p.Offset}
	}
	if err := e.source.CommitMessages(ctx, msgs...); err != nil {
		e.metrics.CommitErrors.Inc()
		return fmt.Errorf("commit offsets: %w", err)
	}
	e.tracker.Committed(positions)
	e.metrics.Commits.Inc()
	return nil
}

func (e *Engine) reportLag() {
	for _, l := range e.tracker.Lags() {
		p := strconv.Itoa(l.Partition)
		e.metrics.CommitLag.WithLabelValues(l.Topic, p).Set(float64(l.Uncommitted))
		e.metrics.InFlightByPart.WithLabelValues(l.Topic, p).Set(float64(l.InFlight))
	}
	if s, ok := e.source.(interface{ Stats() kafka.ReaderStats }); ok {
		e.metrics.ConsumerLag.Set(float64(s.Stats().Lag))
	}
}
