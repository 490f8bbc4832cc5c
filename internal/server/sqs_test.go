package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// sqsClient returns an SDK client for the server, with the SDK's MD5
// validation of message bodies left on.
func (e *env) sqsClient() *awssqs.Client {
	return awssqs.New(awssqs.Options{
		BaseEndpoint:     aws.String("http://" + e.srv.Addr()),
		Region:           e.cfg.Region,
		Credentials:      credentials.NewStaticCredentialsProvider(testKey, testSecret, ""),
		RetryMaxAttempts: 1,
	})
}

func (e *env) createQueue(c *awssqs.Client, name string, attrs map[string]string) string {
	e.t.Helper()
	out, err := c.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

func TestQueueLifecycle(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.sqsClient()
	url := e.createQueue(c, "dlq", map[string]string{"VisibilityTimeout": "45", "MessageRetentionPeriod": "3600"})
	if want := "http://" + e.srv.Addr() + "/000000000000/dlq"; url != want {
		t.Errorf("QueueUrl = %s, want %s", url, want)
	}
	// The same attributes again return the queue; different ones fail.
	if again := e.createQueue(c, "dlq", map[string]string{"VisibilityTimeout": "45"}); again != url {
		t.Errorf("second create = %s", again)
	}
	_, err := c.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("dlq"), Attributes: map[string]string{"VisibilityTimeout": "10"}})
	var exists *sqstypes.QueueNameExists
	if !errors.As(err, &exists) {
		t.Errorf("create with other attributes: %v, want QueueNameExists", err)
	}
	e.createQueue(c, "events.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
	e.createQueue(c, "other", nil)

	got, err := c.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String("dlq")})
	if err != nil || aws.ToString(got.QueueUrl) != url {
		t.Errorf("GetQueueUrl = %v, %v", got, err)
	}
	list, err := c.ListQueues(ctx, &awssqs.ListQueuesInput{QueueNamePrefix: aws.String("d")})
	if err != nil || len(list.QueueUrls) != 1 || list.QueueUrls[0] != url {
		t.Errorf("ListQueues(d) = %v, %v", list, err)
	}
	page, err := c.ListQueues(ctx, &awssqs.ListQueuesInput{MaxResults: aws.Int32(2)})
	if err != nil || len(page.QueueUrls) != 2 || page.NextToken == nil {
		t.Fatalf("ListQueues page 1 = %v, %v", page, err)
	}
	page2, err := c.ListQueues(ctx, &awssqs.ListQueuesInput{MaxResults: aws.Int32(2), NextToken: page.NextToken})
	if err != nil || len(page2.QueueUrls) != 1 || page2.NextToken != nil {
		t.Errorf("ListQueues page 2 = %v, %v", page2, err)
	}

	attrs, err := c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"QueueArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "VisibilityTimeout": "45",
		"MessageRetentionPeriod": "3600", "DelaySeconds": "0", "MaximumMessageSize": "1048576", "ApproximateNumberOfMessages": "0",
		"ApproximateNumberOfMessagesNotVisible": "0"} {
		if attrs.Attributes[k] != want {
			t.Errorf("attribute %s = %q, want %q", k, attrs.Attributes[k], want)
		}
	}
	if attrs.Attributes["CreatedTimestamp"] == "" {
		t.Error("no CreatedTimestamp")
	}
	if _, err := c.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(url),
		Attributes: map[string]string{"DelaySeconds": "2"}}); err != nil {
		t.Fatal(err)
	}
	one, err := c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{"DelaySeconds"}})
	if err != nil || len(one.Attributes) != 1 || one.Attributes["DelaySeconds"] != "2" {
		t.Errorf("DelaySeconds after set = %v, %v", one, err)
	}

	// Bad input: AWS's codes, with the legacy code in the query header.
	_, err = c.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"Colour": "red"}})
	apiError(t, err, "InvalidAttributeName", "Unknown Attribute Colour.")
	_, err = c.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"VisibilityTimeout": "43201"}})
	apiError(t, err, "InvalidAttributeValue", "Invalid value for the parameter VisibilityTimeout.")
	_, err = c.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"Policy": "{not json"}})
	apiError(t, err, "InvalidAttributeValue", "Invalid value for the parameter Policy.")
	_, err = c.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("bad name")})
	apiError(t, err, "InvalidParameterValue", "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	_, err = c.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String("nope")})
	var missing *sqstypes.QueueDoesNotExist
	if !errors.As(err, &missing) || missing.ErrorMessage() != "The specified queue does not exist." {
		t.Errorf("missing queue: %v", err)
	}
	e.checkQueryError(t, "GetQueueUrl", `{"QueueName":"nope"}`, "AWS.SimpleQueueService.NonExistentQueue;Sender")

	// Tags.
	if _, err := c.TagQueue(ctx, &awssqs.TagQueueInput{QueueUrl: aws.String(url), Tags: map[string]string{"team": "a", "env": "dev"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagQueue(ctx, &awssqs.UntagQueueInput{QueueUrl: aws.String(url), TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListQueueTags(ctx, &awssqs.ListQueueTagsInput{QueueUrl: aws.String(url)})
	if err != nil || len(tags.Tags) != 1 || tags.Tags["team"] != "a" {
		t.Errorf("tags = %v, %v", tags, err)
	}

	if _, err := c.DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url)})
	if !errors.As(err, &missing) {
		t.Errorf("deleted queue: %v", err)
	}
}

// checkQueryError sends a signed request by hand to see the
// x-amzn-query-error header, which the AWS CLI reads.
func (e *env) checkQueryError(t *testing.T, op, body, want string) {
	t.Helper()
	resp := e.signedSQS(t, op, body)
	defer resp.Body.Close()
	if got := resp.Header.Get("x-amzn-query-error"); got != want {
		t.Errorf("%s: x-amzn-query-error = %q, want %q", op, got, want)
	}
}

func TestQueueMessages(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.sqsClient()
	url := e.createQueue(c, "work", map[string]string{"VisibilityTimeout": "30"})
	attrs := map[string]sqstypes.MessageAttributeValue{
		"colour": {DataType: aws.String("String"), StringValue: aws.String("blue")},
		"size":   {DataType: aws.String("Number"), StringValue: aws.String("42")},
		"blob":   {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2, 255}},
	}
	sent, err := c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("héllo {\"a\":1}"),
		MessageAttributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(sent.MD5OfMessageAttributes) == "" || aws.ToString(sent.MessageId) == "" {
		t.Errorf("SendMessage = %+v", sent)
	}
	batch, err := c.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []sqstypes.SendMessageBatchRequestEntry{
		{Id: aws.String("a"), MessageBody: aws.String("one")},
		{Id: aws.String("b"), MessageBody: aws.String("two"), DelaySeconds: 10},
		{Id: aws.String("c"), MessageBody: aws.String("bad \x01 char")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Successful) != 2 || len(batch.Failed) != 1 || aws.ToString(batch.Failed[0].Code) != "InvalidMessageContents" || !batch.Failed[0].SenderFault {
		t.Errorf("SendMessageBatch = %+v", batch)
	}

	recv, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	// "two" is delayed by 10 s: longer than a busy machine takes to get
	// from the send to this receive.
	if len(recv.Messages) != 2 {
		t.Fatalf("received %d messages, want 2", len(recv.Messages))
	}
	first := recv.Messages[0]
	if aws.ToString(first.Body) != "héllo {\"a\":1}" || aws.ToString(first.MD5OfMessageAttributes) != aws.ToString(sent.MD5OfMessageAttributes) ||
		len(first.MessageAttributes) != 3 || !bytes.Equal(first.MessageAttributes["blob"].BinaryValue, []byte{0, 1, 2, 255}) {
		t.Errorf("first message = %+v", first)
	}
	if first.Attributes["ApproximateReceiveCount"] != "1" || first.Attributes["SenderId"] != testKey || first.Attributes["SentTimestamp"] == "" {
		t.Errorf("system attributes = %v", first.Attributes)
	}
	later, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20})
	if err != nil || len(later.Messages) != 1 || aws.ToString(later.Messages[0].Body) != "two" {
		t.Fatalf("delayed message: %+v, %v", later, err)
	}

	// Visibility: make "one" visible again; the new receive's handle
	// deletes, the old one no longer does.
	one := recv.Messages[1]
	if _, err := c.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url),
		ReceiptHandle: one.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	again, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"ApproximateReceiveCount"}, VisibilityTimeout: 60})
	if err != nil || len(again.Messages) != 1 || aws.ToString(again.Messages[0].Body) != "one" || again.Messages[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("received again: %+v, %v", again, err)
	}
	if _, err := c.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: one.ReceiptHandle}); err != nil {
		t.Fatalf("delete with an old handle: %v (SQS answers success)", err)
	}
	_, err = c.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: one.ReceiptHandle, VisibilityTimeout: 5})
	var notInflight *sqstypes.MessageNotInflight
	if !errors.As(err, &notInflight) {
		t.Errorf("visibility with an old handle: %v", err)
	}
	counts := e.queueCounts(c, url)
	if counts != [2]string{"0", "3"} {
		t.Errorf("counts = %v, want 0 visible, 3 not visible", counts)
	}
	vis, err := c.ChangeMessageVisibilityBatch(ctx, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url),
		Entries: []sqstypes.ChangeMessageVisibilityBatchRequestEntry{
			{Id: aws.String("new"), ReceiptHandle: again.Messages[0].ReceiptHandle, VisibilityTimeout: 120},
			{Id: aws.String("old"), ReceiptHandle: one.ReceiptHandle, VisibilityTimeout: 120},
		}})
	if err != nil || len(vis.Successful) != 1 || aws.ToString(vis.Successful[0].Id) != "new" || len(vis.Failed) != 1 ||
		aws.ToString(vis.Failed[0].Code) != "AWS.SimpleQueueService.MessageNotInflight" {
		t.Errorf("ChangeMessageVisibilityBatch = %+v, %v", vis, err)
	}
	del, err := c.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: []sqstypes.DeleteMessageBatchRequestEntry{
		{Id: aws.String("1"), ReceiptHandle: again.Messages[0].ReceiptHandle},
		{Id: aws.String("2"), ReceiptHandle: first.ReceiptHandle},
		{Id: aws.String("3"), ReceiptHandle: later.Messages[0].ReceiptHandle},
		{Id: aws.String("4"), ReceiptHandle: aws.String("garbage")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.Successful) != 3 || len(del.Failed) != 1 || aws.ToString(del.Failed[0].Code) != "ReceiptHandleIsInvalid" {
		t.Errorf("DeleteMessageBatch = %+v", del)
	}
	if counts := e.queueCounts(c, url); counts != [2]string{"0", "0"} {
		t.Errorf("counts after delete = %v", counts)
	}
	_, err = c.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String("garbage")})
	apiError(t, err, "ReceiptHandleIsInvalid", `The input receipt handle "garbage" is not a valid receipt handle.`)
	e.checkQueryError(t, "DeleteMessage", fmt.Sprintf(`{"QueueUrl":%q,"ReceiptHandle":"x"}`, url), "ReceiptHandleIsInvalid;Sender")

	// Limits.
	_, err = c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 11})
	apiError(t, err, "InvalidParameterValue", "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.")
	big := strings.Repeat("x", 1<<20+1)
	_, err = c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(big)})
	apiError(t, err, "InvalidParameterValue", "One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes.")
	maxBody := strings.Repeat("é", 1<<19) // 1 MiB of UTF-8, escaped on the wire
	if _, err := c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(maxBody)}); err != nil {
		t.Fatalf("1 MiB message: %v", err)
	}
	_, err = c.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: make([]sqstypes.SendMessageBatchRequestEntry, 11)})
	if err == nil {
		t.Error("batch of 11 accepted")
	}
	_, err = c.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []sqstypes.SendMessageBatchRequestEntry{
		{Id: aws.String("x"), MessageBody: aws.String("1")}, {Id: aws.String("x"), MessageBody: aws.String("2")}}})
	apiError(t, err, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Id x repeated.")
	var notDistinct *sqstypes.BatchEntryIdsNotDistinct
	if !errors.As(err, &notDistinct) {
		t.Errorf("repeated ids: %T, want BatchEntryIdsNotDistinct", err)
	}

	// Purge, once a minute.
	if _, err := c.PurgeQueue(ctx, &awssqs.PurgeQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PurgeQueue(ctx, &awssqs.PurgeQueueInput{QueueUrl: aws.String(url)})
	var purging *sqstypes.PurgeQueueInProgress
	if !errors.As(err, &purging) {
		t.Errorf("second purge: %v", err)
	}
	if counts := e.queueCounts(c, url); counts != [2]string{"0", "0"} {
		t.Errorf("counts after purge = %v", counts)
	}
}

func (e *env) queueCounts(c *awssqs.Client, url string) [2]string {
	e.t.Helper()
	out, err := c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return [2]string{out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]}
}

func TestQueueSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.sqsClient()
	url := e.createQueue(c, "keep", map[string]string{"VisibilityTimeout": "1"})
	if _, err := c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("kept")}); err != nil {
		t.Fatal(err)
	}
	// Received but not deleted: after the restart and the visibility
	// timeout it comes back.
	if out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v, %v", out, err)
	}
	e.restart()
	c = e.sqsClient()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 2,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"ApproximateReceiveCount"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 1 {
			if aws.ToString(out.Messages[0].Body) != "kept" || out.Messages[0].Attributes["ApproximateReceiveCount"] != "2" {
				t.Errorf("after restart: %+v", out.Messages[0])
			}
			return
		}
	}
	t.Fatal("message not received after restart")
}

// signedSQS sends an SQS JSON request signed with the test credentials.
func (e *env) signedSQS(t *testing.T, op, body string) *http.Response {
	t.Helper()
	return e.signed(t, "sqs", "AmazonSQS."+op, "application/x-amz-json-1.0", body)
}

// signed sends a request signed with the test credentials.
func (e *env) signed(t *testing.T, service, target, contentType, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+e.srv.Addr()+"/", strings.NewReader(body))
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", contentType)
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, req,
		hex.EncodeToString(sum[:]), service, e.cfg.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestQueueRedrivePolicy: SQS's own RedrivePolicy moves a message received
