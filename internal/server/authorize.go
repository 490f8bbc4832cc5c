package server

import (
	"context"
	"net/http"

	"bridgeport/internal/admin"
	"bridgeport/internal/awsapi"
	"bridgeport/internal/iam"
	"bridgeport/internal/policy"
)

// Requests signed with an IAM user's access key are authorized before
// they run: each permission the request needs (awsapi.Access) is decided
// by the user's identity policies and the resource's policy (iam.Authorize);
// the first one refused is answered with the service's AccessDenied error.
// The root key is never asked.

// authorize decides the permissions one request needs, and records the
// key's use; resourcePolicy returns the policy of a resource, if it has
// one.
func (s *Server) authorize(ctx context.Context, service string, accesses []awsapi.Access, resourcePolicy func(resource string) *policy.Policy,
	denied func(msg string) *awsapi.Error) *awsapi.Error {
	id, _ := awsapi.IdentityFrom(ctx)
	s.iam.KeyUsed(ctx, id.AccessKeyID, service, s.cfg.Region)
	return s.decide(id.Principal, accesses, resourcePolicy, denied)
}

// decide decides permissions.
func (s *Server) decide(principal string, accesses []awsapi.Access, resourcePolicy func(resource string) *policy.Policy,
	denied func(msg string) *awsapi.Error) *awsapi.Error {
	for _, a := range accesses {
		var rp *policy.Policy
		if resourcePolicy != nil {
			rp = resourcePolicy(a.Resource)
		}
		if v := s.iam.Authorize(principal, a.Action, a.Resource, a.Context, rp); v != iam.Allowed {
			return denied(iam.DeniedMessage(v, principal, a.Action, a.Resource))
		}
	}
	return nil
}

func eventsDenied(msg string) *awsapi.Error {
	return &awsapi.Error{Code: "AccessDeniedException", Message: msg}
}

func (s *Server) authorizeEvents(ctx context.Context, op string, body []byte) error {
	return nilIfNone(s.authorize(ctx, "events", s.events.Access(op, body), s.events.BusPolicy, eventsDenied))
}

// authorizeEntry decides one PutEvents entry (the request has recorded
// the key's use).
func (s *Server) authorizeEntry(ctx context.Context, a awsapi.Access) *awsapi.Error {
	id, _ := awsapi.IdentityFrom(ctx)
	return s.decide(id.Principal, []awsapi.Access{a}, s.events.BusPolicy, eventsDenied)
}

func (s *Server) authorizeSQS(ctx context.Context, op string, body []byte) error {
	a, p := s.queues.Access(ctx, op, body)
	return nilIfNone(s.authorize(ctx, "sqs", []awsapi.Access{a}, func(string) *policy.Policy { return p }, func(msg string) *awsapi.Error {
		return &awsapi.Error{Code: "AccessDenied", QueryCode: "AccessDenied", Status: http.StatusForbidden, Message: msg}
	}))
}

func (s *Server) authorizeIAM(ctx context.Context, action string, p awsapi.Params) error {
	return nilIfNone(s.authorize(ctx, "iam", []awsapi.Access{s.iam.Access(ctx, action, p)}, nil, func(msg string) *awsapi.Error {
		return &awsapi.Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: msg}
	}))
}

// authorizeAdmin: bridgeport's own operations (diagnose, redrive, events
// trace) are the actions bridgeport:<Operation> on "*".
func (s *Server) authorizeAdmin(ctx context.Context, op string, body []byte) error {
	return nilIfNone(s.authorize(ctx, admin.SigningName, []awsapi.Access{{Action: "bridgeport:" + op, Resource: "*"}}, nil, eventsDenied))
}

// nilIfNone returns a nil error interface for a nil *awsapi.Error (a typed
// nil would read as a failure).
func nilIfNone(err *awsapi.Error) error {
	if err == nil {
		return nil
	}
	return err
}
