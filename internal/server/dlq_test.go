package server

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"bridgeport/internal/config"
	"bridgeport/internal/deliver"
	"bridgeport/internal/store"
)

const ruleArn = "arn:aws:events:us-east-1:000000000000:rule/r"

// dlqPolicy lets EventBridge send to the queue for the rule r, as
// EventBridge's documentation writes it.
func dlqPolicy(queueArn string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"dlq","Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},
		"Action":"sqs:SendMessage","Resource":%q,"Condition":{"ArnEquals":{"aws:SourceArn":%q}}}]}`, queueArn, ruleArn)
}

// withDLQ creates the queue "dlq" with a policy (if given) and gives the
// delivery environment's target x that queue as its dead-letter queue.
func (d *deliveryEnv) withDLQ(policy string) (*awssqs.Client, string) {
	d.t.Helper()
	c := d.sqsClient()
	attrs := map[string]string{}
	if policy != "" {
		attrs["Policy"] = policy
	}
	url := d.createQueue(c, "dlq", attrs)
	d.setTarget(func(t *types.Target) {
		t.DeadLetterConfig = &types.DeadLetterConfig{Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:dlq")}
	})
	return c, url
}

// setTarget changes target x of rule r.
func (d *deliveryEnv) setTarget(change func(*types.Target)) {
	d.t.Helper()
	list, err := d.eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("r")})
	if err != nil || len(list.Targets) != 1 {
		d.t.Fatalf("targets: %v, %v", list, err)
	}
	t := list.Targets[0]
	change(&t)
	out, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{t}})
	if err != nil || out.FailedEntryCount != 0 {
		d.t.Fatalf("PutTargets: %+v, %v", out, err)
	}
}

// receiveDLQ waits for n messages on the queue and returns them.
func receiveDLQ(t *testing.T, c *awssqs.Client, url string, n int) []sqstypes.Message {
	t.Helper()
	var got []sqstypes.Message
	deadline := time.Now().Add(time.Minute)
	for len(got) < n && time.Now().Before(deadline) {
		out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"}, VisibilityTimeout: 600})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.Messages...)
	}
	if len(got) != n {
		t.Fatalf("%d messages on the dead-letter queue, want %d", len(got), n)
	}
	return got
}

func attrs(m sqstypes.Message) map[string]string {
	out := map[string]string{}
	for k, v := range m.MessageAttributes {
		if aws.ToString(v.DataType) != "String" {
			out[k] = "type " + aws.ToString(v.DataType)
			continue
		}
		out[k] = aws.ToString(v.StringValue)
	}
	return out
}

func checkDeadLetter(t *testing.T, m sqstypes.Message, want map[string]string) {
	t.Helper()
	got := attrs(m)
	if len(got) != len(want) {
		t.Errorf("attributes %v, want %v", got, want)
	}
	for k, v := range want {
		if k == "ERROR_MESSAGE" {
			if got[k] == "" {
				t.Errorf("no ERROR_MESSAGE")
			}
			continue
		}
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// The body is the original event, not the target's input.
	var ev map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil || ev["source"] != "t" || ev["detail-type"] != "x" {
		t.Errorf("body %s is not the event", aws.ToString(m.Body))
	}
}

func (d *deliveryEnv) destArn() string {
	return "arn:aws:events:us-east-1:000000000000:api-destination/d/" + d.destID()
}

func (d *deliveryEnv) destID() string {
	out, err := d.eb.DescribeApiDestination(ctx, &eventbridge.DescribeApiDestinationInput{Name: aws.String("d")})
	if err != nil {
		d.t.Fatal(err)
	}
	arn := aws.ToString(out.ApiDestinationArn)
	return arn[len(arn)-36:]
}

func TestDeadLetterRetriesExhausted(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 503 }, &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(2), MaximumEventAgeInSeconds: aws.Int32(600)})
	c, url := d.withDLQ(dlqPolicy("arn:aws:sqs:us-east-1:000000000000:dlq"))
	d.put()
	m := receiveDLQ(t, c, url, 1)[0]
	checkDeadLetter(t, m, map[string]string{"RULE_ARN": ruleArn, "TARGET_ARN": d.destArn(), "ERROR_CODE": "ERROR_FROM_TARGET",
		"ERROR_MESSAGE": "", "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts", "RETRY_ATTEMPTS": "2"})
	if n := len(d.sink.received()); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
	if dropped, sent, failed := d.srv.DeadLetterCounts(); dropped != 0 || sent != 1 || failed != 0 {
		t.Errorf("counts: dropped %d, sent %d, failed %d", dropped, sent, failed)
	}
}

func TestDeadLetterNotRetried(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 404 }, nil)
	c, url := d.withDLQ(dlqPolicy("arn:aws:sqs:us-east-1:000000000000:dlq"))
	d.put()
	m := receiveDLQ(t, c, url, 1)[0]
	// Not retried: no EXHAUSTED_RETRY_CONDITION.
	checkDeadLetter(t, m, map[string]string{"RULE_ARN": ruleArn, "TARGET_ARN": d.destArn(), "ERROR_CODE": "ERROR_FROM_TARGET",
		"ERROR_MESSAGE": "", "RETRY_ATTEMPTS": "0"})
}

func TestDeadLetterEventTooOld(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64
	d := setupDelivery(t, func(int) int {
		skew.Store(int64(61 * time.Second)) // the clock jumps while the target answers
		return 503
	}, &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(185), MaximumEventAgeInSeconds: aws.Int32(60)}, func(c *config.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	c, url := d.withDLQ(dlqPolicy("arn:aws:sqs:us-east-1:000000000000:*"))
	d.put()
	m := receiveDLQ(t, c, url, 1)[0]
	checkDeadLetter(t, m, map[string]string{"RULE_ARN": ruleArn, "TARGET_ARN": d.destArn(), "ERROR_CODE": "ERROR_FROM_TARGET",
		"ERROR_MESSAGE": "", "EXHAUSTED_RETRY_CONDITION": "MaximumEventAgeInSeconds", "RETRY_ATTEMPTS": "0"})
}

// TestDeadLetterPolicyRefuses: a queue whose policy does not let
// EventBridge send for this rule gets nothing; the event is counted as
// failed to be sent to the dead-letter queue and logged.
func TestDeadLetterPolicyRefuses(t *testing.T) {
	t.Parallel()
	for name, policy := range map[string]string{
		"no policy":    "",
		"another rule": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:events:us-east-1:000000000000:rule/other"}}}]}`,
		"denied":       `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sqs:*"},{"Effect":"Deny","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := setupDelivery(t, func(int) int { return 404 }, nil)
			c, url := d.withDLQ(policy)
			d.put()
			waitFor(t, func() bool { _, _, failed := d.srv.DeadLetterCounts(); return failed == 1 })
			out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1})
			if err != nil || len(out.Messages) != 0 {
				t.Errorf("queue received %v, %v", out, err)
			}
			if !containsLog(d.logs.String(), "event not delivered and not sent to its dead-letter queue", "NO_PERMISSIONS") {
				t.Errorf("no log line for the failed send:\n%s", d.logs.String())
			}
		})
	}
}

func containsLog(logs, msg, code string) bool {
	for _, line := range splitLines(logs) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg && m["dlq_error_code"] == code {
			return true
		}
	}
	return false
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// TestDeadLetterConfigChecked: PutTargets reports a target whose
// dead-letter queue is missing, FIFO, in another region or account as a
// failed entry and stores the others.
func TestDeadLetterConfigChecked(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.sqsClient()
	e.createQueue(c, "good", nil)
	e.createQueue(c, "ordered.fifo", map[string]string{"FifoQueue": "true"})
	if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(`{"source":["t"]}`)}); err != nil {
		t.Fatal(err)
	}
	target := func(id, dlq string) types.Target {
		return types.Target{Id: aws.String(id), Arn: aws.String("arn:aws:events:us-east-1:000000000000:event-bus/default"),
			DeadLetterConfig: &types.DeadLetterConfig{Arn: aws.String(dlq)}}
	}
	out, err := e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{
		target("ok", "arn:aws:sqs:us-east-1:000000000000:good"),
		target("missing", "arn:aws:sqs:us-east-1:000000000000:nope"),
		target("fifo", "arn:aws:sqs:us-east-1:000000000000:ordered.fifo"),
		target("region", "arn:aws:sqs:eu-west-1:000000000000:good"),
		target("account", "arn:aws:sqs:us-east-1:111111111111:good"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]string{}
	for _, f := range out.FailedEntries {
		failed[aws.ToString(f.TargetId)] = aws.ToString(f.ErrorCode) + ": " + aws.ToString(f.ErrorMessage)
	}
	if out.FailedEntryCount != 4 || len(failed) != 4 || failed["ok"] != "" {
		t.Fatalf("failed entries %v", failed)
	}
	for id, want := range map[string]string{
		"missing": "ValidationException: The dead-letter queue arn:aws:sqs:us-east-1:000000000000:nope does not exist.",
		"fifo":    "ValidationException: The dead-letter queue arn:aws:sqs:us-east-1:000000000000:ordered.fifo is a FIFO queue; only standard queues can be dead-letter queues.",
		"region":  "ValidationException: The dead-letter queue arn:aws:sqs:eu-west-1:000000000000:good must be in the same Region as the rule (us-east-1).",
		"account": "ValidationException: The dead-letter queue arn:aws:sqs:us-east-1:111111111111:good must be in account 000000000000.",
	} {
		if failed[id] != want {
			t.Errorf("%s: %q, want %q", id, failed[id], want)
		}
	}
	list, err := e.eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("r")})
	if err != nil || len(list.Targets) != 1 || aws.ToString(list.Targets[0].Id) != "ok" {
		t.Errorf("stored targets %+v, %v", list, err)
	}
}

// TestQueueTarget: a rule whose target is a queue puts the event (here
// transformed) on it; without a policy for EventBridge the event goes to
// the dead-letter queue with NO_PERMISSIONS.
func TestQueueTarget(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.sqsClient()
	all := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"*"}]}`
	inbox := e.createQueue(c, "inbox", map[string]string{"Policy": all})
	closed := e.createQueue(c, "closed", nil)
	dlq := e.createQueue(c, "dlq", map[string]string{"Policy": all})
	fifo := e.createQueue(c, "ordered.fifo", map[string]string{"FifoQueue": "true", "Policy": all})
	if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(`{"source":["t"]}`)}); err != nil {
		t.Fatal(err)
	}
	out, err := e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{
		{Id: aws.String("in"), Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:inbox"), InputPath: aws.String("$.detail")},
		{Id: aws.String("closed"), Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:closed"),
			DeadLetterConfig: &types.DeadLetterConfig{Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:dlq")}},
		{Id: aws.String("fifo"), Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:ordered.fifo"),
			SqsParameters: &types.SqsParameters{MessageGroupId: aws.String("orders")}},
	}})
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutTargets: %+v, %v", out, err)
	}
	put, err := e.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("t"), DetailType: aws.String("x"), Detail: aws.String(`{"n":5}`)}}})
	if err != nil || put.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %+v, %v", put, err)
	}
	got := receiveDLQ(t, c, inbox, 1)
	if body := aws.ToString(got[0].Body); body != `{"n":5}` {
		t.Errorf("queue target body %s", body)
	}
	ordered, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(fifo), WaitTimeSeconds: 20,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}})
	if err != nil || len(ordered.Messages) != 1 || ordered.Messages[0].Attributes["MessageGroupId"] != "orders" ||
		ordered.Messages[0].Attributes["MessageDeduplicationId"] == "" {
		t.Errorf("FIFO queue target: %+v, %v", ordered, err)
	}
	dead := receiveDLQ(t, c, dlq, 1)
	if a := attrs(dead[0]); a["ERROR_CODE"] != "NO_PERMISSIONS" || a["TARGET_ARN"] != "arn:aws:sqs:us-east-1:000000000000:closed" || a["RETRY_ATTEMPTS"] != "0" {
		t.Errorf("dead letter attributes %v", a)
	}
	if n := e.queueCounts(c, closed); n != [2]string{"0", "0"} {
		t.Errorf("closed queue counts %v", n)
	}
}

