package sqs

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"

	"bridgeport/internal/awsapi"
)

func (s *Service) listDeadLetterSourceQueues(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueUrl   *string `json:"QueueUrl"`
		NextToken  *string `json:"NextToken"`
		MaxResults *int    `json:"MaxResults"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 1000) {
		return nil, errParameterValue(*in.MaxResults, "MaxResults", "MaxResults must be an integer between 1 and 1000.")
	}
	if in.NextToken != nil && in.MaxResults == nil {
		return nil, errInvalidParameter("MaxResults is a mandatory parameter when you provide a value for NextToken.")
	}
	names, err := s.deadLetterSources(ctx, s.Arn(q.Name))
	if err != nil {
		return nil, err
	}
	if in.NextToken != nil {
		i, _ := slices.BinarySearch(names, *in.NextToken)
		names = names[i:]
	}
	// queueUrls is always there, lower-case as SQS sends it; NextToken
	// only when MaxResults was given and more remain.
	out := struct {
		QueueUrls []string `json:"queueUrls"`
		NextToken string   `json:"NextToken,omitempty"`
	}{QueueUrls: []string{}}
	limit := 1000
	if in.MaxResults != nil {
		limit = *in.MaxResults
		if len(names) > limit {
			out.NextToken = names[limit]
		}
	}
	for _, n := range names[:min(limit, len(names))] {
		out.QueueUrls = append(out.QueueUrls, s.URL(ctx, n))
	}
	return out, nil
}

var labelRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// grantable are the actions AddPermission may grant to other accounts;
// ownerOnly are those only the queue's owner may call.
var (
	grantable = []string{"*", "SendMessage", "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes",
		"GetQueueUrl", "ListDeadLetterSourceQueues", "PurgeQueue", "ListQueueTags"}
	ownerOnly = []string{"AddPermission", "RemovePermission", "CreateQueue", "DeleteQueue", "SetQueueAttributes", "TagQueue",
		"UntagQueue", "ListQueues", "StartMessageMoveTask", "CancelMessageMoveTask", "ListMessageMoveTasks"}
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
)

// queuePolicy is a queue's Policy attribute, read loosely: the
// statements are kept as written.
type queuePolicy struct {
	Version   string            `json:"Version,omitempty"`
	ID        string            `json:"Id,omitempty"`
	Statement []json.RawMessage `json:"Statement"`
}

func readPolicy(v string) queuePolicy {
	var p queuePolicy
	if v == "" {
		return p
	}
	if json.Unmarshal([]byte(v), &p) != nil {
		// One statement written as an object rather than a list.
		var one struct {
			Version   string          `json:"Version,omitempty"`
			ID        string          `json:"Id,omitempty"`
			Statement json.RawMessage `json:"Statement"`
		}
		if json.Unmarshal([]byte(v), &one) == nil && len(one.Statement) > 0 {
			p = queuePolicy{Version: one.Version, ID: one.ID, Statement: []json.RawMessage{one.Statement}}
		}
	}
	return p
}

// writeTo sets the queue's Policy attribute to p; with its last statement
// gone, the queue has no policy.
func (p *queuePolicy) writeTo(q *Queue) error {
	if len(p.Statement) == 0 {
		delete(q.Attrs, "Policy")
		return nil
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	q.Attrs["Policy"] = string(data)
	return nil
}

func statementSid(st json.RawMessage) string {
	var s struct {
		Sid string `json:"Sid"`
	}
	_ = json.Unmarshal(st, &s)
	return s.Sid
}

// oneOrMany is a policy value written as a string when there is one, a
// list otherwise, as SQS writes Principal and Action.
func oneOrMany(vs []string) any {
	if len(vs) == 1 {
		return vs[0]
	}
	return vs
}

func (s *Service) addPermission(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueUrl      *string  `json:"QueueUrl"`
		Label         *string  `json:"Label"`
		AWSAccountIds []string `json:"AWSAccountIds"`
		Actions       []string `json:"Actions"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	switch {
	case in.Label == nil || *in.Label == "":
		return nil, errMissing("Label")
	case !labelRE.MatchString(*in.Label):
		// UNVERIFIED wording, after the model's documentation.
		return nil, errParameterValue(*in.Label, "Label", "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length.")
	case len(in.AWSAccountIds) == 0:
		return nil, errMissing("AWSAccountIds")
	case len(in.Actions) == 0:
		return nil, errMissing("Actions")
	case len(in.Actions) > 7:
		e := sqsError("OverLimit", "OverLimit", "%d Actions were found, maximum allowed is 7.", len(in.Actions))
		e.Status = 403
		return nil, e
	}
	principals := make([]string, 0, len(in.AWSAccountIds))
	for _, id := range in.AWSAccountIds {
		if !accountRE.MatchString(id) {
			return nil, errParameterValue("["+id+"]", "PrincipalId", "Unable to verify.")
		}
		principals = append(principals, "arn:aws:iam::"+id+":root")
	}
	actions := make([]string, 0, len(in.Actions))
	for _, a := range in.Actions {
		switch {
		case slices.Contains(ownerOnly, a):
			return nil, errParameterValue("SQS:"+a, "ActionName", "Only the queue owner is allowed to invoke this action.")
		case !slices.Contains(grantable, a):
			return nil, errParameterValue("SQS:"+a, "ActionName", "Please refer to the appropriate WSDL for a list of valid actions. ")
		}
		actions = append(actions, "SQS:"+a)
	}
	arn := s.Arn(q.Name)
	st, _ := json.Marshal(struct {
		Sid       string         `json:"Sid"`
		Effect    string         `json:"Effect"`
		Principal map[string]any `json:"Principal"`
		Action    any            `json:"Action"`
		Resource  string         `json:"Resource"`
	}{*in.Label, "Allow", map[string]any{"AWS": oneOrMany(principals)}, oneOrMany(actions), arn})
	_, err = s.update(ctx, q.Name, func(q *Queue) error {
		p := readPolicy(q.Attrs["Policy"])
		for _, old := range p.Statement {
			if statementSid(old) == *in.Label {
				return errParameterValue(*in.Label, "Label", "Already exists.")
			}
		}
		if p.Version == "" {
			p.Version = "2008-10-17"
		}
		if p.ID == "" {
			p.ID = arn + "/SQSDefaultPolicy"
		}
		p.Statement = append(p.Statement, st)
		return p.writeTo(q)
	})
	if err != nil {
		return nil, err
	}
	return empty{}, nil
}

func (s *Service) removePermission(ctx context.Context, body []byte) (any, error) {
	var in struct {
		QueueUrl *string `json:"QueueUrl"`
		Label    *string `json:"Label"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	q, _, err := s.byURL(ctx, in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if in.Label == nil || *in.Label == "" {
		return nil, errMissing("Label")
	}
	_, err = s.update(ctx, q.Name, func(q *Queue) error {
		p := readPolicy(q.Attrs["Policy"])
		i := slices.IndexFunc(p.Statement, func(st json.RawMessage) bool { return statementSid(st) == *in.Label })
		if i < 0 {
			return errParameterValue(*in.Label, "Label", "can't find label.")
		}
		p.Statement = slices.Delete(p.Statement, i, i+1)
		return p.writeTo(q)
	})
	if err != nil {
		return nil, err
	}
	return empty{}, nil
}
