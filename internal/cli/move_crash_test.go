package cli

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// TestMoveTaskKilled moves 3,000 messages out of a dead-letter queue and
// kills the server with SIGKILL part way; after the restart the task goes
// on, and every message is in the destination exactly once, none left
// behind.
func TestMoveTaskKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	t.Parallel()
	const messages = 3000
	ctx := context.Background()
	dir := t.TempDir()
	c := startChild(t, dir)
	defer func() { c.stop() }()
	sq := func() *awssqs.Client {
		return awssqs.New(awssqs.Options{BaseEndpoint: aws.String(c.addr), Region: "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider(crashKey, crashSecret, ""), RetryMaxAttempts: 1})
	}
	const arn = "arn:aws:sqs:us-east-1:000000000000:"
	for name, attrs := range map[string]map[string]string{"dlq": nil, "dest": nil,
		"src": {"RedrivePolicy": `{"deadLetterTargetArn":"` + arn + `dlq","maxReceiveCount":"3"}`}} {
		if _, err := sq().CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs}); err != nil {
			t.Fatal(err)
		}
	}
	url := func(name string) *string { return aws.String(c.addr + "/000000000000/" + name) }
	for i := 0; i < messages; i += 10 {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for j := range 10 {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(j)), MessageBody: aws.String(fmt.Sprintf("m%05d", i+j))})
		}
		if out, err := sq().SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: url("dlq"), Entries: entries}); err != nil || len(out.Failed) > 0 {
			t.Fatalf("send: %+v, %v", out, err)
		}
	}
	if _, err := sq().StartMessageMoveTask(ctx, &awssqs.StartMessageMoveTaskInput{SourceArn: aws.String(arn + "dlq"), DestinationArn: aws.String(arn + "dest")}); err != nil {
		t.Fatal(err)
	}
	// Killed once a random part has moved.
	kill := messages/10 + rand.IntN(messages/2)
	waitUntil(t, "messages moving", func() bool { return count(t, sq(), url("dest")) >= kill })
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
	c = startChild(t, dir)
	moved := count(t, sq(), url("dest"))
	t.Logf("killed with %d of %d messages moved", moved, messages)
	// The restarted server takes the task over when the dead node's lease
	// runs out, and finishes it.
	waitUntil(t, "the task completed", func() bool {
		out, err := sq().ListMessageMoveTasks(ctx, &awssqs.ListMessageMoveTasksInput{SourceArn: aws.String(arn + "dlq")})
		return err == nil && len(out.Results) == 1 && aws.ToString(out.Results[0].Status) == "COMPLETED"
	})
	seen := map[string]int{}
	for {
		out, err := sq().ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: url("dest"), MaxNumberOfMessages: 10, VisibilityTimeout: 600})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			seen[aws.ToString(m.Body)]++
		}
	}
	dups := 0
	for i := range messages {
		switch n := seen[fmt.Sprintf("m%05d", i)]; {
		case n == 0:
			t.Errorf("m%05d lost", i)
		case n > 1:
			dups++
		}
	}
	if dups > 0 || len(seen) != messages {
		t.Errorf("%d messages moved twice; %d distinct", dups, len(seen))
	}
	if n := count(t, sq(), url("dlq")); n != 0 {
		t.Errorf("%d messages left in the dead-letter queue", n)
	}
}

// count returns the messages of a queue, visible or not.
func count(t *testing.T, sq *awssqs.Client, url *string) int {
	t.Helper()
	out, err := sq.GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{QueueUrl: url,
		AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
	if err != nil {
		t.Fatal(err)
	}
	var visible, inFlight int
	fmt.Sscan(out.Attributes["ApproximateNumberOfMessages"], &visible)
	fmt.Sscan(out.Attributes["ApproximateNumberOfMessagesNotVisible"], &inFlight)
	return visible + inFlight
}
