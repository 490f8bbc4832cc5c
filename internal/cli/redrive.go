package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/server"
)

// redrive moves dead-lettered events back to their targets: it receives
// messages from the dead-letter queue with the SQS API, picks those that
// match the filters, and asks the server to queue each event again for the
// target named in the message (RedriveMessages). The server deletes a
// message only once its event is queued again. Messages left alone are made
// visible again at the end.
func redrive(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("bridgeport redrive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	queueURL := fs.String("queue-url", "", "the dead-letter queue's URL (required)")
	maxN := fs.Int("max", 0, "redrive at most this many events (0: all)")
	rate := fs.Float64("rate", 0, "redrive at most this many events per second (0: no limit)")
	rule := fs.String("rule", "", "only events of this rule (name or ARN)")
	code := fs.String("error-code", "", "only events that failed with this ERROR_CODE")
	dryRun := fs.Bool("dry-run", false, "show what would be redriven; change nothing")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *queueURL == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "bridgeport redrive: --queue-url is required")
		return 2
	}
	cl, err := cf.client(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "bridgeport redrive:", err)
		return 2
	}
	r := &redriver{cl: cl, queue: *queueURL, max: *maxN, rate: *rate, rule: *rule, code: *code, dryRun: *dryRun, out: stdout}
	err = r.run(ctx)
	if rerr := r.release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
		err = rerr
	}
	verb := "redriven"
	if r.dryRun {
		verb = "would be redriven"
	}
	fmt.Fprintf(stdout, "%d %s, %d skipped by the filters, %d failed\n", r.moved, verb, r.skipped, r.failed)
	if err != nil {
		fmt.Fprintln(stderr, "bridgeport redrive:", err)
		return 1
	}
	if r.failed > 0 {
		return 1
	}
	return 0
}

type redriver struct {
	cl                     *awsapi.Client
	queue                  string
	max                    int
	rate                   float64
	rule, code             string
	dryRun                 bool
	out                    io.Writer
	moved, skipped, failed int
	// held are the receipt handles of messages received and left on the
	// queue, made visible again at the end.
	held []string
	seen map[string]bool
}

type sqsMessage struct {
	MessageId         string `json:"MessageId"`
	ReceiptHandle     string `json:"ReceiptHandle"`
	MessageAttributes map[string]struct {
		StringValue string `json:"StringValue"`
	} `json:"MessageAttributes"`
}

func (r *redriver) sqs(ctx context.Context, op string, in, out any) error {
	return r.cl.Call(ctx, "sqs", "1.0", "AmazonSQS."+op, in, out)
}

func (r *redriver) run(ctx context.Context) error {
	r.seen = map[string]bool{}
	var next time.Time
	for r.max == 0 || r.moved < r.max {
		var got struct {
			Messages []sqsMessage `json:"Messages"`
		}
		// Messages stay invisible for 90 seconds, so each is seen once in
		// most runs (and counted once in any). That is also less than the
		// jobs stream's two-minute duplicate window: if the server dies
		// after it queued an event again but before it deleted the
		// message, the message comes back within the window and its next
		// redrive is a duplicate the store drops.
		in := map[string]any{"QueueUrl": r.queue, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 2,
			"VisibilityTimeout": 90, "MessageAttributeNames": []string{"All"}}
		if err := r.sqs(ctx, "ReceiveMessage", in, &got); err != nil {
			return err
		}
		fresh := 0
		var batch []server.RedriveEntry
		for _, m := range got.Messages {
			if r.seen[m.MessageId] {
				r.held = append(r.held, m.ReceiptHandle)
				continue
			}
			r.seen[m.MessageId] = true
			fresh++
			if !r.matches(m) || (r.max > 0 && r.moved+len(batch) >= r.max) {
				r.skipped++
				r.held = append(r.held, m.ReceiptHandle)
				continue
			}
			id, handle := m.MessageId, m.ReceiptHandle
			batch = append(batch, server.RedriveEntry{Id: &id, ReceiptHandle: &handle})
		}
		if fresh == 0 {
			return nil
		}
		for _, e := range batch {
			if r.rate > 0 {
				if wait := time.Until(next); wait > 0 {
					select {
					case <-time.After(wait):
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				next = time.Now().Add(time.Duration(float64(time.Second) / r.rate))
			}
			if err := r.send(ctx, e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *redriver) matches(m sqsMessage) bool {
	ruleArn := m.MessageAttributes["RULE_ARN"].StringValue
	if r.rule != "" && ruleArn != r.rule && !strings.HasSuffix(ruleArn, "/"+r.rule) {
		return false
	}
	return r.code == "" || m.MessageAttributes["ERROR_CODE"].StringValue == r.code
}

func (r *redriver) send(ctx context.Context, e server.RedriveEntry) error {
	var out server.RedriveOutput
	in := server.RedriveInput{QueueUrl: &r.queue, Entries: []server.RedriveEntry{e}, DryRun: r.dryRun}
	if err := r.cl.Call(ctx, server.AdminSigningName, "1.1", server.AdminTargetPrefix+".RedriveMessages", in, &out); err != nil {
		return err
	}
	for _, s := range out.Successful {
		r.moved++
		if r.dryRun {
			r.held = append(r.held, *e.ReceiptHandle)
		}
		fmt.Fprintf(r.out, "%s event %s -> %s (rule %s)\n", map[bool]string{true: "would redrive", false: "redriven"}[r.dryRun],
			s.EventId, s.TargetArn, s.RuleArn)
	}
	for _, f := range out.Failed {
		r.failed++
		r.held = append(r.held, *e.ReceiptHandle)
		fmt.Fprintf(r.out, "not redriven: message %s: %s: %s\n", f.Id, f.Code, f.Message)
	}
	return nil
}

// release makes the messages received and left on the queue visible again.
func (r *redriver) release(ctx context.Context) error {
	for len(r.held) > 0 {
		n := min(len(r.held), 10)
		var entries []map[string]any
		for i, h := range r.held[:n] {
			entries = append(entries, map[string]any{"Id": fmt.Sprint(i), "ReceiptHandle": h, "VisibilityTimeout": 0})
		}
		r.held = r.held[n:]
		if err := r.sqs(ctx, "ChangeMessageVisibilityBatch", map[string]any{"QueueUrl": r.queue, "Entries": entries}, nil); err != nil {
			return err
		}
	}
	return nil
}
