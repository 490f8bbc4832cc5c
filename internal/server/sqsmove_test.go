package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

const sqsArn = "arn:aws:sqs:us-east-1:000000000000:"

// deadLetter sends bodies to the queue at url and receives them until its
// RedrivePolicy (maxReceiveCount 1, visibility 0) has moved them all to
// the dead-letter queue at dlq.
func (e *env) deadLetter(c *awssqs.Client, url, dlq string, bodies []string) {
	e.t.Helper()
	count := func(u string) int {
		n, err := c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(u),
			AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
		if err != nil {
			e.t.Fatal(err)
		}
		var visible, inFlight int
		fmt.Sscan(n.Attributes["ApproximateNumberOfMessages"], &visible)
		fmt.Sscan(n.Attributes["ApproximateNumberOfMessagesNotVisible"], &inFlight)
		return visible + inFlight
	}
	want := count(dlq) + len(bodies)
	for _, b := range bodies {
		if _, err := c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(b)}); err != nil {
			e.t.Fatal(err)
		}
	}
	for round := 0; count(dlq) < want; round++ {
		if round > 10+len(bodies) {
			e.t.Fatalf("%d of %d messages dead-lettered", count(dlq)-want+len(bodies), len(bodies))
		}
		if _, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// drain receives and deletes every message of a queue and returns the
// bodies, sorted.
func (e *env) drain(c *awssqs.Client, url string) []string {
	e.t.Helper()
	var bodies []string
	for {
		out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 60,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}})
		if err != nil {
			e.t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			slices.Sort(bodies)
			return bodies
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
			if _, err := c.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// waitTask waits until the newest move task of a source queue has
// status, and returns it.
func waitTask(t *testing.T, c *awssqs.Client, source string, status string) sqstypes.ListMessageMoveTasksResultEntry {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := c.ListMessageMoveTasks(ctx, &awssqs.ListMessageMoveTasksInput{SourceArn: aws.String(sqsArn + source)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Results) > 0 && aws.ToString(out.Results[0].Status) == status {
			return out.Results[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("task on %s: %+v, want %s", source, out.Results, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	slices.Sort(out)
	return out
}

func TestMessageMoveTasks(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.sqsClient()
	redrive := map[string]string{"VisibilityTimeout": "0", "RedrivePolicy": `{"deadLetterTargetArn":"` + sqsArn + `dlq","maxReceiveCount":"1"}`}
	dlq := e.createQueue(c, "dlq", nil)
	a := e.createQueue(c, "a", redrive)
	b := e.createQueue(c, "b", redrive)
	other := e.createQueue(c, "other", nil)
	e.createQueue(c, "plain", nil)
	e.deadLetter(c, a, dlq, bodies("a", 20))
	e.deadLetter(c, b, dlq, bodies("b", 10))

	// Dead-lettered messages say where they came from.
	got, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"DeadLetterQueueSourceArn"}})
	if err != nil || len(got.Messages) == 0 {
		t.Fatalf("receive from the DLQ: %+v, %v", got, err)
	}
	for _, m := range got.Messages {
		if src := m.Attributes["DeadLetterQueueSourceArn"]; src != sqsArn+"a" && src != sqsArn+"b" {
			t.Errorf("DeadLetterQueueSourceArn %q", src)
		}
		// Visible again, for the task to count and move.
		if _, err := c.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(dlq), ReceiptHandle: m.ReceiptHandle,
			VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
	}
	srcs, err := c.ListDeadLetterSourceQueues(ctx, &awssqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlq)})
	if err != nil || !slices.Equal(srcs.QueueUrls, []string{a, b}) || srcs.NextToken != nil {
		t.Fatalf("ListDeadLetterSourceQueues: %+v, %v", srcs, err)
	}
	page, err := c.ListDeadLetterSourceQueues(ctx, &awssqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlq), MaxResults: aws.Int32(1)})
	if err != nil || !slices.Equal(page.QueueUrls, []string{a}) || page.NextToken == nil {
		t.Fatalf("page 1: %+v, %v", page, err)
	}
	page, err = c.ListDeadLetterSourceQueues(ctx, &awssqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlq), MaxResults: aws.Int32(1), NextToken: page.NextToken})
	if err != nil || !slices.Equal(page.QueueUrls, []string{b}) || page.NextToken != nil {
		t.Fatalf("page 2: %+v, %v", page, err)
	}

	// Refusals, each changing nothing.
	for _, tc := range []struct {
		in        awssqs.StartMessageMoveTaskInput
		code, msg string
	}{
		{awssqs.StartMessageMoveTaskInput{SourceArn: aws.String(sqsArn + "plain")}, "InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue."},
		{awssqs.StartMessageMoveTaskInput{SourceArn: aws.String(sqsArn + "nope")}, "ResourceNotFoundException",
			"The resource that you specified for the SourceArn parameter doesn't exist."},
		{awssqs.StartMessageMoveTaskInput{SourceArn: aws.String(sqsArn + "dlq"), DestinationArn: aws.String(sqsArn + "nope")}, "ResourceNotFoundException",
			"The resource that you specified for the DestinationArn parameter doesn't exist."},
		{awssqs.StartMessageMoveTaskInput{SourceArn: aws.String(sqsArn + "dlq"), MaxNumberOfMessagesPerSecond: aws.Int32(501)}, "InvalidParameterValue", ""},
		{awssqs.StartMessageMoveTaskInput{SourceArn: aws.String(sqsArn + "dlq"), MaxNumberOfMessagesPerSecond: aws.Int32(0)}, "InvalidParameterValue", ""},
	} {
		_, err := c.StartMessageMoveTask(ctx, &tc.in)
		apiError(t, err, tc.code, tc.msg)
	}
	_, err = c.CancelMessageMoveTask(ctx, &awssqs.CancelMessageMoveTaskInput{TaskHandle: aws.String("foobared")})
	apiError(t, err, "InvalidParameterValue", "Value for parameter TaskHandle is invalid.")
	unknown := `{"taskId":"0f6f8e0e-0000-4000-8000-000000000000","sourceArn":"` + sqsArn + `dlq"}`
	_, err = c.CancelMessageMoveTask(ctx, &awssqs.CancelMessageMoveTaskInput{TaskHandle: aws.String(b64(unknown))})
	apiError(t, err, "ResourceNotFoundException", "Task does not exist.")
	_, err = c.ListMessageMoveTasks(ctx, &awssqs.ListMessageMoveTasksInput{SourceArn: aws.String(sqsArn + "dlq"), MaxResults: aws.Int32(11)})
	apiError(t, err, "InvalidParameterValue", "")
	if out, err := c.ListMessageMoveTasks(ctx, &awssqs.ListMessageMoveTasksInput{SourceArn: aws.String(sqsArn + "dlq")}); err != nil || len(out.Results) != 0 {
		t.Fatalf("tasks before any: %+v, %v", out, err)
	}

	// A slow task (2 a second), cancelled part way.
	start, err := c.StartMessageMoveTask(ctx, &awssqs.StartMessageMoveTaskInput{SourceArn: aws.String(sqsArn + "dlq"), MaxNumberOfMessagesPerSecond: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.StartMessageMoveTask(ctx, &awssqs.StartMessageMoveTaskInput{SourceArn: aws.String(sqsArn + "dlq")})
	apiError(t, err, "InvalidParameterValue", "There is already a task running. Only one active task is allowed for a source queue arn at a given time.")
	running := waitTask(t, c, "dlq", "RUNNING")
	for running.ApproximateNumberOfMessagesToMove == nil {
		running = waitTask(t, c, "dlq", "RUNNING") // counted when the task starts
	}
	if aws.ToString(running.TaskHandle) != aws.ToString(start.TaskHandle) || aws.ToInt32(running.MaxNumberOfMessagesPerSecond) != 2 ||
		aws.ToInt64(running.ApproximateNumberOfMessagesToMove) != 30 || running.DestinationArn != nil || running.StartedTimestamp < time.Now().Add(-time.Minute).UnixMilli() {
		t.Errorf("running task: to move %d, rate %d, %+v", aws.ToInt64(running.ApproximateNumberOfMessagesToMove), aws.ToInt32(running.MaxNumberOfMessagesPerSecond), running)
	}
	// Cancelled once some have moved (progress is written each second).
	for deadline := time.Now().Add(time.Minute); running.ApproximateNumberOfMessagesMoved < 2; running = waitTask(t, c, "dlq", "RUNNING") {
		if time.Now().After(deadline) {
			t.Fatalf("the task moved %d messages in a minute", running.ApproximateNumberOfMessagesMoved)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.CancelMessageMoveTask(ctx, &awssqs.CancelMessageMoveTaskInput{TaskHandle: start.TaskHandle}); err != nil {
		t.Fatal(err)
	}
	cancelled := waitTask(t, c, "dlq", "CANCELLED")
	moved := cancelled.ApproximateNumberOfMessagesMoved
	if moved == 0 || moved >= 30 || cancelled.TaskHandle != nil {
		t.Errorf("cancelled task: %+v", cancelled)
	}
	_, err = c.CancelMessageMoveTask(ctx, &awssqs.CancelMessageMoveTaskInput{TaskHandle: start.TaskHandle})
	apiError(t, err, "AWS.SimpleQueueService.UnsupportedOperation", "")

	// The rest, as fast as it goes, back where each came from.
	if _, err := c.StartMessageMoveTask(ctx, &awssqs.StartMessageMoveTaskInput{SourceArn: aws.String(sqsArn + "dlq")}); err != nil {
		t.Fatal(err)
	}
	done := waitTask(t, c, "dlq", "COMPLETED")
	if done.ApproximateNumberOfMessagesMoved+moved != 30 || done.MaxNumberOfMessagesPerSecond != nil {
		t.Errorf("completed task: %+v (after %d moved)", done, moved)
	}
	if got := e.drain(c, a); !slices.Equal(got, bodies("a", 20)) {
		t.Errorf("queue a got back %v", got)
	}
	if got := e.drain(c, b); !slices.Equal(got, bodies("b", 10)) {
		t.Errorf("queue b got back %v", got)
	}
	if got := e.drain(c, dlq); len(got) != 0 {
		t.Errorf("left in the DLQ: %v", got)
	}
	list, err := c.ListMessageMoveTasks(ctx, &awssqs.ListMessageMoveTasksInput{SourceArn: aws.String(sqsArn + "dlq"), MaxResults: aws.Int32(10)})
	if err != nil || len(list.Results) != 2 || aws.ToString(list.Results[0].Status) != "COMPLETED" || aws.ToString(list.Results[1].Status) != "CANCELLED" {
		t.Fatalf("tasks, newest first: %+v, %v", list, err)
	}

	// To another queue; then one whose destination goes away mid-way.
	e.deadLetter(c, a, dlq, bodies("c", 10))
	if _, err := c.StartMessageMoveTask(ctx, &awssqs.StartMessageMoveTaskInput{SourceArn: aws.String(sqsArn + "dlq"), DestinationArn: aws.String(sqsArn + "other")}); err != nil {
		t.Fatal(err)
	}
	if done := waitTask(t, c, "dlq", "COMPLETED"); aws.ToString(done.DestinationArn) != sqsArn+"other" {
		t.Errorf("task: %+v", done)
	}
	if got := e.drain(c, other); !slices.Equal(got, bodies("c", 10)) {
		t.Errorf("queue other got %v", got)
	}
	e.deadLetter(c, a, dlq, bodies("d", 10))
	if _, err := c.StartMessageMoveTask(ctx, &awssqs.StartMessageMoveTaskInput{SourceArn: aws.String(sqsArn + "dlq"), DestinationArn: aws.String(sqsArn + "other"),
		MaxNumberOfMessagesPerSecond: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	waitTask(t, c, "dlq", "RUNNING")
	if _, err := c.DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	failed := waitTask(t, c, "dlq", "FAILED")
	if aws.ToString(failed.FailureReason) != "AWS.SimpleQueueService.NonExistentQueue" {
		t.Errorf("failed task: %+v", failed)
	}
	// What was not moved is still in the DLQ.
	if left := e.drain(c, dlq); len(left)+int(failed.ApproximateNumberOfMessagesMoved) != 10 || len(left) == 0 {
		t.Errorf("left in the DLQ: %v, after %d moved", left, failed.ApproximateNumberOfMessagesMoved)
	}
}

// TestMessageMoveTaskRace starts eight tasks on one queue at once: one
// runs, seven are told a task is running.
func TestMessageMoveTaskRace(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.sqsClient()
	dlq := e.createQueue(c, "dlq", nil)
	a := e.createQueue(c, "a", map[string]string{"VisibilityTimeout": "0", "RedrivePolicy": `{"deadLetterTargetArn":"` + sqsArn + `dlq","maxReceiveCount":"1"}`})
	e.deadLetter(c, a, dlq, bodies("a", 10))
	var wg sync.WaitGroup
	results := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.StartMessageMoveTask(ctx, &awssqs.StartMessageMoveTaskInput{SourceArn: aws.String(sqsArn + "dlq"), MaxNumberOfMessagesPerSecond: aws.Int32(1)})
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	started := 0
	for err := range results {
		if err == nil {
			started++
			continue
		}
		apiError(t, err, "InvalidParameterValue", "There is already a task running. Only one active task is allowed for a source queue arn at a given time.")
	}
	if started != 1 {
		t.Fatalf("%d tasks started, want 1", started)
	}
	out, err := c.ListMessageMoveTasks(ctx, &awssqs.ListMessageMoveTasksInput{SourceArn: aws.String(sqsArn + "dlq"), MaxResults: aws.Int32(10)})
	if err != nil || len(out.Results) != 1 {
		t.Fatalf("tasks: %+v, %v", out, err)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestQueuePermissions(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.sqsClient()
	u := e.createQueue(c, "q", nil)
	policy := func() map[string]any {
		out, err := c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(u), AttributeNames: []sqstypes.QueueAttributeName{"Policy"}})
		if err != nil {
			t.Fatal(err)
		}
		p, ok := out.Attributes["Policy"]
		if !ok {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(p), &m); err != nil {
			t.Fatalf("policy %s: %v", p, err)
		}
		return m
	}
	if _, err := c.AddPermission(ctx, &awssqs.AddPermissionInput{QueueUrl: aws.String(u), Label: aws.String("one"), AWSAccountIds: []string{"111122223333"},
		Actions: []string{"SendMessage"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddPermission(ctx, &awssqs.AddPermissionInput{QueueUrl: aws.String(u), Label: aws.String("two"), AWSAccountIds: []string{"111122223333", "444455556666"},
		Actions: []string{"ReceiveMessage", "DeleteMessage"}}); err != nil {
		t.Fatal(err)
	}
	p := policy()
	want := `{"Id":"` + sqsArn + `q/SQSDefaultPolicy","Statement":[` +
		`{"Action":"SQS:SendMessage","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Resource":"` + sqsArn + `q","Sid":"one"},` +
		`{"Action":["SQS:ReceiveMessage","SQS:DeleteMessage"],"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::444455556666:root"]},"Resource":"` + sqsArn + `q","Sid":"two"}],` +
		`"Version":"2008-10-17"}`
	if got, _ := json.Marshal(p); string(got) != want {
		t.Errorf("policy\n%s\nwant\n%s", got, want)
	}
	for _, tc := range []struct {
		in        awssqs.AddPermissionInput
		code, msg string
	}{
		{awssqs.AddPermissionInput{Label: aws.String("one"), AWSAccountIds: []string{"111122223333"}, Actions: []string{"SendMessage"}},
			"InvalidParameterValue", "Value one for parameter Label is invalid. Reason: Already exists."},
		{awssqs.AddPermissionInput{Label: aws.String("x"), AWSAccountIds: []string{"111122223333"}, Actions: []string{"A", "B", "C", "D", "E", "F", "G", "H"}},
			"OverLimit", "8 Actions were found, maximum allowed is 7."},
		{awssqs.AddPermissionInput{Label: aws.String("x"), AWSAccountIds: []string{"111122223333"}, Actions: []string{"DeleteQueue"}},
			"InvalidParameterValue", "Value SQS:DeleteQueue for parameter ActionName is invalid. Reason: Only the queue owner is allowed to invoke this action."},
		{awssqs.AddPermissionInput{Label: aws.String("bad label!"), AWSAccountIds: []string{"111122223333"}, Actions: []string{"SendMessage"}}, "InvalidParameterValue", ""},
		{awssqs.AddPermissionInput{Label: aws.String("x"), AWSAccountIds: []string{"12"}, Actions: []string{"SendMessage"}}, "InvalidParameterValue", ""},
	} {
		tc.in.QueueUrl = aws.String(u)
		_, err := c.AddPermission(ctx, &tc.in)
		apiError(t, err, tc.code, tc.msg)
	}
	_, err := c.RemovePermission(ctx, &awssqs.RemovePermissionInput{QueueUrl: aws.String(u), Label: aws.String("three")})
	apiError(t, err, "InvalidParameterValue", "Value three for parameter Label is invalid. Reason: can't find label.")
	for _, label := range []string{"one", "two"} {
		if _, err := c.RemovePermission(ctx, &awssqs.RemovePermissionInput{QueueUrl: aws.String(u), Label: aws.String(label)}); err != nil {
			t.Fatal(err)
		}
		if label == "one" {
			if st := policy()["Statement"].([]any); len(st) != 1 || st[0].(map[string]any)["Sid"] != "two" {
				t.Errorf("after removing one: %v", st)
			}
		}
	}
	if p := policy(); p != nil {
		t.Errorf("policy after the last label went: %v", p)
	}
}
