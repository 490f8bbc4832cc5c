package eventbus

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/deliver"
)

var _ deliver.Config = (*Service)(nil)

// Target resolves a delivery job's rule and target to what the worker
// needs, with the connection's secrets opened. ok is false when the rule or
// the target no longer exists.
//
// Resolutions are cached until the configuration changes (any record's
// revision), so a delivery does not decode records and open secrets again.
func (s *Service) Target(ruleArn, targetID string) (deliver.Target, bool) {
	rev := s.reg.applied.Revision()
	key := ruleArn + "\x00" + targetID
	if c, ok := s.targets.Load(key); ok && c.(cachedTarget).rev == rev {
		return c.(cachedTarget).t, c.(cachedTarget).ok
	}
	t, ok := s.resolveTarget(ruleArn, targetID)
	// A connection whose state the worker may change (OAuth pending) is
	// resolved each time.
	if t.Destination == nil || t.Destination.ConnectionState != ConnAuthorizing {
		s.targets.Store(key, cachedTarget{rev: rev, t: t, ok: ok})
	}
	return t, ok
}

type cachedTarget struct {
	rev uint64
	t   deliver.Target
	ok  bool
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
	dest, isDest := strings.CutPrefix(t.Arn, s.arns.prefix()+"api-destination/")
	if !isDest {
		out.Unsupported = "bridgeport does not deliver to this kind of target yet: " + t.Arn
		return out, true
	}
	dname, _, _ := strings.Cut(dest, "/")
	var d Destination
	if _, ok := s.reg.getObj(destKey(dname), &d); !ok || d.Arn != t.Arn {
		out.Destination = &deliver.Destination{Arn: t.Arn, ConnectionState: "DELETED", StateReason: "the API destination does not exist"}
		return out, true
	}
	od := &deliver.Destination{Arn: d.Arn, Endpoint: d.Endpoint, Method: d.HttpMethod, RateLimit: d.RateLimit, ConnectionArn: d.ConnectionArn}
	out.Destination = od
	c, ok := s.connByArn(d.ConnectionArn)
	if !ok {
		od.ConnectionState, od.StateReason = "DELETED", "the connection does not exist"
		return out, true
	}
	od.ConnectionState, od.StateReason = c.State, c.StateReason
	auth, hdr, query, body, err := s.openConnection(&c)
	if err != nil {
		s.log.Error("connection secrets do not open", "connection", c.Name, "error", err)
		od.ConnectionState, od.StateReason = ConnDeauthorized, "The connection's secrets cannot be decrypted with this server's key."
		return out, true
	}
	od.Auth, od.Header, od.Query, od.Body = auth, hdr, query, body
	if c.AuthorizationType == AuthOAuth {
		oc, err := s.oauthClient(&c)
		if err != nil {
			s.log.Error("connection secrets do not open", "connection", c.Name, "error", err)
			od.ConnectionState, od.StateReason = ConnDeauthorized, "The connection's secrets cannot be decrypted with this server's key."
			return out, true
		}
		od.OAuth = &oc
	}
	return out, true
}

// oauthClient returns an OAuth connection's token request, secrets opened.
func (s *Service) oauthClient(c *Connection) (deliver.OAuthClient, error) {
	o := c.OAuth
	if o == nil {
		return deliver.OAuthClient{}, errors.New("no OAuth parameters")
	}
	secret, err := s.box.Open(o.SealedClientSecret)
	if err != nil {
		return deliver.OAuthClient{}, err
	}
	oc := deliver.OAuthClient{ConnectionArn: c.Arn, Version: strconv.FormatInt(c.Modified.UnixNano(), 10),
		Endpoint: o.AuthorizationEndpoint, Method: o.HttpMethod, ClientID: o.ClientID, ClientSecret: secret}
	if o.Params != nil {
		for _, list := range []struct {
			in  []Param
			out *[]deliver.Param
		}{{o.Params.Header, &oc.Header}, {o.Params.Query, &oc.Query}, {o.Params.Body, &oc.Body}} {
			for _, p := range list.in {
				v := p.Value
				if p.Secret {
					if v, err = s.box.Open(v); err != nil {
						return deliver.OAuthClient{}, err
					}
				}
				*list.out = append(*list.out, deliver.Param{Key: p.Key, Value: v})
			}
		}
	}
	return oc, nil
}

