package connection

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/deliver"
)

// Destination returns what delivery needs of the API destination arn,
// with its connection's secrets opened: its state says whether it can be
// invoked (a destination or connection that is gone is DELETED).
func (s *Service) Destination(arn string) *deliver.Destination {
	rest, _ := strings.CutPrefix(arn, s.arns.prefix()+"api-destination/")
	dname, _, _ := strings.Cut(rest, "/")
	var d Destination
	if _, ok := s.reg.getObj(destKey(dname), &d); !ok || d.Arn != arn {
		return &deliver.Destination{Arn: arn, ConnectionState: "DELETED", StateReason: "the API destination does not exist"}
	}
	od := &deliver.Destination{Arn: d.Arn, Endpoint: d.Endpoint, Method: d.HttpMethod, RateLimit: d.RateLimit, ConnectionArn: d.ConnectionArn}
	c, ok := s.connByArn(d.ConnectionArn)
	if !ok {
		od.ConnectionState, od.StateReason = "DELETED", "the connection does not exist"
		return od
	}
	od.ConnectionState, od.StateReason = c.State, c.StateReason
	auth, hdr, query, body, err := s.openConnection(&c)
	if err != nil {
		s.log.Error("connection secrets do not open", "connection", c.Name, "error", err)
		od.ConnectionState, od.StateReason = StateDeauthorized, "The connection's secrets cannot be decrypted with this server's key."
		return od
	}
	od.Auth, od.Header, od.Query, od.Body = auth, hdr, query, body
	if c.AuthorizationType == AuthOAuth {
		oc, err := s.oauthClient(&c)
		if err != nil {
			s.log.Error("connection secrets do not open", "connection", c.Name, "error", err)
			od.ConnectionState, od.StateReason = StateDeauthorized, "The connection's secrets cannot be decrypted with this server's key."
			return od
		}
		od.OAuth = &oc
	}
	return od
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
	for _, k := range s.reg.listObjs(connPrefix) {
		var c Connection
		if _, ok := s.reg.getObj(k, &c); !ok || c.State != StateAuthorizing || c.AuthorizationType != AuthOAuth {
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
		if c.State != StateAuthorizing || strconv.FormatInt(c.Modified.UnixNano(), 10) != version {
			return false
		}
		c.State, c.StateReason, c.LastAuthorized = StateAuthorized, "", s.now().UTC()
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
		if c.State == StateDeauthorized {
			return false
		}
		c.State, c.StateReason = StateDeauthorized, reason
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
