package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
)

// TestDiagnoseAndTrace runs `bridgeport diagnose` and `bridgeport events
// trace` as a user would, on a rule whose queue target refuses EventBridge.
func TestDiagnoseAndTrace(t *testing.T) {
	t.Parallel()
	srv := runUserServer(t, "AKIADIAGNOSETEST0000", "diagnose-test-secret-00000000000000000")
	ctx := context.Background()
	base, eb, sq, getenv := srv.base, srv.eb, srv.sq, srv.getenv
	if _, err := sq.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("inbox")}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("orders"), EventPattern: aws.String(`{"source":["shop"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("orders"), Targets: []types.Target{{Id: aws.String("q"),
		Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:inbox")}}}); err != nil {
		t.Fatal(err)
	}
	put, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("shop"),
		DetailType: aws.String("x"), Detail: aws.String(`{}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(put.Entries[0].EventId)
	run := func(cmd func(context.Context, []string, *syncBuffer, *syncBuffer) int, args ...string) (int, string) {
		var out, errOut syncBuffer
		code := cmd(ctx, append(args, "--endpoint", base), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	traceCmd := func(ctx context.Context, args []string, o, e *syncBuffer) int { return events(ctx, args, o, e, getenv) }
	diagCmd := func(ctx context.Context, args []string, o, e *syncBuffer) int {
		return diagnose(ctx, args, o, e, getenv)
	}

	var code int
	var out string
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		code, out = run(traceCmd, "trace", id)
		if strings.Contains(out, "NO_PERMISSIONS") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "NO_PERMISSIONS") || !strings.Contains(out, "DROPPED") {
		t.Fatalf("events trace: %d\n%s", code, out)
	}
	code, out = run(diagCmd, "--rule", "orders")
	if code != 1 || !strings.Contains(out, "PROBLEM") || !strings.Contains(out, "fix: aws sqs set-queue-attributes") ||
		!strings.Contains(out, "no dead-letter queue") {
		t.Fatalf("diagnose: %d\n%s", code, out)
	}
	code, out = run(diagCmd, "--rule", "orders", "--output", "json")
	var report struct{ Problems int }
	if code != 1 || json.Unmarshal([]byte(out), &report) != nil || report.Problems != 2 {
		t.Fatalf("diagnose --output json: %d\n%s", code, out)
	}
	// Fixed: no problem, exit 0.
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"*"}]}`
	if _, err := sq.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(base + "/000000000000/inbox"),
		Attributes: map[string]string{"Policy": policy}}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("shop"),
		DetailType: aws.String("x"), Detail: aws.String(`{}`)}}}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if code, out = run(diagCmd, "--rule", "orders"); code == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 0 {
		t.Fatalf("diagnose after the fix: %d\n%s", code, out)
	}
	if code, out := run(diagCmd); code != 2 {
		t.Errorf("diagnose without --rule: %d %s", code, out)
	}
}
