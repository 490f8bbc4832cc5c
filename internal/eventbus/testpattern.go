package eventbus

import (
	"context"
	"encoding/json"
	"errors"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/pattern"
)

// testEventPattern matches one event against one pattern. The event must be
// a JSON object with the envelope's mandatory members.
func (s *Service) testEventPattern(ctx context.Context, body []byte) (any, error) {
	var in struct {
		EventPattern *string `json:"EventPattern"`
		Event        *string `json:"Event"`
	}
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	if in.EventPattern == nil {
		v.Add(nil, "eventPattern", awsapi.MustNotBeNull)
	} else if len(*in.EventPattern) > pattern.APIMaxLength {
		v.Add(*in.EventPattern, "eventPattern", awsapi.MaxLen(pattern.APIMaxLength))
	}
	if in.Event == nil {
		v.Add(nil, "event", awsapi.MustNotBeNull)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := pattern.CompileWithLimits(*in.EventPattern, pattern.Limits{MaxLength: pattern.APIMaxLength})
	if err != nil {
		var perr *pattern.Error
		if errors.As(err, &perr) {
			return nil, &awsapi.Error{Code: awsapi.CodeInvalidPattern, Message: perr.Error()}
		}
		return nil, err
	}
	if !validTestEvent([]byte(*in.Event)) {
		return nil, awsapi.Errorf(awsapi.CodeValidation, "Parameter Event is not valid.")
	}
	// Matching stops when the client goes away.
	ok, err := p.MatchContext(ctx, []byte(*in.Event))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, awsapi.Errorf(awsapi.CodeValidation, "Parameter Event is not valid.")
	}
	return struct {
		Result bool `json:"Result"`
	}{ok}, nil
}

// validTestEvent reports whether an event has the members TestEventPattern
// requires: id, account, source, time, region and detail-type. Their types
// are not checked: AWS evaluates an event whose detail-type is an array
// like any other array (LocalStack's AWS-validated fixtures
// content_ignorecase and content_ignorecase_NEG, 2025-10-15). resources is
// documented as mandatory but AWS accepts events without it.
func validTestEvent(event []byte) bool {
	if pattern.CheckEvent(event) != nil {
		return false
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(event, &env); err != nil {
		return false
	}
	for _, k := range []string{"id", "account", "source", "time", "region", "detail-type"} {
		if _, ok := env[k]; !ok {
			return false
		}
	}
	return true
}
