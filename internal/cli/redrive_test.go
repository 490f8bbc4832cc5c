package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// TestRedrive drives `bridgeport redrive` against a server as a user would:
// events for a queue target whose policy refuses EventBridge land in the
// dead-letter queue; once the policy is fixed, redrive delivers them, with
// the filters and limits it offers.
func TestRedrive(t *testing.T) {
	t.Parallel()
	srv := runUserServer(t, "AKIAREDRIVETEST00000", "redrive-test-secret-0000000000000000000")
	ctx := context.Background()
	base, eb, sq, getenv := srv.base, srv.eb, srv.sq, srv.getenv

	allow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"*"}]}`
	mkQueue := func(name string, attrs map[string]string) string {
		out, err := sq.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.QueueUrl)
	}
	inbox := mkQueue("inbox", nil) // no policy yet: EventBridge may not send
	dlq := mkQueue("dlq", map[string]string{"Policy": allow})
	for _, r := range []string{"r1", "r2"} {
		if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(r), EventPattern: aws.String(`{"source":["` + r + `"]}`)}); err != nil {
			t.Fatal(err)
		}
		out, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(r), Targets: []types.Target{{Id: aws.String("q"),
			Arn:              aws.String("arn:aws:sqs:us-east-1:000000000000:inbox"),
			DeadLetterConfig: &types.DeadLetterConfig{Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:dlq")}}}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutTargets: %+v, %v", out, err)
		}
	}
	var ids []string
	for _, src := range []string{"r1", "r1", "r1", "r2"} {
		out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String(src),
			DetailType: aws.String("x"), Detail: aws.String(`{}`)}}})
		if err != nil || out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %+v, %v", out, err)
		}
		ids = append(ids, aws.ToString(out.Entries[0].EventId))
	}
	waitCount(t, sq, dlq, 4)

	run := func(args ...string) (int, string) {
		var out, errOut syncBuffer
		code := redrive(ctx, append([]string{"--endpoint", base}, args...), &out, &errOut, getenv)
		return code, out.String() + errOut.String()
	}
	// A dry run changes nothing.
	code, out := run("--queue-url", dlq, "--rule", "r1", "--dry-run")
	if code != 0 || !strings.Contains(out, "3 would be redriven, 1 skipped by the filters, 0 failed") {
		t.Fatalf("dry run: %d %s", code, out)
	}
	waitCount(t, sq, dlq, 4)

	if _, err := sq.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(inbox), Attributes: map[string]string{"Policy": allow}}); err != nil {
		t.Fatal(err)
	}
	code, out = run("--queue-url", dlq, "--rule", "arn:aws:events:us-east-1:000000000000:rule/r1", "--max", "2", "--error-code", "NO_PERMISSIONS")
	if code != 0 || !strings.Contains(out, "2 redriven, ") {
		t.Fatalf("redrive --max 2: %d %s", code, out)
	}
	waitCount(t, sq, dlq, 2)
	code, out = run("--queue-url", dlq, "--rate", "50")
	if code != 0 || !strings.Contains(out, "2 redriven, 0 skipped by the filters, 0 failed") {
		t.Fatalf("redrive all: %d %s", code, out)
	}
	waitCount(t, sq, dlq, 0)

	// Every event reached the inbox once.
	var got []string
	deadline := time.Now().Add(time.Minute)
	for len(got) < 4 && time.Now().Before(deadline) {
		r, err := sq.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(inbox), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range r.Messages {
			var ev struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.ID)
		}
	}
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Errorf("inbox got events %v, want %v", got, ids)
	}
	// A bad queue URL is an error.
	if code, out := run("--queue-url", base+"/000000000000/nope"); code != 1 || !strings.Contains(out, "The specified queue does not exist.") {
		t.Errorf("missing queue: %d %s", code, out)
	}
}

// waitCount waits until the queue holds n messages, visible or not.
func waitCount(t *testing.T, sq *awssqs.Client, url string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	last := ""
	for time.Now().Before(deadline) {
		out, err := sq.GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
		if err != nil {
			t.Fatal(err)
		}
		last = fmt.Sprint(out.Attributes)
		if out.Attributes["ApproximateNumberOfMessages"] == fmt.Sprint(n) && out.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("queue %s: %s, want %d messages", url, last, n)
}
