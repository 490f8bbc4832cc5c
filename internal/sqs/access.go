package sqs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/policy"
)

// Access returns the permission an SQS request needs, sqs:<operation> on
// the queue it names ("*" for ListQueues; a batch needs its single
// operation's action), and the queue's policy, which may grant it too. A
// request that names no queue this account has needs its action on "*"
// (it then fails as it would have).
func (s *Service) Access(ctx context.Context, op string, body []byte) (awsapi.Access, *policy.Policy) {
	// Lower case, as SQS names the action in its AccessDenied messages
	// (actions match whatever their case).
	action := "sqs:" + strings.ToLower(strings.TrimSuffix(op, "Batch"))
	var in struct {
		QueueUrl   *string `json:"QueueUrl"`
		QueueName  *string `json:"QueueName"`
		SourceArn  *string `json:"SourceArn"`
		TaskHandle *string `json:"TaskHandle"`
	}
	all := awsapi.Access{Action: action, Resource: "*"}
	if json.Unmarshal(body, &in) != nil {
		return all, nil
	}
	var name string
	switch {
	case in.QueueUrl != nil:
		name, _ = s.nameFromURL(*in.QueueUrl)
	case in.QueueName != nil:
		name = *in.QueueName
	case in.SourceArn != nil:
		name, _ = s.NameFromArn(*in.SourceArn)
	case in.TaskHandle != nil:
		var h struct {
			SourceArn string `json:"sourceArn"`
		}
		if raw, err := base64.StdEncoding.DecodeString(*in.TaskHandle); err == nil && json.Unmarshal(raw, &h) == nil {
			name, _ = s.NameFromArn(h.SourceArn)
		}
	}
	if name == "" {
		return all, nil
	}
	a := awsapi.Access{Action: action, Resource: s.Arn(name)}
	q, _, err := s.Get(ctx, name)
	if err != nil {
		return a, nil
	}
	p, err := policy.ParseKind(q.Attrs["Policy"], policy.ResourcePolicy)
	if err != nil {
		return a, nil
	}
	return a, p
}
