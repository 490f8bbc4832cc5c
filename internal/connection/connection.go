package connection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// Connection states and authorization types, as AWS spells them.
const (
	StateAuthorized   = "AUTHORIZED"
	StateAuthorizing  = "AUTHORIZING"
	StateDeauthorized = "DEAUTHORIZED"
	StateDeleting     = "DELETING"

	AuthBasic  = "BASIC"
	AuthOAuth  = "OAUTH_CLIENT_CREDENTIALS"
	AuthAPIKey = "API_KEY"
)

// Connection is a connection as stored. Secret values are sealed with the
// service's secret box; they are never returned by any operation.
type Connection struct {
	Name              string     `json:"name"`
	Arn               string     `json:"arn"`
	Description       *string    `json:"description,omitempty"`
	AuthorizationType string     `json:"authorizationType"`
	State             string     `json:"state"`
	StateReason       string     `json:"stateReason,omitempty"`
	KmsKeyIdentifier  *string    `json:"kmsKeyIdentifier,omitempty"`
	Basic             *BasicAuth `json:"basic,omitempty"`
	APIKey            *APIKey    `json:"apiKey,omitempty"`
	OAuth             *OAuth     `json:"oauth,omitempty"`
	Invocation        *Params    `json:"invocation,omitempty"`
	Created           time.Time  `json:"created"`
	Modified          time.Time  `json:"modified"`
	LastAuthorized    time.Time  `json:"lastAuthorized,omitzero"`
}

// BasicAuth holds a user name and a sealed password.
type BasicAuth struct {
	Username       string `json:"username"`
	SealedPassword string `json:"password"`
}

// APIKey holds a header name and its sealed value.
type APIKey struct {
	Name        string `json:"name"`
	SealedValue string `json:"value"`
}

// OAuth holds the client credentials flow's settings, the secret sealed.
type OAuth struct {
	ClientID              string  `json:"clientId"`
	SealedClientSecret    string  `json:"clientSecret"`
	AuthorizationEndpoint string  `json:"authorizationEndpoint"`
	HttpMethod            string  `json:"httpMethod"`
	Params                *Params `json:"params,omitempty"`
}

// Params are header, query string and body parameters; values marked
// secret are sealed.
type Params struct {
	Header []Param `json:"header,omitempty"`
	Query  []Param `json:"query,omitempty"`
	Body   []Param `json:"body,omitempty"`
}

// Param is one parameter.
type Param struct {
	Key    string `json:"key"`
	Value  string `json:"value"` // sealed when Secret
	Secret bool   `json:"secret,omitempty"`
}

const (
	connPrefix = "conn."
	destPrefix = "dest."
)

// namePattern is the pattern of connection and API destination names.
const namePattern = `[\.\-_A-Za-z0-9]+`

var nameRE = regexp.MustCompile(`^` + namePattern + `$`)

func connKey(name string) string { return connPrefix + store.Token(name) }

func (a arns) connection(name, id string) string { return a.prefix() + "connection/" + name + "/" + id }

