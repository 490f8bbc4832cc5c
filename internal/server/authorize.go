package server

import (
	"context"
	"net/http"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/iam"
	"bridgeport/internal/policy"
)

// Requests signed with an IAM user's access key are authorized before
// they run: each permission the request needs (awsapi.Access) is decided
// by the user's identity policies and the resource's policy (iam.Authorize);
// the first one refused is answered with the service's AccessDenied error.
// The root key is never asked.

// authorize decides the permissions one request needs.
func (s *Server) authorize(ctx context.Context, service string, accesses []awsapi.Access, resourcePolicy *policy.Policy,
	denied func(msg string) *awsapi.Error) error {
	id, _ := awsapi.IdentityFrom(ctx)
	s.iam.KeyUsed(ctx, id.AccessKeyID, service, s.cfg.Region)
	for _, a := range accesses {
		if v := s.iam.Authorize(id.Principal, a.Action, a.Resource, a.Context, resourcePolicy); v != iam.Allowed {
			return denied(iam.DeniedMessage(v, id.Principal, a.Action, a.Resource))
		}
	}
	return nil
}

func (s *Server) authorizeEvents(ctx context.Context, op string, body []byte) error {
	return s.authorize(ctx, "events", s.events.Access(op, body), nil, func(msg string) *awsapi.Error {
		return &awsapi.Error{Code: "AccessDeniedException", Message: msg}
	})
}

func (s *Server) authorizeSQS(ctx context.Context, op string, body []byte) error {
	a, p := s.queues.Access(ctx, op, body)
	return s.authorize(ctx, "sqs", []awsapi.Access{a}, p, func(msg string) *awsapi.Error {
		return &awsapi.Error{Code: "AccessDenied", QueryCode: "AccessDenied", Status: http.StatusForbidden, Message: msg}
	})
}

func (s *Server) authorizeIAM(ctx context.Context, action string, p awsapi.Params) error {
	return s.authorize(ctx, "iam", []awsapi.Access{s.iam.Access(ctx, action, p)}, nil, func(msg string) *awsapi.Error {
		return &awsapi.Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: msg}
	})
}

// authorizeAdmin: bridgeport's own operations (diagnose, redrive, events
// trace) are the actions bridgeport:<Operation> on "*".
func (s *Server) authorizeAdmin(ctx context.Context, op string, body []byte) error {
	return s.authorize(ctx, AdminSigningName, []awsapi.Access{{Action: "bridgeport:" + op, Resource: "*"}}, nil, func(msg string) *awsapi.Error {
		return &awsapi.Error{Code: "AccessDeniedException", Message: msg}
	})
}
