package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/threatpipe/threatpipe/pipeline/config"
	"github.com/threatpipe/threatpipe/pipeline/kafkax"
	"github.com/threatpipe/threatpipe/pipeline/produce"
)

func runProduce(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "produce [flags] [file]", `Publishes each line of file (or stdin, or "-") as one message. Lines must be JSON objects
unless --raw is given (CEF, key=value or any other line format is then sent as it is); each bad
line is reported with its number and skipped, and the exit status is 1 if any was. A produce
request carries at most --batch lines and at most --batch-bytes bytes, so large documents are
split across requests; a single line longer than --max-line-bytes (by default --batch-bytes less
4 KiB, so that it fits in one request under the broker's default 1 MiB message.max.bytes) is a
bad line. Brokers and TLS/SASL come from THREATPIPE_KAFKA_* variables.`)
	var cfgErr error
	cfg, cfgErr := config.Load(env.environ)
	defaultTopic := "indicators"
	if cfgErr == nil {
		defaultTopic = cfg.Kafka.InputTopic
	}
	topic := fs.String("topic", defaultTopic, "topic to publish to (default THREATPIPE_KAFKA_INPUT_TOPIC)")
	keyField := fs.String("key-field", "", "dotted JSON path whose string value keys each message, e.g. indicator.value")
	allowInvalid := fs.Bool("allow-invalid", false, "send lines that are not JSON objects too (to exercise the dead-letter topic)")
	raw := fs.Bool("raw", false, "send every line as it is, JSON or not (CEF, key=value); no --key-field")
	batch := fs.Int("batch", 500, "at most this many messages per produce request")
	batchBytes := fs.Int("batch-bytes", defaultBatchBytes, "at most this many bytes of messages per produce request (keep under the broker's message.max.bytes)")
	maxLine := fs.Int("max-line-bytes", 0, "reject longer lines (0: --batch-bytes less 4096; at most that)")
	createTopic := fs.Bool("create-topic", false, "create the topic if it does not exist")
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfgErr != nil {
		return fmt.Errorf("configuration: %w", cfgErr)
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("at most one input file, got %d", fs.NArg())
	}
	limit, err := lineLimit(*batch, *batchBytes, *maxLine)
	if err != nil {
		return err
	}
	if *raw && *keyField != "" {
		return fmt.Errorf("--raw sends lines unparsed, so it cannot take --key-field")
	}
	var in io.Reader = env.stdin
	if name := fs.Arg(0); name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	clients, err := kafkax.New(&cfg.Kafka, zap.NewNop())
	if err != nil {
		return err
	}
	if *createTopic {
		if err := clients.EnsureTopics(ctx, *topic); err != nil {
			return err
		}
	}
	w := clients.Writer(nil)
	defer w.Close()
	w.BatchSize = *batch
	// kafka-go cuts each partition's batch at BatchBytes, so one WriteMessages call of many large
	// lines becomes several requests, each under the broker's limit.
	w.BatchBytes = int64(*batchBytes)

	// --raw is --allow-invalid without a key: every line goes out as it is (blank lines aside).
	opts := produce.Options{Topic: *topic, BatchSize: *batch, MaxLineBytes: limit, AllowInvalid: *allowInvalid || *raw, KeyField: *keyField}
	if !*quiet {
		opts.ProgressEvery = 2 * time.Second
		opts.Progress = func(st produce.Stats) {
			fmt.Fprintf(env.stderr, "produced %d lines (%.0f/s), rejected %d\n", st.Produced, float64(st.Produced)/st.Elapsed.Seconds(), st.Rejected)
		}
	}
	st, err := produce.Run(ctx, in, w, opts, env.stderr)
	fmt.Fprintf(env.stderr, "done: %d lines, %d produced to %s, %d rejected, in %s\n", st.Lines, st.Produced, *topic, st.Rejected, st.Elapsed.Round(time.Millisecond))
	if err != nil {
		return err
	}
	if st.Rejected > 0 {
		return fmt.Errorf("%d lines rejected", st.Rejected)
	}
	return nil
}

// defaultBatchBytes keeps a produce request's record batch under the broker's default
// message.max.bytes (1 MiB plus 12 bytes) with room to spare.
const defaultBatchBytes = 900_000

// messageOverhead is the room left in a batch for one message's framing and key: a line longer
// than batch bytes less this would make kafka-go refuse the whole batch (MessageTooLargeError),
// so it is rejected as a bad line instead.
const messageOverhead = 4096

// lineLimit checks the batch flags and returns the longest line that is sent.
func lineLimit(batch, batchBytes, maxLine int) (int, error) {
	if batch < 1 || maxLine < 0 || batchBytes <= messageOverhead {
		return 0, fmt.Errorf("--batch and --max-line-bytes must be positive and --batch-bytes over %d", messageOverhead)
	}
	limit := batchBytes - messageOverhead
	if maxLine == 0 {
		return limit, nil
	}
	if maxLine > limit {
		return 0, fmt.Errorf("--max-line-bytes %d does not fit in a request of --batch-bytes %d (at most %d); raise --batch-bytes if the broker's message.max.bytes allows", maxLine, batchBytes, limit)
	}
	return maxLine, nil
}
