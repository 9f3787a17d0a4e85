package act

import (
	"github.com/segmentio/kafka-go"

	"github.com/threatpipe/threatpipe/pipeline"
)

// Dead-letter headers naming the failed action, besides pipeline's x-threatpipe-* ones.
const (
	HeaderWorker   = "x-threatpipe-worker"
	HeaderPlaybook = "x-threatpipe-playbook"
	HeaderStep     = "x-threatpipe-step"
	HeaderSink     = "x-threatpipe-sink"
)

func (w *Worker) deadLetter(msg kafka.Message, class, reason string, rec *Record) kafka.Message {
	dl := pipeline.DeadLetter(msg, w.o.DLQTopic, class, reason, w.now())
	dl.Headers = append(dl.Headers, kafka.Header{Key: HeaderWorker, Value: []byte(w.o.Name)})
	if rec != nil {
		dl.Headers = append(dl.Headers,
			kafka.Header{Key: HeaderPlaybook, Value: []byte(rec.Playbook)},
			kafka.Header{Key: HeaderStep, Value: []byte(rec.Step)},
			kafka.Header{Key: HeaderSink, Value: []byte(rec.Sink)})
	}
	return dl
}
