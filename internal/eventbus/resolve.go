package eventbus

import (
	"context"
	"strings"
	"time"

	"bridgeport/internal/connection"
	"bridgeport/internal/deliver"
)

var _ deliver.Config = (*Service)(nil)

// Target resolves a delivery job's rule and target to what the worker
// needs, with the connection's secrets opened. ok is false when the rule or
// the target no longer exists.
//
// Resolutions are cached until the configuration, connections or API
// destinations change, so a delivery does not decode records and open
// secrets again.
func (s *Service) Target(ruleArn, targetID string) (deliver.Target, bool) {
	rev, crev := s.reg.applied.Revision(), s.conns.Revision()
	key := ruleArn + "\x00" + targetID
	if c, ok := s.targets.Load(key); ok && c.(cachedTarget).rev == rev && c.(cachedTarget).crev == crev {
		return c.(cachedTarget).t, c.(cachedTarget).ok
	}
	t, ok := s.resolveTarget(ruleArn, targetID)
	// A connection whose state the worker may change (OAuth pending) is
	// resolved each time.
	if t.Destination == nil || t.Destination.ConnectionState != connection.StateAuthorizing {
		s.targets.Store(key, cachedTarget{rev: rev, crev: crev, t: t, ok: ok})
	}
	return t, ok
}

type cachedTarget struct {
	rev  uint64 // of the configuration
	crev uint64 // of the connections and API destinations
	t    deliver.Target
	ok   bool
}

// resolveTarget is Target without the cache.
func (s *Service) resolveTarget(ruleArn, targetID string) (deliver.Target, bool) {
	bus, name, ok := s.arns.resource(ruleArn)
	if !ok || name == "" {
		return deliver.Target{}, false
	}
	r, _, ok := s.reg.getRule(bus, name)
	if !ok {
		return deliver.Target{}, false
	}
	var t *Target
	for i := range r.Targets {
		if r.Targets[i].Id == targetID {
			t = &r.Targets[i]
		}
	}
	if t == nil {
		return deliver.Target{}, false
	}
	out := deliver.Target{Arn: t.Arn, RuleName: r.Name, MaxRetries: deliver.DefaultMaxRetries, MaxAge: deliver.DefaultMaxAge}
	if t.RoleArn != nil {
		out.RoleArn = *t.RoleArn
	}
	if rp := t.RetryPolicy; rp != nil {
		if rp.MaximumRetryAttempts != nil {
			out.MaxRetries = *rp.MaximumRetryAttempts
		}
		if rp.MaximumEventAgeInSeconds != nil {
			out.MaxAge = time.Duration(*rp.MaximumEventAgeInSeconds) * time.Second
		}
	}
	if t.DeadLetterConfig != nil && t.DeadLetterConfig.Arn != nil {
		out.DeadLetterArn = *t.DeadLetterConfig.Arn
	}
	switch {
	case t.Input != nil:
		out.Input.Constant = t.Input
	case t.InputPath != nil:
		out.Input.Path = t.InputPath
	case t.InputTransformer != nil:
		out.Input.Paths, out.Input.Template = t.InputTransformer.InputPathsMap, t.InputTransformer.InputTemplate
	}
	if hp := t.HttpParameters; hp != nil {
		out.Path, out.Header, out.Query = hp.PathParameterValues, hp.HeaderParameters, hp.QueryStringParameters
	}
	if bus := s.busTarget(t.Arn); bus != "" {
		out.Bus = bus
		return out, true
	}
	if strings.HasPrefix(t.Arn, "arn:aws:sqs:") {
		out.Queue = t.Arn
		if t.SqsParameters != nil && t.SqsParameters.MessageGroupId != nil {
			out.MessageGroupID = *t.SqsParameters.MessageGroupId
		}
		return out, true
	}
	if !strings.HasPrefix(t.Arn, s.arns.prefix()+"api-destination/") {
		out.Unsupported = "bridgeport does not deliver to this kind of target yet: " + t.Arn
		return out, true
	}
	out.Destination = s.conns.Destination(t.Arn)
	return out, true
}

// PendingOAuth returns the OAuth connections waiting for their first
// token.
func (s *Service) PendingOAuth() []deliver.OAuthClient { return s.conns.PendingOAuth() }

// Authorize moves an AUTHORIZING connection to AUTHORIZED once it has a
// token, unless it changed since version.
func (s *Service) Authorize(ctx context.Context, connectionArn, version string) error {
	return s.conns.Authorize(ctx, connectionArn, version)
}

// Deauthorize moves a connection to DEAUTHORIZED, as EventBridge does when
// a BASIC or API_KEY endpoint answers 401 or 407.
func (s *Service) Deauthorize(ctx context.Context, connectionArn, reason string) error {
	return s.conns.Deauthorize(ctx, connectionArn, reason)
}
