package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/server"
	"bridgeport/internal/store"
)

// Exit codes of redrive besides 0 (every event redriven was delivered), 1
// (some failed again, or could not be redriven) and 2 (usage).
const exitNotFinished = 3 // none failed, but some were still being retried when the wait ended

// redrive moves dead-lettered events back to their targets: it receives
// messages from the dead-letter queue with the SQS API and asks the server
// to queue each event again for the target named in the message
// (RedriveMessages). The server deletes a message only once its event is
// queued again. A run takes only the messages present when it started
// (StartRedrive), so an event that fails again goes back to the queue once
// and is not taken again. Messages left alone are made visible again at
// the end; then the run waits for the outcomes of the events it redrove
// (RedriveStatus) and reports them.
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
	wait := fs.Duration("wait", 30*time.Second, "after the last redrive, wait for the events' outcomes until none has come for this long (0: do not wait)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *queueURL == "" || fs.NArg() > 0 || *wait < 0 {
		fmt.Fprintln(stderr, "bridgeport redrive: --queue-url is required (and --wait may not be negative)")
		return 2
	}
	cl, err := cf.client(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "bridgeport redrive:", err)
		return 2
	}
	r := &redriver{cl: cl, queue: *queueURL, max: *maxN, rate: *rate, rule: *rule, code: *code, dryRun: *dryRun, wait: *wait,
		out: stdout, handles: map[string]string{}, results: map[string]store.RedriveResult{}}
	err = r.run(ctx)
	if rerr := r.release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
		err = rerr
	}
	if err == nil {
		err = r.await(ctx)
	}
	status := r.report()
	if err != nil {
		fmt.Fprintln(stderr, "bridgeport redrive:", err)
		return 1
	}
	return status
}

type redriver struct {
	cl         *awsapi.Client
	queue      string
	runID      string
	max        int
	rate       float64
	rule, code string
	dryRun     bool
	wait       time.Duration
	out        io.Writer
	// redriven are the events queued again (or that would be), in order;
	// results their outcomes, by dead-letter message id.
	redriven []server.Redriven
	results  map[string]store.RedriveResult
	// skipped counts the messages the filters or --max left alone, and
	// failed those that could not be redriven.
	skipped, failed int
	// held are the receipt handles of messages received and left on the
	// queue, made visible again at the end; handles those of the messages
	// of the current receive, by id.
	held    []string
	handles map[string]string
	seen    map[string]bool
}

func (r *redriver) sqs(ctx context.Context, op string, in, out any) error {
	return r.cl.Call(ctx, "sqs", "1.0", "AmazonSQS."+op, in, out)
}

func (r *redriver) admin(ctx context.Context, op string, in, out any) error {
	return r.cl.Call(ctx, server.AdminSigningName, "1.1", server.AdminTargetPrefix+"."+op, in, out)
}

// receiveSize is how many messages one receive takes: with --rate, no more
// than are redriven within a minute, so that none stays in hand past its
// 90 seconds of invisibility.
func (r *redriver) receiveSize() int {
	if r.rate <= 0 {
		return 10
	}
	return min(10, max(1, int(r.rate*60)))
}

func (r *redriver) run(ctx context.Context) error {
	var start server.StartRedriveOutput
	if err := r.admin(ctx, "StartRedrive", server.StartRedriveInput{QueueUrl: &r.queue}, &start); err != nil {
		return err
	}
	r.runID = start.RunId
	r.seen = map[string]bool{}
	var next time.Time
	size := r.receiveSize()
	for r.max == 0 || len(r.redriven) < r.max {
		var got struct {
			Messages []struct {
				MessageId     string `json:"MessageId"`
				ReceiptHandle string `json:"ReceiptHandle"`
			} `json:"Messages"`
		}
		// Messages stay invisible for 90 seconds, so each is seen once in
		// most runs (and counted once in any). That is also less than the
		// jobs stream's two-minute duplicate window: if the server dies
		// after it queued an event again but before it deleted the
		// message, the message comes back within the window and its next
		// redrive is a duplicate the store drops.
		in := map[string]any{"QueueUrl": r.queue, "MaxNumberOfMessages": size, "WaitTimeSeconds": 2, "VisibilityTimeout": 90}
		if err := r.sqs(ctx, "ReceiveMessage", in, &got); err != nil {
			return err
		}
		var fresh []server.RedriveEntry
		for _, m := range got.Messages {
			if r.seen[m.MessageId] {
				r.held = append(r.held, m.ReceiptHandle)
				continue
			}
			r.seen[m.MessageId] = true
			id, handle := m.MessageId, m.ReceiptHandle
			r.handles[id] = handle
			fresh = append(fresh, server.RedriveEntry{Id: &id, ReceiptHandle: &handle})
		}
		before := len(r.redriven) + r.skipped + r.failed
		// Without a rate, one call for the whole receive; with one, a call
		// per message, each redrive followed by its share of a second.
		batches := [][]server.RedriveEntry{fresh}
		if r.rate > 0 {
			batches = nil
			for _, e := range fresh {
				batches = append(batches, []server.RedriveEntry{e})
			}
		}
		for _, b := range batches {
			if len(b) == 0 {
				continue
			}
			if err := sleepUntil(ctx, next); err != nil {
				return err
			}
			n, err := r.send(ctx, b)
			if err != nil {
				return err
			}
			if n > 0 && r.rate > 0 {
				next = time.Now().Add(time.Duration(float64(time.Second) / r.rate))
			}
		}
		// Messages are received in the order they were stored (those made
		// visible again first): a receive that brings nothing new from
		// before the run started, but either is not full or brings
		// messages stored since, found all there was to take.
		taken := len(r.redriven) + r.skipped + r.failed - before
		if taken == 0 && (len(fresh) > 0 || len(got.Messages) < size) {
			return nil
		}
	}
	return nil
}