// Request shapes.
type (
	connIn struct {
		Name                             *string         `json:"Name"`
		Description                      *string         `json:"Description"`
		AuthorizationType                *string         `json:"AuthorizationType"`
		AuthParameters                   *authIn         `json:"AuthParameters"`
		InvocationConnectivityParameters json.RawMessage `json:"InvocationConnectivityParameters"`
		KmsKeyIdentifier                 *string         `json:"KmsKeyIdentifier"`
		NamePrefix                       *string         `json:"NamePrefix"`
		ConnectionState                  *string         `json:"ConnectionState"`
		NextToken                        *string         `json:"NextToken"`
		Limit                            *int            `json:"Limit"`
	}
	authIn struct {
		BasicAuthParameters *struct {
			Username *string `json:"Username"`
			Password *string `json:"Password"`
		} `json:"BasicAuthParameters"`
		OAuthParameters *struct {
			ClientParameters *struct {
				ClientID     *string `json:"ClientID"`
				ClientSecret *string `json:"ClientSecret"`
			} `json:"ClientParameters"`
			AuthorizationEndpoint *string   `json:"AuthorizationEndpoint"`
			HttpMethod            *string   `json:"HttpMethod"`
			OAuthHttpParameters   *paramsIn `json:"OAuthHttpParameters"`
		} `json:"OAuthParameters"`
		ApiKeyAuthParameters *struct {
			ApiKeyName  *string `json:"ApiKeyName"`
			ApiKeyValue *string `json:"ApiKeyValue"`
		} `json:"ApiKeyAuthParameters"`
		InvocationHttpParameters *paramsIn       `json:"InvocationHttpParameters"`
		ConnectivityParameters   json.RawMessage `json:"ConnectivityParameters"`
	}
	paramsIn struct {
		HeaderParameters      []paramIn `json:"HeaderParameters"`
		QueryStringParameters []paramIn `json:"QueryStringParameters"`
		BodyParameters        []paramIn `json:"BodyParameters"`
	}
	paramIn struct {
		Key           *string `json:"Key"`
		Value         *string `json:"Value"`
		IsValueSecret *bool   `json:"IsValueSecret"`
	}
)

// Response shapes: secrets are never included.
type (
	connOut struct {
		ConnectionArn      string       `json:"ConnectionArn"`
		Name               string       `json:"Name,omitempty"`
		Description        *string      `json:"Description,omitempty"`
		ConnectionState    string       `json:"ConnectionState"`
		StateReason        string       `json:"StateReason,omitempty"`
		AuthorizationType  string       `json:"AuthorizationType,omitempty"`
		SecretArn          string       `json:"SecretArn,omitempty"`
		KmsKeyIdentifier   *string      `json:"KmsKeyIdentifier,omitempty"`
		AuthParameters     *authOut     `json:"AuthParameters,omitempty"`
		CreationTime       *awsapi.Time `json:"CreationTime,omitempty"`
		LastModifiedTime   *awsapi.Time `json:"LastModifiedTime,omitempty"`
		LastAuthorizedTime *awsapi.Time `json:"LastAuthorizedTime,omitempty"`
	}
	authOut struct {
		BasicAuthParameters *struct {
			Username string `json:"Username"`
		} `json:"BasicAuthParameters,omitempty"`
		OAuthParameters *struct {
			ClientParameters struct {
				ClientID string `json:"ClientID"`
			} `json:"ClientParameters"`
			AuthorizationEndpoint string     `json:"AuthorizationEndpoint"`
			HttpMethod            string     `json:"HttpMethod"`
			OAuthHttpParameters   *paramsOut `json:"OAuthHttpParameters,omitempty"`
		} `json:"OAuthParameters,omitempty"`
		ApiKeyAuthParameters *struct {
			ApiKeyName string `json:"ApiKeyName"`
		} `json:"ApiKeyAuthParameters,omitempty"`
		InvocationHttpParameters *paramsOut `json:"InvocationHttpParameters,omitempty"`
	}
	paramsOut struct {
		HeaderParameters      []paramOut `json:"HeaderParameters,omitempty"`
		QueryStringParameters []paramOut `json:"QueryStringParameters,omitempty"`
		BodyParameters        []paramOut `json:"BodyParameters,omitempty"`
	}
	paramOut struct {
		Key           string  `json:"Key"`
		Value         *string `json:"Value,omitempty"`
		IsValueSecret bool    `json:"IsValueSecret"`
	}
)

// Model constraints of connection parameters.
const (
	authValuePattern = `^[ \t]*[^\x00-\x1F:\x7F]+([ \t]+[^\x00-\x1F:\x7F]+)*[ \t]*$`
	endpointPattern  = `^((%[0-9A-Fa-f]{2}|[-()_.!~*';/?:@\x26=+$,A-Za-z0-9])+)([).!';/?:,])?$`
)