// PendingOAuth returns the OAuth connections waiting for their first token.
func (s *Service) PendingOAuth() []deliver.OAuthClient {
	var out []deliver.OAuthClient
	for _, k := range s.reg.listObjs("conn.") {
		var c Connection
		if _, ok := s.reg.getObj(k, &c); !ok || c.State != ConnAuthorizing || c.AuthorizationType != AuthOAuth {
			continue
		}
		oc, err := s.oauthClient(&c)
		if err != nil {
			continue
		}
		out = append(out, oc)
	}
	return out
}

// Authorize moves an AUTHORIZING connection to AUTHORIZED once it has a
// token, unless it changed since version.
func (s *Service) Authorize(ctx context.Context, connectionArn, version string) error {
	return s.setConnState(ctx, connectionArn, func(c *Connection) bool {
		if c.State != ConnAuthorizing || strconv.FormatInt(c.Modified.UnixNano(), 10) != version {
			return false
		}
		c.State, c.StateReason, c.LastAuthorized = ConnAuthorized, "", s.now().UTC()
		return true
	})
}

// openConnection returns a connection's auth and invocation parameters
// with their secrets opened.
func (s *Service) openConnection(c *Connection) (deliver.Auth, []deliver.Param, []deliver.Param, []deliver.Param, error) {
	auth := deliver.Auth{Type: c.AuthorizationType}
	var err error
	open := func(sealed string) string {
		if sealed == "" || err != nil {
			return ""
		}
		var v string
		v, err = s.box.Open(sealed)
		return v
	}
	if b := c.Basic; b != nil {
		auth.Username, auth.Password = b.Username, open(b.SealedPassword)
	}
	if k := c.APIKey; k != nil {
		auth.APIKeyName, auth.APIKeyValue = k.Name, open(k.SealedValue)
	}
	params := func(in []Param) []deliver.Param {
		var out []deliver.Param
		for _, p := range in {
			v := p.Value
			if p.Secret {
				v = open(v)
			}
			out = append(out, deliver.Param{Key: p.Key, Value: v, Secret: p.Secret})
		}
		return out
	}
	var hdr, query, body []deliver.Param
	if c.Invocation != nil {
		hdr, query, body = params(c.Invocation.Header), params(c.Invocation.Query), params(c.Invocation.Body)
	}
	return auth, hdr, query, body, err
}

// Deauthorize moves a connection to DEAUTHORIZED, as EventBridge does when
// a BASIC or API_KEY endpoint answers 401 or 407.
func (s *Service) Deauthorize(ctx context.Context, connectionArn, reason string) error {
	return s.setConnState(ctx, connectionArn, func(c *Connection) bool {
		if c.State == ConnDeauthorized {
			return false
		}
		c.State, c.StateReason = ConnDeauthorized, reason
		return true
	})
}

// setConnState applies change to a connection and stores it if change
// reports a change, retrying on concurrent modification. The change does
// not touch the connection's Modified time, which versions its settings.
func (s *Service) setConnState(ctx context.Context, connectionArn string, change func(*Connection) bool) error {
	for range 3 {
		c, ok := s.connByArn(connectionArn)
		if !ok {
			return nil
		}
		rev, _ := s.reg.getObj(connKey(c.Name), &Connection{})
		if !change(&c) {
			return nil
		}
		err := s.save(ctx, connKey(c.Name), rev, c)
		if e, isAPI := err.(*awsapi.Error); !isAPI || e.Code != awsapi.CodeConcurrentMod {
			return err
		}
	}
	return nil
}