// sleepUntil waits until t, or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	wait := time.Until(t)
	if wait <= 0 {
		return nil
	}
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send asks the server to redrive entries and returns how many it did.
func (r *redriver) send(ctx context.Context, entries []server.RedriveEntry) (int, error) {
	in := server.RedriveInput{QueueUrl: &r.queue, RunId: &r.runID, Entries: entries, Rule: r.rule, ErrorCode: r.code, DryRun: r.dryRun}
	if r.max > 0 {
		in.Limit = r.max - len(r.redriven)
	}
	var out server.RedriveOutput
	if err := r.admin(ctx, "RedriveMessages", in, &out); err != nil {
		return 0, err
	}
	verb := "redriven"
	if r.dryRun {
		verb = "would redrive"
	}
	for _, s := range out.Successful {
		r.redriven = append(r.redriven, s)
		if r.dryRun {
			r.held = append(r.held, r.handles[s.Id])
		}
		fmt.Fprintf(r.out, "%s event %s -> %s (rule %s)\n", verb, s.EventId, s.TargetArn, s.RuleArn)
	}
	for _, f := range out.Failed {
		r.failed++
		r.held = append(r.held, r.handles[f.Id])
		fmt.Fprintf(r.out, "not redriven: message %s: %s: %s\n", f.Id, f.Code, f.Message)
	}
	r.skipped += len(out.Skipped)
	for _, id := range append(out.Skipped, out.Later...) {
		r.held = append(r.held, r.handles[id])
	}
	for _, e := range entries {
		delete(r.handles, *e.Id)
	}
	return len(out.Successful), nil
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

// await waits for the outcomes of the events redriven, until every one is
// known or none has come for r.wait: a target that is being retried can
// take up to a day (its retry policy), which the run does not wait for.
func (r *redriver) await(ctx context.Context) error {
	if r.dryRun || r.wait <= 0 || len(r.redriven) == 0 {
		return nil
	}
	mine := map[string]bool{}
	for _, s := range r.redriven {
		mine[s.Id] = true
	}
	var after uint64
	progress := time.Now()
	for len(r.results) < len(r.redriven) && time.Since(progress) < r.wait {
		var out server.RedriveStatusOutput
		if err := r.admin(ctx, "RedriveStatus", server.RedriveStatusInput{RunId: &r.runID, After: after}, &out); err != nil {
			return err
		}
		after = out.After
		for _, res := range out.Results {
			if _, known := r.results[res.MessageID]; mine[res.MessageID] && !known {
				r.results[res.MessageID] = res
				progress = time.Now()
			}
		}
		if len(r.results) < len(r.redriven) {
			if err := sleepUntil(ctx, time.Now().Add(200*time.Millisecond)); err != nil {
				return err
			}
		}
	}
	return nil
}

// report prints what became of each event that did not go through and the
// counts, and returns the exit code they call for.
func (r *redriver) report() int {
	if r.dryRun {
		fmt.Fprintf(r.out, "%d would be redriven, %d skipped, %d not redriven\n", len(r.redriven), r.skipped, r.failed)
		return min(r.failed, 1)
	}
	delivered, again, pending := 0, 0, 0
	for _, s := range r.redriven {
		res, ok := r.results[s.Id]
		switch {
		case !ok:
			pending++
			fmt.Fprintf(r.out, "not finished: event %s -> %s (still being retried, or waiting; bridgeport events trace %s)\n", s.EventId, s.TargetArn, s.EventId)
		case res.Outcome == store.OutcomeDelivered:
			delivered++
		default:
			again++
			fmt.Fprintf(r.out, "failed again: event %s -> %s: %s %s: %s\n", s.EventId, s.TargetArn, res.Outcome, res.Code, res.Message)
		}
	}
	fmt.Fprintf(r.out, "%d redriven (%d delivered, %d failed again, %d not finished), %d skipped, %d not redriven\n",
		len(r.redriven), delivered, again, pending, r.skipped, r.failed)
	switch {
	case again > 0 || r.failed > 0:
		return 1
	case pending > 0:
		return exitNotFinished
	}
	return 0
}