var (
	authValueRE = regexp.MustCompile(authValuePattern)
	endpointRE  = regexp.MustCompile(endpointPattern)
)

func checkAuthValue(v *awsapi.Violations, s *string, path string) {
	switch {
	case s == nil:
		v.Add(nil, path, awsapi.MustNotBeNull)
	case len(*s) < 1 || len(*s) > 512:
		v.Add(redacted(path, *s), path, awsapi.LenConstraint(len(*s), 1, 512))
	case !authValueRE.MatchString(*s):
		v.Add(redacted(path, *s), path, awsapi.MatchPattern(authValuePattern))
	}
}

// redacted keeps secret values out of validation messages.
func redacted(path, s string) string {
	for _, secret := range []string{"password", "apiKeyValue", "clientSecret"} {
		if strings.HasSuffix(path, secret) {
			return "***"
		}
	}
	return s
}

func checkParams(v *awsapi.Violations, p *paramsIn, path string) {
	if p == nil {
		return
	}
	for _, list := range []struct {
		name  string
		items []paramIn
	}{{"headerParameters", p.HeaderParameters}, {"queryStringParameters", p.QueryStringParameters}, {"bodyParameters", p.BodyParameters}} {
		if len(list.items) > 100 {
			v.Add(len(list.items), path+"."+list.name, awsapi.MaxLen(100))
		}
		for i, it := range list.items {
			ip := path + "." + list.name + "." + strconv.Itoa(i+1) + ".member"
			if it.Key != nil && len(*it.Key) > 512 {
				v.Add(*it.Key, ip+".key", awsapi.MaxLen(512))
			}
			if it.Value != nil && len(*it.Value) > 512 {
				shown := *it.Value
				if it.IsValueSecret != nil && *it.IsValueSecret {
					shown = "***"
				}
				v.Add(shown, ip+".value", awsapi.MaxLen(512))
			}
		}
	}
}

func validateConnName(v *awsapi.Violations, name *string) {
	switch {
	case name == nil:
		v.Add(nil, "name", awsapi.MustNotBeNull)
	case len(*name) < 1:
		v.Add(*name, "name", awsapi.MinLen(1))
	case len(*name) > 64:
		v.Add(*name, "name", awsapi.MaxLen(64))
	case !nameRE.MatchString(*name):
		v.Add(*name, "name", awsapi.MatchPattern(namePattern))
	}
}

// validateAuth checks the auth parameters' shapes; create requires the
// parameters of the authorization type.
func validateAuth(v *awsapi.Violations, a *authIn, create bool) {
	if a == nil {
		return
	}
	if b := a.BasicAuthParameters; b != nil && (create || b.Username != nil || b.Password != nil) {
		if create || b.Username != nil {
			checkAuthValue(v, b.Username, "authParameters.basicAuthParameters.username")
		}
		if create || b.Password != nil {
			checkAuthValue(v, b.Password, "authParameters.basicAuthParameters.password")
		}
	}
	if k := a.ApiKeyAuthParameters; k != nil {
		if create || k.ApiKeyName != nil {
			checkAuthValue(v, k.ApiKeyName, "authParameters.apiKeyAuthParameters.apiKeyName")
		}
		if create || k.ApiKeyValue != nil {
			checkAuthValue(v, k.ApiKeyValue, "authParameters.apiKeyAuthParameters.apiKeyValue")
		}
	}
	if o := a.OAuthParameters; o != nil {
		p := "authParameters.oAuthParameters."
		if create && o.ClientParameters == nil {
			v.Add(nil, p+"clientParameters", awsapi.MustNotBeNull)
		}
		if c := o.ClientParameters; c != nil {
			if create || c.ClientID != nil {
				checkAuthValue(v, c.ClientID, p+"clientParameters.clientID")
			}
			if create || c.ClientSecret != nil {
				checkAuthValue(v, c.ClientSecret, p+"clientParameters.clientSecret")
			}
		}
		switch e := o.AuthorizationEndpoint; {
		case e == nil && create:
			v.Add(nil, p+"authorizationEndpoint", awsapi.MustNotBeNull)
		case e != nil && (len(*e) < 1 || len(*e) > 2048):
			v.Add(*e, p+"authorizationEndpoint", awsapi.LenConstraint(len(*e), 1, 2048))
		case e != nil && !endpointRE.MatchString(*e):
			v.Add(*e, p+"authorizationEndpoint", awsapi.MatchPattern(endpointPattern))
		}
		switch m := o.HttpMethod; {
		case m == nil && create:
			v.Add(nil, p+"httpMethod", awsapi.MustNotBeNull)
		case m != nil && *m != "GET" && *m != "POST" && *m != "PUT":
			v.Add(*m, p+"httpMethod", awsapi.InEnum("GET", "POST", "PUT"))
		}
		checkParams(v, o.OAuthHttpParameters, p+"oAuthHttpParameters")
	}
	checkParams(v, a.InvocationHttpParameters, "authParameters.invocationHttpParameters")
}

