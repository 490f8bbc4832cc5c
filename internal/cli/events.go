package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"bridgeport/internal/admin"
	"bridgeport/internal/awsapi"
)

// events reads the delivery attempt log: `events trace <event-id>` shows
// every attempt to deliver one event, `events attempts --rule NAME` the
// attempts of a rule's targets.
func events(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || (args[0] != "trace" && args[0] != "attempts") {
		fmt.Fprintln(stderr, "usage: bridgeport events trace EVENT-ID [--output json]\n       bridgeport events attempts --rule NAME [--event-bus NAME] [--target ID] [--failed] [--since 24h] [--limit N] [--output json]")
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("bridgeport events "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	output := fs.String("output", "text", "text or json")
	rule := fs.String("rule", "", "the rule (attempts)")
	bus := fs.String("event-bus", "default", "the rule's event bus (attempts)")
	target := fs.String("target", "", "only this target id (attempts)")
	failed := fs.Bool("failed", false, "only failed attempts (attempts)")
	since := fs.Duration("since", 24*time.Hour, "how far back (attempts)")
	limit := fs.Int("limit", 1000, "at most this many records (attempts)")
	rest := args[1:]
	var eventID string
	if sub == "trace" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		eventID, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if sub == "trace" && eventID == "" && fs.NArg() == 1 {
		eventID = fs.Arg(0)
	}
	if (sub == "trace" && eventID == "") || (sub == "attempts" && *rule == "") || (*output != "text" && *output != "json") {
		fmt.Fprintf(stderr, "bridgeport events %s: missing or bad arguments (-h for help)\n", sub)
		return 2
	}
	cl, err := cf.client(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "bridgeport events %s: %v\n", sub, err)
		return 2
	}
	var out admin.AttemptsOutput
	if sub == "trace" {
		err = cl.Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+".TraceEvent", admin.TraceEventInput{EventId: &eventID}, &out)
	} else {
		in := admin.ListAttemptsInput{Rule: rule, EventBusName: bus, FailedOnly: *failed, Since: &awsapi.Time{Time: time.Now().Add(-*since)}, Limit: limit}
		if *target != "" {
			in.TargetId = target
		}
		err = cl.Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+".ListAttempts", in, &out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bridgeport events %s: %v\n", sub, err)
		return 1
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return 0
	}
	if len(out.Attempts) == 0 {
		fmt.Fprintln(stdout, "no attempts recorded")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tEVENT\tRULE\tTARGET\tATTEMPT\tDURATION\tRESULT\tOUTCOME")
	for _, a := range out.Attempts {
		result := fmt.Sprint(a.StatusCode)
		if a.ErrorCode != "" {
			result = a.ErrorCode
			if a.StatusCode != 0 {
				result += fmt.Sprintf(" (%d)", a.StatusCode)
			}
		}
		outcome := a.Outcome
		if a.RetryAt != nil {
			outcome += " until " + a.RetryAt.UTC().Format(time.RFC3339)
		}
		if a.DeadLetterQueueArn != "" {
			outcome += " to " + a.DeadLetterQueueArn
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%.1fms\t%s\t%s\n", a.Time.UTC().Format(time.RFC3339Nano), a.EventId,
			a.RuleArn[strings.LastIndexByte(a.RuleArn, '/')+1:], a.TargetId, a.Attempt, a.DurationMs, result, outcome)
	}
	_ = tw.Flush()
	for _, a := range out.Attempts {
		if a.ErrorMessage != "" {
			fmt.Fprintf(stdout, "attempt %d of %s to %s: %s\n", a.Attempt, a.EventId, a.TargetId, a.ErrorMessage)
		}
	}
	return 0
}