// more than maxReceiveCount times to the dead-letter queue.
func TestQueueRedrivePolicy(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.sqsClient()
	dead := e.createQueue(c, "dead", nil)
	src := e.createQueue(c, "src", map[string]string{"VisibilityTimeout": "0",
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dead","maxReceiveCount":"2"}`})
	_, err := c.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(src),
		Attributes: map[string]string{"RedrivePolicy": `{"maxReceiveCount":0}`}})
	apiError(t, err, "InvalidAttributeValue", "Invalid value for the parameter RedrivePolicy.")
	if _, err := c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(src), MessageBody: aws.String("poison")}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(src), WaitTimeSeconds: 20})
		if err != nil || len(out.Messages) != 1 {
			t.Fatalf("receive %d: %+v, %v", i, out, err)
		}
	}
	out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(src), WaitTimeSeconds: 1})
	if err != nil || len(out.Messages) != 0 {
		t.Fatalf("third receive returned %+v, %v; the message should have moved", out, err)
	}
	moved, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(dead), WaitTimeSeconds: 20})
	if err != nil || len(moved.Messages) != 1 || aws.ToString(moved.Messages[0].Body) != "poison" {
		t.Fatalf("dead-letter queue: %+v, %v", moved, err)
	}
	// A body that JSON would escape to more than the limit is stored
	// within it.
	if _, err := c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(src), MessageBody: aws.String(strings.Repeat("<", 1<<20))}); err != nil {
		t.Fatalf("1 MiB of '<': %v", err)
	}
}
