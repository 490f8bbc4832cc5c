package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/redrive"
	"bridgeport/internal/store"
)

func (s *Server) adminOperations() map[string]awsapi.JSONOperation {
	return map[string]awsapi.JSONOperation{
		"StartRedrive":    s.startRedrive,
		"PeekMessages":    s.peekMessages,
		"RedriveMessages": s.redriveMessages,
		"RedriveStatus":   s.redriveStatus,
		"TraceEvent":      s.traceEvent,
		"ListAttempts":    s.listAttempts,
		"Diagnose":        s.diagnose,
	}
}

// A redrive run takes the dead-lettered events present in a queue when it
// starts, each at most once: StartRedrive marks where the queue stood, and
// RedriveMessages leaves alone every message stored after the mark, among
// them the events of the run that failed again and were dead-lettered
// again. The final outcome of each event the run queued is recorded under
// the run's id, for RedriveStatus to report.

func (s *Server) startRedrive(ctx context.Context, body []byte) (any, error) {
	var in redrive.StartInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := required("queueUrl", in.QueueUrl); err != nil {
		return nil, err
	}
	mark, err := s.queues.Mark(ctx, *in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return redrive.StartOutput{RunId: strconv.FormatUint(mark, 10) + "-" + awsapi.NewRequestID()[:8]}, nil
}

// required is the validation error of a member left out, or nil.
func required(member string, value *string) error {
	if value != nil {
		return nil
	}
	var v awsapi.Violations
	v.Add(nil, member, awsapi.MustNotBeNull)
	return v.Err()
}

// runMark is the mark a run id carries: the queues' last sequence when the
// run started.
func runMark(runID string) (uint64, error) {
	seq, _, ok := strings.Cut(runID, "-")
	mark, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil || strings.Trim(runID, "0123456789abcdef-") != "" {
		return 0, awsapi.Errorf(awsapi.CodeValidation, "RunId %q is not a run id from StartRedrive.", runID)
	}
	return mark, nil
}

// redriveMessages queues dead-lettered events again for the target they
// failed to reach, each as a new delivery with a fresh retry policy
// (attempts and event age count from the redrive). A message leaves the
// dead-letter queue only once its event's job is stored; the job's id names
// the message, so a redrive repeated after a crash is a duplicate the
// store drops.
func (s *Server) redriveMessages(ctx context.Context, body []byte) (any, error) {
	var in redrive.Input
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	if in.QueueUrl == nil {
		v.Add(nil, "queueUrl", awsapi.MustNotBeNull)
	}
	if in.RunId == nil {
		v.Add(nil, "runId", awsapi.MustNotBeNull)
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
	mark, err := runMark(*in.RunId)
	if err != nil {
		return nil, err
	}
	out := redrive.Output{Successful: []redrive.Redriven{}, Failed: []redrive.Failure{}, Skipped: []string{}, Later: []string{}}
	var jobs []store.Job
	var handles []string
	for _, e := range in.Entries {
		id := *e.Id
		r, job, err := s.redriveCheck(ctx, &in, *e.ReceiptHandle, mark)
		var aerr *awsapi.Error
		switch {
		case errors.As(err, &aerr):
			code := aerr.QueryCode
			if code == "" {
				code = aerr.Code
			}
			out.Failed = append(out.Failed, redrive.Failure{Id: id, Code: code, Message: aerr.Message})
		case errors.Is(err, errLater):
			out.Later = append(out.Later, id)
		case errors.Is(err, errSkipped), err == nil && in.Limit > 0 && len(out.Successful) >= in.Limit:
			out.Skipped = append(out.Skipped, id)
		case err != nil:
			return nil, err
		default:
			r.Id = id
			out.Successful = append(out.Successful, r)
			jobs = append(jobs, job)
			handles = append(handles, *e.ReceiptHandle)
		}
	}
	if in.DryRun || len(jobs) == 0 {
		return out, nil
	}
	if err := s.store.AppendJobs(ctx, jobs); err != nil {
		return nil, err
	}
	for i, h := range handles {
		if err := s.queues.DeleteHeld(ctx, *in.QueueUrl, h); err != nil {
			return nil, err
		}
		r := out.Successful[i]
		s.log.InfoContext(ctx, "dead-lettered event redriven", "event_id", r.EventId, "rule", r.RuleArn, "target", r.TargetArn)
	}
	return out, nil
}

// Why redriveCheck leaves a message alone.
var (
	errLater   = errors.New("stored after the run started")
	errSkipped = errors.New("not selected")
)

// redriveCheck reads the message a receipt handle names and returns what
// redriving it would queue; errLater for a message stored after the run's
// mark, errSkipped for one the filters leave alone, and an *awsapi.Error
// for one that cannot be redriven.
func (s *Server) redriveCheck(ctx context.Context, in *redrive.Input, handle string, mark uint64) (redrive.Redriven, store.Job, error) {
	held, err := s.queues.Hold(ctx, *in.QueueUrl, handle)
	if err != nil {
		return redrive.Redriven{}, store.Job{}, err
	}
	if held.Seq > mark {
		return redrive.Redriven{}, store.Job{}, errLater
	}
	m := held.Meta
	r := redrive.Redriven{EventId: m[metaEventID], RuleArn: m[metaRule], TargetId: m[metaTargetID], TargetArn: held.Attributes["TARGET_ARN"]}
	ruleArn := held.Attributes["RULE_ARN"]
	if in.Rule != "" && ruleArn != in.Rule && !strings.HasSuffix(ruleArn, "/"+in.Rule) ||
		in.ErrorCode != "" && held.Attributes["ERROR_CODE"] != in.ErrorCode {
		return redrive.Redriven{}, store.Job{}, errSkipped
	}
	if r.EventId == "" || r.RuleArn == "" || r.TargetId == "" {
		return redrive.Redriven{}, store.Job{}, awsapi.Errorf("NotADeadLetter", "Message %s was not dead-lettered by bridgeport: it does not name its rule and target.", held.MessageID)
	}
	if _, ok := s.events.Target(r.RuleArn, r.TargetId); !ok {
		return redrive.Redriven{}, store.Job{}, awsapi.Errorf(awsapi.CodeNotFound, "Rule %s has no target %s any more.", r.RuleArn, r.TargetId)
	}
	job := store.Job{EventID: r.EventId, Bus: m[metaBus], RuleArn: r.RuleArn, TargetID: r.TargetId, Ingested: time.Now(),
		Redrive: held.MessageID, RedriveRun: *in.RunId, Event: []byte(held.Body)}
	return r, job, nil
}

func (s *Server) redriveStatus(ctx context.Context, body []byte) (any, error) {
	var in redrive.StatusInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := required("runId", in.RunId); err != nil {
		return nil, err
	}
	if _, err := runMark(*in.RunId); err != nil {
		return nil, err
	}
	results, after, err := s.store.RedriveResults(ctx, *in.RunId, in.After)
	if err != nil {
		return nil, err
	}
	if results == nil {
		results = []store.RedriveResult{}
	}
	return redrive.StatusOutput{Results: results, After: after}, nil
}
