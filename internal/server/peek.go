package server

import (
	"context"
	"strconv"

	"bridgeport/internal/admin"
	"bridgeport/internal/awsapi"
)

// peekMessages reads messages of a queue, visible or not, without
// receiving them: unlike ReceiveMessage it changes neither their
// visibility nor their receive counts, so looking at a queue whose
// redrive policy moves messages after a number of receives moves none.
func (s *Server) peekMessages(ctx context.Context, body []byte) (any, error) {
	var in admin.PeekMessagesInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := required("queueUrl", in.QueueUrl); err != nil {
		return nil, err
	}
	limit := 10
	if in.MaxNumberOfMessages != nil {
		var v awsapi.Violations
		switch n := *in.MaxNumberOfMessages; {
		case n < 1:
			v.Add(n, "maxNumberOfMessages", awsapi.MinValue(1))
		case n > 100:
			v.Add(n, "maxNumberOfMessages", awsapi.MaxValue(100))
		}
		if err := v.Err(); err != nil {
			return nil, err
		}
		limit = *in.MaxNumberOfMessages
	}
	var from uint64 = 1
	if in.NextToken != nil {
		n, err := strconv.ParseUint(*in.NextToken, 10, 64)
		if err != nil || n == 0 {
			return nil, awsapi.Errorf(awsapi.CodeValidation, "The NextToken provided is invalid.")
		}
		from = n
	}
	msgs, next, err := s.queues.Peek(ctx, *in.QueueUrl, from, limit)
	if err != nil {
		return nil, err
	}
	out := admin.PeekMessagesOutput{Messages: []admin.PeekedMessage{}}
	for _, m := range msgs {
		out.Messages = append(out.Messages, admin.PeekedMessage{MessageId: m.MessageID, Body: m.Body, SentTimestamp: awsapi.Time{Time: m.Sent},
			MessageAttributes: m.Attributes})
	}
	if next != 0 {
		t := strconv.FormatUint(next, 10)
		out.NextToken = &t
	}
	return out, nil
}
