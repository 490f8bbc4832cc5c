package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// bridgeport's own API: operations AWS does not have, spoken like AWS JSON
// 1.1 services and signed with SigV4 under the signing name "bridgeport",
// so that remote command-line tools authenticate as the AWS CLI does.
const (
	AdminSigningName  = "bridgeport"
	AdminTargetPrefix = "Bridgeport"
)

func (s *Server) adminOperations() map[string]awsapi.JSONOperation {
	return map[string]awsapi.JSONOperation{
		"RedriveMessages": s.redriveMessages,
		"TraceEvent":      s.traceEvent,
		"ListAttempts":    s.listAttempts,
		"Diagnose":        s.diagnose,
	}
}

// RedriveEntry names a dead-letter message its caller has received.
type RedriveEntry struct {
	Id            *string `json:"Id"`
	ReceiptHandle *string `json:"ReceiptHandle"`
}

// RedriveInput asks to send dead-lettered events back to their targets.
type RedriveInput struct {
	QueueUrl *string        `json:"QueueUrl"`
	Entries  []RedriveEntry `json:"Entries"`
	// DryRun checks each entry without queueing or deleting anything.
	DryRun bool `json:"DryRun"`
}

// Redriven is an entry queued again for delivery (or that would be, in a
// dry run).
type Redriven struct {
	Id        string `json:"Id"`
	EventId   string `json:"EventId"`
	RuleArn   string `json:"RuleArn"`
	TargetId  string `json:"TargetId"`
	TargetArn string `json:"TargetArn"`
}

// RedriveFailure is an entry that was not redriven, and stays on the queue.
type RedriveFailure struct {
	Id      string `json:"Id"`
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

// RedriveOutput is the answer to RedriveMessages.
type RedriveOutput struct {
	Successful []Redriven       `json:"Successful"`
	Failed     []RedriveFailure `json:"Failed"`
}

// redriveMessages queues dead-lettered events again for the target they
// failed to reach, each as a new delivery with a fresh retry policy
// (attempts and event age count from the redrive). A message leaves the
// dead-letter queue only once its event's job is stored; the job's id names
// the message, so a redrive repeated after a crash is a duplicate the
// store drops.
func (s *Server) redriveMessages(ctx context.Context, body []byte) (any, error) {
	var in RedriveInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	if in.QueueUrl == nil {
		v.Add(nil, "queueUrl", awsapi.MustNotBeNull)
	}
	switch {
	case in.Entries == nil:
		v.Add(nil, "entries", awsapi.MustNotBeNull)
	case len(in.Entries) < 1 || len(in.Entries) > 10:
		v.Add(len(in.Entries), "entries", "Member must have between 1 and 10 entries")
	}
	for i, e := range in.Entries {
		if e.Id == nil {
			v.Add(nil, fmt.Sprintf("entries.%d.member.id", i+1), awsapi.MustNotBeNull)
		}
		if e.ReceiptHandle == nil {
			v.Add(nil, fmt.Sprintf("entries.%d.member.receiptHandle", i+1), awsapi.MustNotBeNull)
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	out := RedriveOutput{Successful: []Redriven{}, Failed: []RedriveFailure{}}
	for _, e := range in.Entries {
		r, err := s.redriveOne(ctx, *in.QueueUrl, *e.ReceiptHandle, in.DryRun)
		var aerr *awsapi.Error
		switch {
		case errors.As(err, &aerr):
			code := aerr.QueryCode
			if code == "" {
				code = aerr.Code
			}
			out.Failed = append(out.Failed, RedriveFailure{Id: *e.Id, Code: code, Message: aerr.Message})
		case err != nil:
			return nil, err
		default:
			r.Id = *e.Id
			out.Successful = append(out.Successful, r)
		}
	}
	return out, nil
}

func (s *Server) redriveOne(ctx context.Context, queueURL, handle string, dryRun bool) (Redriven, error) {
	held, err := s.queues.Hold(ctx, queueURL, handle)
	if err != nil {
		return Redriven{}, err
	}
	m := held.Meta
	r := Redriven{EventId: m[metaEventID], RuleArn: m[metaRule], TargetId: m[metaTargetID], TargetArn: held.Attributes["TARGET_ARN"]}
	if r.EventId == "" || r.RuleArn == "" || r.TargetId == "" {
		return Redriven{}, awsapi.Errorf("NotADeadLetter", "Message %s was not dead-lettered by bridgeport: it does not name its rule and target.", held.MessageID)
	}
	if _, ok := s.events.Target(r.RuleArn, r.TargetId); !ok {
		return Redriven{}, awsapi.Errorf(awsapi.CodeNotFound, "Rule %s has no target %s any more.", r.RuleArn, r.TargetId)
	}
	if dryRun {
		return r, nil
	}
	job := store.Job{EventID: r.EventId, Bus: m[metaBus], RuleArn: r.RuleArn, TargetID: r.TargetId, Ingested: time.Now(),
		Redrive: held.MessageID, Event: []byte(held.Body)}
	if err := s.store.AppendJobs(ctx, []store.Job{job}); err != nil {
		return Redriven{}, err
	}
	if err := s.queues.DeleteHeld(ctx, queueURL, handle); err != nil {
		return Redriven{}, err
	}
	s.log.InfoContext(ctx, "dead-lettered event redriven", "event_id", r.EventId, "rule", r.RuleArn, "target", r.TargetArn)
	return r, nil
}
