package server

import (
	"context"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// AttemptRecord is one record of the delivery attempt log, as the API
// returns it.
type AttemptRecord struct {
	Time               awsapi.Time  `json:"Time"`
	EventId            string       `json:"EventId"`
	EventBusName       string       `json:"EventBusName"`
	RuleArn            string       `json:"RuleArn"`
	TargetId           string       `json:"TargetId"`
	TargetArn          string       `json:"TargetArn"`
	Attempt            int          `json:"Attempt"`
	DurationMs         float64      `json:"DurationMs"`
	StatusCode         int          `json:"StatusCode,omitempty"`
	ErrorCode          string       `json:"ErrorCode,omitempty"`
	ErrorMessage       string       `json:"ErrorMessage,omitempty"`
	Outcome            string       `json:"Outcome"`
	RetryAt            *awsapi.Time `json:"RetryAt,omitempty"`
	DeadLetterQueueArn string       `json:"DeadLetterQueueArn,omitempty"`
}

func attemptRecord(a store.Attempt) AttemptRecord {
	r := AttemptRecord{Time: awsapi.Time{Time: a.Time}, EventId: a.EventID, EventBusName: a.Bus, RuleArn: a.RuleArn,
		TargetId: a.TargetID, TargetArn: a.TargetArn, Attempt: a.Attempt, DurationMs: float64(a.Duration.Microseconds()) / 1000,
		StatusCode: a.Status, ErrorCode: a.Code, ErrorMessage: a.Message, Outcome: a.Outcome, DeadLetterQueueArn: a.DeadLetterQueue}
	if a.RetryAt != nil {
		r.RetryAt = &awsapi.Time{Time: *a.RetryAt}
	}
	return r
}

// AttemptsOutput is the answer of TraceEvent and ListAttempts.
type AttemptsOutput struct {
	Attempts []AttemptRecord `json:"Attempts"`
}

func attemptsOutput(list []store.Attempt) AttemptsOutput {
	out := AttemptsOutput{Attempts: []AttemptRecord{}}
	for _, a := range list {
		out.Attempts = append(out.Attempts, attemptRecord(a))
	}
	return out
}

// TraceEventInput asks for every attempt to deliver one event.
type TraceEventInput struct {
	EventId *string `json:"EventId"`
}

func (s *Server) traceEvent(ctx context.Context, body []byte) (any, error) {
	var in TraceEventInput
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

// ListAttemptsInput asks for the attempts of a rule's targets.
type ListAttemptsInput struct {
	Rule         *string      `json:"Rule"`
	EventBusName *string      `json:"EventBusName"`
	TargetId     *string      `json:"TargetId"`
	FailedOnly   bool         `json:"FailedOnly"`
	Since        *awsapi.Time `json:"Since"`
	Limit        *int         `json:"Limit"`
}

func (s *Server) listAttempts(ctx context.Context, body []byte) (any, error) {
	var in ListAttemptsInput
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
