package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"bridgeport/internal/admin"
	"bridgeport/internal/awsapi"
	rd "bridgeport/internal/redrive"
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
	r := rd.New(clientCaller{cl}, rd.Options{QueueURL: *queueURL, Max: *maxN, Rate: *rate, Rule: *rule, ErrorCode: *code, DryRun: *dryRun, Wait: *wait})
	verb := "redriven"
	if *dryRun {
		verb = "would redrive"
	}
	r.OnRedriven = func(s rd.Redriven) {
		fmt.Fprintf(stdout, "%s event %s -> %s (rule %s)\n", verb, s.EventId, s.TargetArn, s.RuleArn)
	}
	r.OnFailed = func(f rd.Failure) {
		fmt.Fprintf(stdout, "not redriven: message %s: %s: %s\n", f.Id, f.Code, f.Message)
	}
	err = r.Do(ctx)
	status := report(stdout, r.Progress(-1), *dryRun)
	if err != nil {
		fmt.Fprintln(stderr, "bridgeport redrive:", err)
		return 1
	}
	return status
}

// clientCaller makes a redrive run's calls with the command line's signed
// HTTP client.
type clientCaller struct{ cl *awsapi.Client }

func (c clientCaller) SQS(ctx context.Context, op string, in, out any) error {
	return c.cl.Call(ctx, "sqs", "1.0", "AmazonSQS."+op, in, out)
}

func (c clientCaller) Admin(ctx context.Context, op string, in, out any) error {
	return c.cl.Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+"."+op, in, out)
}

// report prints what became of each event that did not go through and the
// counts, and returns the exit code they call for.
func report(out io.Writer, p rd.Progress, dryRun bool) int {
	if dryRun {
		fmt.Fprintf(out, "%d would be redriven, %d skipped, %d not redriven\n", p.Redriven, p.Skipped, p.NotRedriven)
		return min(p.NotRedriven, 1)
	}
	pending := 0
	for _, o := range p.Outcomes {
		switch {
		case o.Result == nil:
			pending++
			fmt.Fprintf(out, "not finished: event %s -> %s (still being retried, or waiting; bridgeport events trace %s)\n", o.EventId, o.TargetArn, o.EventId)
		case o.Result.Outcome != store.OutcomeDelivered:
			fmt.Fprintf(out, "failed again: event %s -> %s: %s %s: %s\n", o.EventId, o.TargetArn, o.Result.Outcome, o.Result.Code, o.Result.Message)
		}
	}
	fmt.Fprintf(out, "%d redriven (%d delivered, %d failed again, %d not finished), %d skipped, %d not redriven\n",
		p.Redriven, p.Delivered, p.FailedAgain, pending, p.Skipped, p.NotRedriven)
	switch {
	case p.FailedAgain > 0 || p.NotRedriven > 0:
		return 1
	case pending > 0:
		return exitNotFinished
	}
	return 0
}