// TestDeadLetterIdempotent: a dead-letter send repeated for the same job,
// as after a crash between the send and the job's acknowledgement, stores
// one message.
func TestDeadLetterIdempotent(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.sqsClient()
	url := e.createQueue(c, "dlq", map[string]string{"Policy": dlqPolicy("arn:aws:sqs:us-east-1:000000000000:dlq")})
	dl := deliver.DeadLetter{EventID: "e1", Event: []byte(`{"id":"e1","source":"t","detail-type":"x"}`), Bus: "default", RuleArn: ruleArn,
		TargetID: "x", JobID: "e1/" + ruleArn + "/x/3.0", TargetArn: "arn:aws:events:us-east-1:000000000000:api-destination/d/1",
		DeadLetterArn: "arn:aws:sqs:us-east-1:000000000000:dlq", ErrorCode: "TIMEOUT", ErrorMessage: "no answer within 5s",
		ExhaustedCondition: "MaximumRetryAttempts", RetryAttempts: 3}
	for range 3 {
		if outcome, err := e.srv.deadLetter(ctx, dl); err != nil || outcome != store.OutcomeDeadLettered {
			t.Fatalf("dead-letter send: %s, %v", outcome, err)
		}
	}
	got := receiveDLQ(t, c, url, 1)
	checkDeadLetter(t, got[0], map[string]string{"RULE_ARN": ruleArn, "TARGET_ARN": dl.TargetArn, "ERROR_CODE": "TIMEOUT",
		"ERROR_MESSAGE": "", "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts", "RETRY_ATTEMPTS": "3"})
	if more, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1}); err != nil || len(more.Messages) != 0 {
		t.Errorf("repeated sends stored %d more messages (%v)", len(more.Messages), err)
	}
}
