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
	fs := newFlagSet(env, "produce [flags] [file]", `Publishes each line of file (or stdin, or "-") as one message. Lines must be JSON objects;
each bad line is reported with its number and skipped, and the exit status is 1 if any was.
Brokers and TLS/SASL come from THREATPIPE_KAFKA_* variables.`)
	var cfgErr error
	cfg, cfgErr := config.Load(env.environ)
	defaultTopic := "indicators"
	if cfgErr == nil {
		defaultTopic = cfg.Kafka.InputTopic
	}
	topic := fs.String("topic", defaultTopic, "topic to publish to (default THREATPIPE_KAFKA_INPUT_TOPIC)")
	keyField := fs.String("key-field", "", "dotted JSON path whose string value keys each message, e.g. indicator.value")
	allowInvalid := fs.Bool("allow-invalid", false, "send lines that are not JSON objects too (to exercise the dead-letter topic)")
	batch := fs.Int("batch", 500, "messages per produce request")
	maxLine := fs.Int("max-line-bytes", 4<<20, "reject longer lines")
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
	if *batch < 1 || *maxLine < 1 {
		return fmt.Errorf("--batch and --max-line-bytes must be positive")
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

	opts := produce.Options{Topic: *topic, BatchSize: *batch, MaxLineBytes: *maxLine, AllowInvalid: *allowInvalid, KeyField: *keyField}
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
