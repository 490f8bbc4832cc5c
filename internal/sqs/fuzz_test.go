package sqs

import (
	"context"
	"errors"
	"slices"
	"testing"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// FuzzOperations sends arbitrary request bodies to every SQS operation
// against a real store: each answers or returns an AWS error, never panics
// and never fails with an internal error.
func FuzzOperations(f *testing.F) {
	st, err := store.Open(context.Background(), store.Config{DataDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	s := New(Config{Store: st, Region: "us-east-1", AccountID: "000000000000", Listen: "127.0.0.1:4010"})
	ops := s.Operations()
	names := make([]string, 0, len(ops))
	for n := range ops {
		names = append(names, n)
	}
	slices.Sort(names)
	ctx := context.Background()
	if _, err := ops["CreateQueue"](ctx, []byte(`{"QueueName":"q"}`)); err != nil {
		f.Fatal(err)
	}
	const url = `"http://127.0.0.1:4010/000000000000/q"`
	for i, seed := range []string{
		`{"QueueUrl":` + url + `,"MessageBody":"x","MessageAttributes":{"a":{"DataType":"Number","StringValue":"1e3"}}}`,
		`{"QueueUrl":` + url + `,"MaxNumberOfMessages":10,"WaitTimeSeconds":0,"MessageAttributeNames":["All"]}`,
		`{"QueueUrl":` + url + `,"ReceiptHandle":"bp1.AQEBcQ"}`,
		`{"QueueUrl":` + url + `,"Entries":[{"Id":"a","MessageBody":"b","DelaySeconds":-1}]}`,
		`{"QueueName":"z.fifo","Attributes":{"FifoQueue":"true","Policy":"{}"}}`,
		`{"QueueUrl":` + url + `,"Attributes":{"VisibilityTimeout":"x"}}`,
		`{"SourceArn":"arn:aws:sqs:us-east-1:000000000000:q","DestinationArn":"arn:aws:sqs:us-east-1:000000000000:q","MaxNumberOfMessagesPerSecond":3}`,
		`{"TaskHandle":"eyJ0YXNrSWQiOiJ4Iiwic291cmNlQXJuIjoiYXJuOmF3czpzcXM6dXMtZWFzdC0xOjAwMDAwMDAwMDAwMDpxIn0=","SourceArn":"x","MaxResults":10}`,
		`{"QueueUrl":` + url + `,"Label":"l","AWSAccountIds":["111122223333"],"Actions":["SendMessage","*"]}`,
	} {
		f.Add(uint8(i), []byte(seed))
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := names[int(op)%len(names)]
		if name == "DeleteQueue" || name == "PurgeQueue" {
			return // keep the queue for the other cases
		}
		_, err := ops[name](ctx, body)
		var aerr *awsapi.Error
		if err != nil && (!errors.As(err, &aerr) || aerr.HTTPStatus() >= 500) {
			t.Fatalf("%s(%q): %v", name, body, err)
		}
	})
}
