package kafkax

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// JSONPublisher sends low-volume JSON notices (ops events) to a topic without ever blocking the
// caller: notices queue in a bounded buffer that Run drains. A notice that finds the buffer full
// is logged at error level with its content, so it is never lost silently.
type JSONPublisher struct {
	topic   string
	w       *kafka.Writer
	queue   chan kafka.Message
	log     *zap.Logger
	dropped atomic.Int64
}

// NewJSONPublisher returns a publisher to topic; call Run to deliver.
func (c *Clients) NewJSONPublisher(topic string, log *zap.Logger) *JSONPublisher {
	w := c.Writer(nil)
	w.Topic = topic
	w.BatchTimeout = 10 * time.Millisecond
	return &JSONPublisher{topic: topic, w: w, queue: make(chan kafka.Message, 256), log: log}
}

// Publish queues v, keyed by key.
func (p *JSONPublisher) Publish(key string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		p.log.Error("notice not encodable", zap.Error(err))
		return
	}
	select {
	case p.queue <- kafka.Message{Key: []byte(key), Value: raw}:
	default:
		p.dropped.Add(1)
		p.log.Error("notice queue full; notice not published", zap.String("topic", p.topic), zap.ByteString("notice", raw))
	}
}

// Run delivers queued notices until ctx is done, then flushes what is queued (bounded).
func (p *JSONPublisher) Run(ctx context.Context) error {
	defer p.w.Close()
	for {
		select {
		case m := <-p.queue:
			p.send(ctx, m)
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for {
				select {
				case m := <-p.queue:
					p.send(flushCtx, m)
				default:
					return nil
				}
			}
		}
	}
}

func (p *JSONPublisher) send(ctx context.Context, m kafka.Message) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.w.WriteMessages(wctx, m); err != nil {
		p.log.Error("notice not published", zap.String("topic", p.topic), zap.ByteString("notice", m.Value), zap.Error(err))
	}
}
