package server

import (
	"context"
	"time"

	"bridgeport/internal/admin"
	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

func attemptRecord(a store.Attempt) admin.AttemptRecord {
	r := admin.AttemptRecord{Time: awsapi.Time{Time: a.Time}, EventId: a.EventID, EventBusName: a.Bus, RuleArn: a.RuleArn,
		TargetId: a.TargetID, TargetArn: a.TargetArn, Attempt: a.Attempt, DurationMs: float64(a.Duration.Microseconds()) / 1000,
		StatusCode: a.Status, ErrorCode: a.Code, ErrorMessage: a.Message, Outcome: a.Outcome, DeadLetterQueueArn: a.DeadLetterQueue}
	if a.RetryAt != nil {
		r.RetryAt = &awsapi.Time{Time: *a.RetryAt}
	}
	return r
}

func attemptsOutput(list []store.Attempt) admin.AttemptsOutput {
	out := admin.AttemptsOutput{Attempts: []admin.AttemptRecord{}}
	for _, a := range list {
		out.Attempts = append(out.Attempts, attemptRecord(a))
	}
	return out
}

func (s *Server) traceEvent(ctx context.Context, body []byte) (any, error) {
	var in admin.TraceEventInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	switch {
	case in.EventId == nil:
		v.Add(nil, "eventId", awsapi.MustNotBeNull)
	case len(*in.EventId) < 1 || len(*in.EventId) > 256:
		v.Add(*in.EventId, "eventId", awsapi.MaxLen(256))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	list, err := s.store.Attempts(ctx, store.AttemptFilter{EventID: *in.EventId})
	if err != nil {
		return nil, err
	}
	return attemptsOutput(list), nil
}

func (s *Server) listAttempts(ctx context.Context, body []byte) (any, error) {
	var in admin.ListAttemptsInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	if in.Rule == nil {
		v.Add(nil, "rule", awsapi.MustNotBeNull)
	}
	if in.Limit != nil && (*in.Limit < 1 || *in.Limit > 10000) {
		v.Add(*in.Limit, "limit", awsapi.MaxValue(10000))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	bus := "default"
	if in.EventBusName != nil {
		bus = *in.EventBusName
	}
	f := store.AttemptFilter{FailedOnly: in.FailedOnly, Since: time.Now().Add(-24 * time.Hour)}
	if in.Since != nil {
		f.Since = in.Since.Time
	}
	if in.Limit != nil {
		f.Limit = *in.Limit
	}
	found := false
	for key, t := range s.events.TargetKeys() {
		if t.Bus == bus && t.Rule == *in.Rule && (in.TargetId == nil || *in.TargetId == t.TargetID) {
			f.TargetKeys = append(f.TargetKeys, key)
			found = true
		}
	}
	if !found {
		return nil, awsapi.Errorf(awsapi.CodeNotFound, "Rule %s on event bus %s has no such target.", *in.Rule, bus)
	}
	list, err := s.store.Attempts(ctx, f)
	if err != nil {
		return nil, err
	}
	return attemptsOutput(list), nil
}