// checkAuthEndpoint applies the API destinations' endpoint rules to an
// OAuth AuthorizationEndpoint: its token request carries the client
// secret.
func (s *Service) checkAuthEndpoint(a *authIn) error {
	if a == nil || a.OAuthParameters == nil || a.OAuthParameters.AuthorizationEndpoint == nil {
		return nil
	}
	return s.checkEndpoint("AuthorizationEndpoint", *a.OAuthParameters.AuthorizationEndpoint)
}

func validAuthType(t string) bool { return t == AuthBasic || t == AuthOAuth || t == AuthAPIKey }

func (s *Service) sealParams(p *paramsIn) *Params {
	if p == nil {
		return nil
	}
	conv := func(in []paramIn) []Param {
		var out []Param
		for _, it := range in {
			q := Param{Key: deref(it.Key), Value: deref(it.Value), Secret: it.IsValueSecret != nil && *it.IsValueSecret}
			if q.Secret {
				q.Value = s.box.Seal(q.Value)
			}
			out = append(out, q)
		}
		return out
	}
	return &Params{Header: conv(p.HeaderParameters), Query: conv(p.QueryStringParameters), Body: conv(p.BodyParameters)}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func paramsView(p *Params) *paramsOut {
	if p == nil {
		return nil
	}
	conv := func(in []Param) []paramOut {
		var out []paramOut
		for _, q := range in {
			o := paramOut{Key: q.Key, IsValueSecret: q.Secret}
			if !q.Secret {
				o.Value = &q.Value
			}
			out = append(out, o)
		}
		return out
	}
	return &paramsOut{HeaderParameters: conv(p.Header), QueryStringParameters: conv(p.Query), BodyParameters: conv(p.Body)}
}

// view describes a connection without its secrets.
func (s *Service) connView(c *Connection, full bool) connOut {
	out := connOut{ConnectionArn: c.Arn, ConnectionState: c.State,
		CreationTime: &awsapi.Time{Time: c.Created}, LastModifiedTime: &awsapi.Time{Time: c.Modified}}
	if !c.LastAuthorized.IsZero() {
		out.LastAuthorizedTime = &awsapi.Time{Time: c.LastAuthorized}
	}
	if !full {
		return out
	}
	out.Name, out.Description, out.StateReason, out.AuthorizationType, out.KmsKeyIdentifier = c.Name, c.Description, c.StateReason, c.AuthorizationType, c.KmsKeyIdentifier
	id := c.Arn[strings.LastIndexByte(c.Arn, '/')+1:]
	out.SecretArn = "arn:aws:secretsmanager:" + s.arns.region + ":" + s.arns.account + ":secret:events!connection/" + c.Name + "/" + id
	a := &authOut{InvocationHttpParameters: paramsView(c.Invocation)}
	if c.Basic != nil {
		a.BasicAuthParameters = &struct {
			Username string `json:"Username"`
		}{c.Basic.Username}
	}
	if c.APIKey != nil {
		a.ApiKeyAuthParameters = &struct {
			ApiKeyName string `json:"ApiKeyName"`
		}{c.APIKey.Name}
	}
	if o := c.OAuth; o != nil {
		a.OAuthParameters = &struct {
			ClientParameters struct {
				ClientID string `json:"ClientID"`
			} `json:"ClientParameters"`
			AuthorizationEndpoint string     `json:"AuthorizationEndpoint"`
			HttpMethod            string     `json:"HttpMethod"`
			OAuthHttpParameters   *paramsOut `json:"OAuthHttpParameters,omitempty"`
		}{AuthorizationEndpoint: o.AuthorizationEndpoint, HttpMethod: o.HttpMethod, OAuthHttpParameters: paramsView(o.Params)}
		a.OAuthParameters.ClientParameters.ClientID = o.ClientID
	}
	out.AuthParameters = a
	return out
}

func notFoundConn(name string) *awsapi.Error {
	return awsapi.Errorf(awsapi.CodeNotFound, "Failed to describe the connection(s). Connection '%s' does not exist.", name)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (s *Service) createConnection(ctx context.Context, body []byte) (any, error) {
	var in connIn
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateConnName(&v, in.Name)
	if in.Description != nil && len(*in.Description) > 512 {
		v.Add(*in.Description, "description", awsapi.MaxLen(512))
	}
	switch {
	case in.AuthorizationType == nil:
		v.Add(nil, "authorizationType", awsapi.MustNotBeNull)
	case !validAuthType(*in.AuthorizationType):
		v.Add(*in.AuthorizationType, "authorizationType", awsapi.InEnum(AuthBasic, AuthOAuth, AuthAPIKey))
	}
	if in.AuthParameters == nil {
		v.Add(nil, "authParameters", awsapi.MustNotBeNull)
	}
	validateAuth(&v, in.AuthParameters, true)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.checkAuthEndpoint(in.AuthParameters); err != nil {
		return nil, err
	}
	c := Connection{Name: *in.Name, Description: in.Description, AuthorizationType: *in.AuthorizationType, KmsKeyIdentifier: in.KmsKeyIdentifier}
	if err := s.setAuth(&c, in.AuthParameters, true); err != nil {
		return nil, err
	}
	if _, ok := s.reg.getObj(connKey(c.Name), &Connection{}); ok {
		// UNVERIFIED wording, in the style of the bus message.
		return nil, awsapi.Errorf(awsapi.CodeAlreadyExists, "Connection %s already exists.", c.Name)
	}
	if len(s.reg.listObjs(connPrefix)) >= s.quotas.Connections {
		return nil, limitExceeded()
	}
	now := s.now().UTC()
	c.Arn = s.arns.connection(c.Name, newID())
	c.Created, c.Modified = now, now
	c.State = StateAuthorized
	if c.AuthorizationType == AuthOAuth {
		// OAuth connections are authorized by their first token.
		c.State = StateAuthorizing
	} else {
		c.LastAuthorized = now
	}
	if err := s.save(ctx, connKey(c.Name), 0, c); err != nil {
		if e, ok := err.(*awsapi.Error); ok && e.Code == awsapi.CodeConcurrentMod {
			return nil, awsapi.Errorf(awsapi.CodeAlreadyExists, "Connection %s already exists.", c.Name)
		}
		return nil, err
	}
	return s.connView(&c, false), nil
}

// setAuth sets the connection's auth parameters from a request: all of
// them on create, the given ones on update. The parameters must match the
// authorization type.
func (s *Service) setAuth(c *Connection, a *authIn, create bool) error {
	if a == nil {
		return nil
	}
	mismatch := func(group string) error {
		// UNVERIFIED wording.
		return awsapi.Errorf(awsapi.CodeValidation, "%s must be provided for authorization type %s, and no other auth parameters.", group, c.AuthorizationType)
	}
	switch c.AuthorizationType {
	case AuthBasic:
		if (create && a.BasicAuthParameters == nil) || a.ApiKeyAuthParameters != nil || a.OAuthParameters != nil {
			return mismatch("BasicAuthParameters")
		}
	case AuthAPIKey:
		if (create && a.ApiKeyAuthParameters == nil) || a.BasicAuthParameters != nil || a.OAuthParameters != nil {
			return mismatch("ApiKeyAuthParameters")
		}
	case AuthOAuth:
		if (create && a.OAuthParameters == nil) || a.BasicAuthParameters != nil || a.ApiKeyAuthParameters != nil {
			return mismatch("OAuthParameters")
		}
	}
	if b := a.BasicAuthParameters; b != nil {
		if c.Basic == nil {
			c.Basic = &BasicAuth{}
		}
		if b.Username != nil {
			c.Basic.Username = *b.Username
		}
		if b.Password != nil {
			c.Basic.SealedPassword = s.box.Seal(*b.Password)
		}
	}
	if k := a.ApiKeyAuthParameters; k != nil {
		if c.APIKey == nil {
			c.APIKey = &APIKey{}
		}
		if k.ApiKeyName != nil {
			c.APIKey.Name = *k.ApiKeyName
		}
		if k.ApiKeyValue != nil {
			c.APIKey.SealedValue = s.box.Seal(*k.ApiKeyValue)
		}
	}
	if o := a.OAuthParameters; o != nil {
		if c.OAuth == nil {
			c.OAuth = &OAuth{}
		}
		if cp := o.ClientParameters; cp != nil {
			if cp.ClientID != nil {
				c.OAuth.ClientID = *cp.ClientID
			}
			if cp.ClientSecret != nil {
				c.OAuth.SealedClientSecret = s.box.Seal(*cp.ClientSecret)
			}
		}
		if o.AuthorizationEndpoint != nil {
			c.OAuth.AuthorizationEndpoint = *o.AuthorizationEndpoint
		}
		if o.HttpMethod != nil {
			c.OAuth.HttpMethod = *o.HttpMethod
		}
		if o.OAuthHttpParameters != nil {
			c.OAuth.Params = s.sealParams(o.OAuthHttpParameters)
		}
	}
	if a.InvocationHttpParameters != nil {
		c.Invocation = s.sealParams(a.InvocationHttpParameters)
	}
	return nil
}

// connByName validates a Name member and returns the connection.
func (s *Service) connByName(in *connIn) (Connection, uint64, error) {
	var v awsapi.Violations
	validateConnName(&v, in.Name)
	if err := v.Err(); err != nil {
		return Connection{}, 0, err
	}
	var c Connection
	rev, ok := s.reg.getObj(connKey(*in.Name), &c)
	if !ok {
		return Connection{}, 0, notFoundConn(*in.Name)
	}
	return c, rev, nil
}

func (s *Service) describeConnection(ctx context.Context, body []byte) (any, error) {
	var in connIn
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	c, _, err := s.connByName(&in)
	if err != nil {
		return nil, err
	}
	return s.connView(&c, true), nil
}

func (s *Service) updateConnection(ctx context.Context, body []byte) (any, error) {
	var in connIn
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateConnName(&v, in.Name)
	if in.Description != nil && len(*in.Description) > 512 {
		v.Add(*in.Description, "description", awsapi.MaxLen(512))
	}
	if in.AuthorizationType != nil && !validAuthType(*in.AuthorizationType) {
		v.Add(*in.AuthorizationType, "authorizationType", awsapi.InEnum(AuthBasic, AuthOAuth, AuthAPIKey))
	}
	validateAuth(&v, in.AuthParameters, false)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.checkAuthEndpoint(in.AuthParameters); err != nil {
		return nil, err
	}
	c, rev, err := s.connByName(&in)
	if err != nil {
		return nil, err
	}
	if in.Description != nil {
		c.Description = in.Description
	}
	if in.KmsKeyIdentifier != nil {
		c.KmsKeyIdentifier = in.KmsKeyIdentifier
	}
	changedType := in.AuthorizationType != nil && *in.AuthorizationType != c.AuthorizationType
	if changedType {
		c.AuthorizationType = *in.AuthorizationType
		c.Basic, c.APIKey, c.OAuth = nil, nil, nil
	}
	if err := s.setAuth(&c, in.AuthParameters, changedType); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	c.Modified = now
	if in.AuthParameters != nil || changedType {
		// New credentials authorize the connection again.
		c.StateReason = ""
		if c.AuthorizationType == AuthOAuth {
			c.State = StateAuthorizing
		} else {
			c.State, c.LastAuthorized = StateAuthorized, now
		}
	}
	if err := s.save(ctx, connKey(c.Name), rev, c); err != nil {
		return nil, err
	}
	return s.connView(&c, false), nil
}

// deauthorizeConnection removes the connection's credentials, as AWS
// does, and leaves it DEAUTHORIZED until it is updated with new ones.
func (s *Service) deauthorizeConnection(ctx context.Context, body []byte) (any, error) {
	var in connIn
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	c, rev, err := s.connByName(&in)
	if err != nil {
		return nil, err
	}
	if c.Basic != nil {
		c.Basic.SealedPassword = ""
	}
	if c.APIKey != nil {
		c.APIKey.SealedValue = ""
	}
	if c.OAuth != nil {
		c.OAuth.SealedClientSecret = ""
	}
	c.State, c.StateReason, c.Modified = StateDeauthorized, "Deauthorized by DeauthorizeConnection.", s.now().UTC()
	if err := s.save(ctx, connKey(c.Name), rev, c); err != nil {
		return nil, err
	}
	return s.connView(&c, false), nil
}

func (s *Service) deleteConnection(ctx context.Context, body []byte) (any, error) {
	var in connIn
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	c, rev, err := s.connByName(&in)
	if err != nil {
		return nil, err
	}
	if err := s.remove(ctx, connKey(c.Name), rev); err != nil {
		return nil, err
	}
	c.State = StateDeleting
	return s.connView(&c, false), nil
}

func (s *Service) listConnections(ctx context.Context, body []byte) (any, error) {
	var in connIn
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	awsapi.ValidateNamePrefix(&v, in.NamePrefix, 64, namePattern)
	awsapi.ValidateList(&v, in.NextToken, in.Limit)
	states := []string{"CREATING", "UPDATING", "DELETING", StateAuthorized, StateDeauthorized, StateAuthorizing, "DEAUTHORIZING", "ACTIVE", "FAILED_CONNECTIVITY"}
	if in.ConnectionState != nil && !slices.Contains(states, *in.ConnectionState) {
		v.Add(*in.ConnectionState, "connectionState", awsapi.InEnum(states...))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	conns := map[string]Connection{}
	var names []string
	for _, k := range s.reg.listObjs(connPrefix) {
		var c Connection
		if _, ok := s.reg.getObj(k, &c); !ok {
			continue
		}
		if (in.NamePrefix == nil || strings.HasPrefix(c.Name, *in.NamePrefix)) && (in.ConnectionState == nil || c.State == *in.ConnectionState) {
			names = append(names, c.Name)
			conns[c.Name] = c
		}
	}
	slices.Sort(names)
	page, next, err := awsapi.Paginate(names, in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		Connections []connOut `json:"Connections"`
		NextToken   *string   `json:"NextToken,omitempty"`
	}{Connections: []connOut{}, NextToken: next}
	for _, n := range page {
		c := conns[n]
		o := s.connView(&c, true)
		o.AuthParameters, o.SecretArn, o.Description, o.KmsKeyIdentifier = nil, "", nil, nil
		out.Connections = append(out.Connections, o)
	}
	return out, nil
}
