package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/threatpipe/threatpipe/pipeline"
)

// Publisher writes messages and returns once the brokers acknowledged them all (a synchronous
// kafka.Writer with RequiredAcks=all, as kafkax.Clients.Writer(nil) builds it).
type Publisher interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

var _ Publisher = (*kafka.Writer)(nil)

// Options tune the runner; zero values take the defaults below.
type Options struct {
	// Topic is the input topic the native events go to.
	Topic string
	// PageSize is the limit passed to Poll.
	PageSize int
	// Interval is the wait after a poll that reached the end of a platform's changes.
	Interval time.Duration
	// AuthRetry is the wait after the platform refused the credentials: long, since an operator
	// must act, and every refusal is logged at error level.
	AuthRetry time.Duration
	// PollTimeout bounds one Poll.
	PollTimeout time.Duration
	// DrainTimeout is how long a page already polled may still take to be published and its
	// cursor stored once shutdown began: a page read is finished, not dropped half-way.
	DrainTimeout time.Duration
	// NewBackOff makes the wait schedule for transient errors (default
	// pipeline.DependencyBackOff).
	NewBackOff func() backoff.BackOff
	// Recent, when set, leaves out addresses the source published within its window (the
	// write-back loop; recent.go).
	Recent *Recent
	// Now is the clock (tests).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.AuthRetry <= 0 {
		o.AuthRetry = 5 * time.Minute
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 2 * time.Minute
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.NewBackOff == nil {
		o.NewBackOff = func() backoff.BackOff { return pipeline.DependencyBackOff() }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Runner polls every source and publishes its IP indicators as native events. Each source has
// its own loop, cursor and backoff: a platform that is down delays only its own indicators.
type Runner struct {
	sources []Source
	pub     Publisher
	cursors *Cursors
	metrics *Metrics
	log     *zap.Logger
	opts    Options
}

// NewRunner returns a runner of sources.
func NewRunner(sources []Source, pub Publisher, cursors *Cursors, metrics *Metrics, log *zap.Logger, opts Options) *Runner {
	return &Runner{sources: sources, pub: pub, cursors: cursors, metrics: metrics, log: log, opts: opts.withDefaults()}
}

// Run polls until ctx ends, then finishes the page in flight of each source (within
// DrainTimeout) and returns. The loops return no error of their own: every failure is retried,
// so Run returns nil after a shutdown.
func (r *Runner) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, src := range r.sources {
		l := &loop{Runner: r, src: src, name: src.Name(), log: r.log.With(zap.String("source", src.Name())), bo: r.opts.NewBackOff()}
		g.Go(func() error { return l.run(gctx) })
	}
	return g.Wait()
}

// loop is one source's polling loop; it is used by one goroutine only.
type loop struct {
	*Runner
	src  Source
	name string
	log  *zap.Logger
	bo   backoff.BackOff
}

func (l *loop) run(ctx context.Context) error {
	cursor, ok := l.loadCursor(ctx)
	if !ok {
		return nil
	}
	l.log.Info("ingest source starting", zap.String("cursor", cursor), zap.Int("page_size", l.opts.PageSize),
		zap.Duration("interval", l.opts.Interval))
	for {
		next, wait := l.step(ctx, cursor)
		cursor = next
		if !pipeline.Sleep(ctx, wait) {
			l.log.Info("ingest source stopped", zap.String("cursor", cursor))
			return nil
		}
	}
}

// loadCursor reads the stored cursor, waiting out Redis; ok is false when ctx ended first.
func (l *loop) loadCursor(ctx context.Context) (string, bool) {
	for {
		cursor, err := l.cursors.Get(ctx, l.name)
		if err == nil {
			l.bo.Reset()
			return cursor, true
		}
		if ctx.Err() != nil {
			return "", false
		}
		l.metrics.Errors.WithLabelValues(l.name, StageCursor).Inc()
		l.log.Warn("cannot read the cursor: retrying", zap.Error(err))
		if !pipeline.Sleep(ctx, l.bo.NextBackOff()) {
			return "", false
		}
	}
}

// step polls once from cursor and publishes the page. It returns the cursor to poll from next
// (cursor itself unless the page was acknowledged and its cursor stored) and the wait before
// the next poll.
func (l *loop) step(ctx context.Context, cursor string) (string, time.Duration) {
	page, err := l.poll(ctx, cursor)
	if err != nil {
		return cursor, l.pollFailed(ctx, err)
	}
	l.metrics.Polls.WithLabelValues(l.name).Inc()
	l.metrics.Polled.WithLabelValues(l.name).Add(float64(len(page.Indicators)))
	if page.More && page.Next == cursor && len(page.Indicators) == 0 {
		// A platform that says "more" without moving would be polled in a tight loop.
		l.log.Warn("the platform said it has more but returned nothing and the same cursor: waiting the interval")
		page.More = false
	}
	msgs, err := l.encode(page)
	if err != nil {
		l.metrics.Errors.WithLabelValues(l.name, StageEncode).Inc()
		l.log.Error("cannot encode the page: retrying", zap.Error(err))
		return cursor, l.bo.NextBackOff()
	}
	// The page is finished even if shutdown begins now: it was read, so it is published and its
	// cursor stored within DrainTimeout; a restart then neither repeats nor skips it.
	fctx, cancel := withGrace(ctx, l.opts.DrainTimeout)
	defer cancel()
	msgs, recent, err := l.opts.Recent.Filter(fctx, l.name, msgs)
	if err != nil {
		l.metrics.Errors.WithLabelValues(l.name, StageRecent).Inc()
		l.log.Warn("cannot read the recently published addresses: polling again from the same cursor", zap.Error(err))
		return cursor, l.bo.NextBackOff()
	}
	l.metrics.Skipped.WithLabelValues(l.name, SkipRecent).Add(float64(recent))
	if err := l.publish(fctx, msgs); err != nil {
		l.metrics.Errors.WithLabelValues(l.name, StagePublish).Inc()
		l.log.Warn("publishing the page failed: polling again from the same cursor", zap.Error(err), zap.Int("events", len(msgs)))
		return cursor, l.bo.NextBackOff()
	}
	l.metrics.Published.WithLabelValues(l.name).Add(float64(len(msgs)))
	if err := l.opts.Recent.Mark(fctx, l.name, msgs); err != nil {
		// Published but not remembered: the next change of these records is published again,
		// once, which the enricher's cache makes cheap.
		l.metrics.Errors.WithLabelValues(l.name, StageRecent).Inc()
		l.log.Warn("cannot remember the published addresses", zap.Error(err))
	}
	if page.Next != cursor {
		if err := l.storeCursor(fctx, page.Next); err != nil {
			// The page is acknowledged but its cursor is not stored: polling from the old cursor
			// publishes it again (the same event ids), which the enricher's idempotence absorbs.
			l.log.Error("the cursor could not be stored before shutdown: the last page will be published again on restart", zap.Error(err))
			return cursor, l.bo.NextBackOff()
		}
	}
	l.bo.Reset()
	l.metrics.CursorLag.WithLabelValues(l.name).Set(l.lag(page))
	l.log.Debug("page published", zap.Int("indicators", len(page.Indicators)), zap.Int("events", len(msgs)),
		zap.String("cursor", page.Next), zap.Bool("more", page.More))
	if page.More {
		return page.Next, 0
	}
	return page.Next, l.opts.Interval
}

func (l *loop) poll(ctx context.Context, cursor string) (Page, error) {
	pctx, cancel := context.WithTimeout(ctx, l.opts.PollTimeout)
	defer cancel()
	page, err := l.src.Poll(pctx, cursor, l.opts.PageSize)
	if err != nil {
		return Page{}, fmt.Errorf("poll %s: %w", l.name, err)
	}
	return page, nil
}

// pollFailed counts and logs a failed poll and returns the wait before the next one.
func (l *loop) pollFailed(ctx context.Context, err error) time.Duration {
	if ctx.Err() != nil {
		return 0 // shutting down: nothing was read, nothing to finish
	}
	if IsAuth(err) {
		l.metrics.Errors.WithLabelValues(l.name, StageAuth).Inc()
		l.log.Error("the platform refused the credentials: fix them; retrying slowly", zap.Error(err), zap.Duration("retry_in", l.opts.AuthRetry))
		return l.opts.AuthRetry
	}
	l.metrics.Errors.WithLabelValues(l.name, StagePoll).Inc()
	wait := l.bo.NextBackOff()
	l.log.Warn("poll failed: retrying from the same cursor", zap.Error(err), zap.Duration("retry_in", wait))
	return wait
}

// encode turns the page's IP indicators into native events; every other value is counted and
// logged at debug level, never dropped silently.
func (l *loop) encode(page Page) ([]kafka.Message, error) {
	msgs := make([]kafka.Message, 0, len(page.Indicators))
	for _, ind := range page.Indicators {
		m, ok, err := toMessage(l.opts.Topic, l.name, ind)
		if err != nil {
			return nil, err
		}
		if !ok {
			l.metrics.Skipped.WithLabelValues(l.name, SkipNotIP).Inc()
			l.log.Debug("indicator skipped: not one IP address", zap.String("ref", ind.Ref), zap.String("value", clip(ind.Value, 128)))
			continue
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

func (l *loop) publish(ctx context.Context, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := l.pub.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d events to %s: %w", len(msgs), l.opts.Topic, err)
	}
	return nil
}

// storeCursor stores cursor, retrying with backoff until it is stored or ctx ends: the page is
// acknowledged, so polling it again would only repeat it.
func (l *loop) storeCursor(ctx context.Context, cursor string) error {
	for {
		err := l.cursors.Set(ctx, l.name, cursor)
		if err == nil {
			return nil
		}
		l.metrics.Errors.WithLabelValues(l.name, StageCursor).Inc()
		if ctx.Err() != nil {
			return err
		}
		l.log.Warn("cannot store the cursor: retrying", zap.Error(err))
		if !pipeline.Sleep(ctx, l.bo.NextBackOff()) {
			return errors.Join(err, ctx.Err())
		}
	}
}

// lag is the cursor lag after page was stored.
func (l *loop) lag(page Page) float64 {
	if !page.More {
		return 0
	}
	var newest time.Time
	for _, ind := range page.Indicators {
		if ind.Modified.After(newest) {
			newest = ind.Modified
		}
	}
	if newest.IsZero() {
		return 0
	}
	return max(0, l.opts.Now().Sub(newest).Seconds())
}
