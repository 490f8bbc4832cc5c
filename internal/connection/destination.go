package connection

import (
	"context"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/deliver"
	"bridgeport/internal/store"
)

// Destination states.
const (
	DestActive   = "ACTIVE"
	DestInactive = "INACTIVE"
)

// defaultRateLimit is InvocationRateLimitPerSecond when a request omits it.
const defaultRateLimit = 300

// Destination is an API destination as stored. Its state is not stored: it
// follows its connection (ACTIVE while the connection is AUTHORIZED).
type Destination struct {
	Name          string    `json:"name"`
	Arn           string    `json:"arn"`
	Description   *string   `json:"description,omitempty"`
	ConnectionArn string    `json:"connectionArn"`
	Endpoint      string    `json:"endpoint"`
	HttpMethod    string    `json:"httpMethod"`
	RateLimit     int       `json:"rateLimit"`
	Created       time.Time `json:"created"`
	Modified      time.Time `json:"modified"`
}

func destKey(name string) string { return destPrefix + store.Token(name) }

func (a arns) destination(name, id string) string {
	return a.prefix() + "api-destination/" + name + "/" + id
}

const connArnPattern = `^arn:aws([a-z]|\-)*:events:([a-z]|\d|\-)*:([0-9]{12})?:connection\/[\.\-_A-Za-z0-9]+\/[\-A-Za-z0-9]+$`

var (
	connArnRE   = regexp.MustCompile(connArnPattern)
	httpMethods = []string{"POST", "GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"}
)

type destIn struct {
	Name                         *string `json:"Name"`
	Description                  *string `json:"Description"`
	ConnectionArn                *string `json:"ConnectionArn"`
	InvocationEndpoint           *string `json:"InvocationEndpoint"`
	HttpMethod                   *string `json:"HttpMethod"`
	InvocationRateLimitPerSecond *int    `json:"InvocationRateLimitPerSecond"`
	NamePrefix                   *string `json:"NamePrefix"`
	NextToken                    *string `json:"NextToken"`
	Limit                        *int    `json:"Limit"`
}

type destOut struct {
	ApiDestinationArn            string       `json:"ApiDestinationArn"`
	Name                         string       `json:"Name,omitempty"`
	Description                  *string      `json:"Description,omitempty"`
	ApiDestinationState          string       `json:"ApiDestinationState"`
	ConnectionArn                string       `json:"ConnectionArn,omitempty"`
	InvocationEndpoint           string       `json:"InvocationEndpoint,omitempty"`
	HttpMethod                   string       `json:"HttpMethod,omitempty"`
	InvocationRateLimitPerSecond int          `json:"InvocationRateLimitPerSecond,omitempty"`
	CreationTime                 *awsapi.Time `json:"CreationTime,omitempty"`
	LastModifiedTime             *awsapi.Time `json:"LastModifiedTime,omitempty"`
}

// destState is ACTIVE while the destination's connection exists and is
// AUTHORIZED.
func (s *Service) destState(d *Destination) string {
	if c, ok := s.connByArn(d.ConnectionArn); ok && c.State == StateAuthorized {
		return DestActive
	}
	return DestInactive
}

// connByArn finds a connection by its ARN.
func (s *Service) connByArn(arn string) (Connection, bool) {
	rest, ok := strings.CutPrefix(arn, s.arns.prefix()+"connection/")
	if !ok {
		return Connection{}, false
	}
	name, _, _ := strings.Cut(rest, "/")
	var c Connection
	if _, ok := s.reg.getObj(connKey(name), &c); !ok || c.Arn != arn {
		return Connection{}, false
	}
	return c, true
}

func (s *Service) destView(d *Destination, full bool) destOut {
	out := destOut{ApiDestinationArn: d.Arn, ApiDestinationState: s.destState(d),
		CreationTime: &awsapi.Time{Time: d.Created}, LastModifiedTime: &awsapi.Time{Time: d.Modified}}
	if full {
		out.Name, out.Description, out.ConnectionArn = d.Name, d.Description, d.ConnectionArn
		out.InvocationEndpoint, out.HttpMethod, out.InvocationRateLimitPerSecond = d.Endpoint, d.HttpMethod, d.RateLimit
	}
	return out
}

func notFoundDest(name string) *awsapi.Error {
	return awsapi.Errorf(awsapi.CodeNotFound, "Failed to describe the api-destination(s). An api-destination '%s' does not exist.", name)
}

// validateDest checks a create (all required members) or update request.
func (s *Service) validateDest(in *destIn, create bool) error {
	var v awsapi.Violations
	validateConnName(&v, in.Name)
	if in.Description != nil && len(*in.Description) > 512 {
		v.Add(*in.Description, "description", awsapi.MaxLen(512))
	}
	switch a := in.ConnectionArn; {
	case a == nil && create:
		v.Add(nil, "connectionArn", awsapi.MustNotBeNull)
	case a != nil && (len(*a) < 1 || len(*a) > 1600):
		v.Add(*a, "connectionArn", awsapi.LenConstraint(len(*a), 1, 1600))
	case a != nil && !connArnRE.MatchString(*a):
		v.Add(*a, "connectionArn", awsapi.MatchPattern(connArnPattern))
	}
	switch e := in.InvocationEndpoint; {
	case e == nil && create:
		v.Add(nil, "invocationEndpoint", awsapi.MustNotBeNull)
	case e != nil && (len(*e) < 1 || len(*e) > 2048):
		v.Add(*e, "invocationEndpoint", awsapi.LenConstraint(len(*e), 1, 2048))
	case e != nil && !endpointRE.MatchString(*e):
		v.Add(*e, "invocationEndpoint", awsapi.MatchPattern(endpointPattern))
	}
	switch m := in.HttpMethod; {
	case m == nil && create:
		v.Add(nil, "httpMethod", awsapi.MustNotBeNull)
	case m != nil && !slices.Contains(httpMethods, *m):
		v.Add(*m, "httpMethod", awsapi.InEnum(httpMethods...))
	}
	if r := in.InvocationRateLimitPerSecond; r != nil && *r < 1 {
		v.Add(*r, "invocationRateLimitPerSecond", awsapi.MinValue(1))
	}
	if err := v.Err(); err != nil {
		return err
	}
	if e := in.InvocationEndpoint; e != nil {
		if err := s.checkEndpoint("InvocationEndpoint", *e); err != nil {
			return err
		}
	}
	if a := in.ConnectionArn; a != nil {
		if _, ok := s.connByArn(*a); !ok {
			name := *a
			if i := strings.Index(name, "connection/"); i >= 0 {
				name, _, _ = strings.Cut(name[i+len("connection/"):], "/")
			}
			return notFoundConn(name)
		}
	}
	return nil
}

// checkEndpoint refuses an endpoint requests with credentials go to (an
// API destination's, an OAuth connection's token endpoint) unless it is an
// absolute https:// URL, or http:// on a server started with
// --allow-http-endpoints. member names the parameter in the message. The
// wording is UNVERIFIED (AWS accepts only HTTPS endpoints); the flags'
// hints are bridgeport's.
func (s *Service) checkEndpoint(member, endpoint string) error {
	u, err := url.Parse(endpoint)
	switch {
	case err != nil || u.Host == "":
		return awsapi.Errorf(awsapi.CodeValidation, "Invalid %s %s: it must be an absolute URL.", member, endpoint)
	case u.Scheme == "https", u.Scheme == "http" && s.allowHTTP:
		return nil
	case u.Scheme != "http":
		return awsapi.Errorf(awsapi.CodeValidation, "Invalid %s %s: only HTTPS endpoints are allowed.", member, endpoint)
	}
	hint := " This server refuses http:// endpoints: start bridgeport with --allow-http-endpoints to allow them"
	if !s.allowPrivate && deliver.PrivateHost(u.Hostname()) {
		hint += ", and with --allow-private-endpoints to reach " + u.Hostname()
	}
	return awsapi.Errorf(awsapi.CodeValidation, "Invalid %s %s: only HTTPS endpoints are allowed.%s.", member, endpoint, hint)
}

func (s *Service) createApiDestination(ctx context.Context, body []byte) (any, error) {
	var in destIn
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := s.validateDest(&in, true); err != nil {
		return nil, err
	}
	if _, ok := s.reg.getObj(destKey(*in.Name), &Destination{}); ok {
		// UNVERIFIED wording.
		return nil, awsapi.Errorf(awsapi.CodeAlreadyExists, "An api-destination %s already exists.", *in.Name)
	}
	if len(s.reg.listObjs(destPrefix)) >= s.quotas.ApiDestinations {
		return nil, limitExceeded()
	}
	now := s.now().UTC()
	d := Destination{Name: *in.Name, Arn: s.arns.destination(*in.Name, newID()), Description: in.Description,
		ConnectionArn: *in.ConnectionArn, Endpoint: *in.InvocationEndpoint, HttpMethod: *in.HttpMethod,
		RateLimit: defaultRateLimit, Created: now, Modified: now}
	if in.InvocationRateLimitPerSecond != nil {
		d.RateLimit = *in.InvocationRateLimitPerSecond
	}
	if err := s.save(ctx, destKey(d.Name), 0, d); err != nil {
		if e, ok := err.(*awsapi.Error); ok && e.Code == awsapi.CodeConcurrentMod {
			return nil, awsapi.Errorf(awsapi.CodeAlreadyExists, "An api-destination %s already exists.", d.Name)
		}
		return nil, err
	}
	return s.destView(&d, false), nil
}

func (s *Service) destByName(in *destIn) (Destination, uint64, error) {
	var v awsapi.Violations
	validateConnName(&v, in.Name)
	if err := v.Err(); err != nil {
		return Destination{}, 0, err
	}
	var d Destination
	rev, ok := s.reg.getObj(destKey(*in.Name), &d)
	if !ok {
		return Destination{}, 0, notFoundDest(*in.Name)
	}
	return d, rev, nil
}

func (s *Service) describeApiDestination(ctx context.Context, body []byte) (any, error) {
	var in destIn
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	d, _, err := s.destByName(&in)
	if err != nil {
		return nil, err
	}
	return s.destView(&d, true), nil
}

func (s *Service) updateApiDestination(ctx context.Context, body []byte) (any, error) {
	var in destIn
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	if err := s.validateDest(&in, false); err != nil {
		return nil, err
	}
	d, rev, err := s.destByName(&in)
	if err != nil {
		return nil, err
	}
	if in.Description != nil {
		d.Description = in.Description
	}
	if in.ConnectionArn != nil {
		d.ConnectionArn = *in.ConnectionArn
	}
	if in.InvocationEndpoint != nil {
		d.Endpoint = *in.InvocationEndpoint
	}
	if in.HttpMethod != nil {
		d.HttpMethod = *in.HttpMethod
	}
	if in.InvocationRateLimitPerSecond != nil {
		d.RateLimit = *in.InvocationRateLimitPerSecond
	}
	d.Modified = s.now().UTC()
	if err := s.save(ctx, destKey(d.Name), rev, d); err != nil {
		return nil, err
	}
	return s.destView(&d, false), nil
}

func (s *Service) deleteApiDestination(ctx context.Context, body []byte) (any, error) {
	var in destIn
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	d, rev, err := s.destByName(&in)
	if err != nil {
		return nil, err
	}
	if err := s.remove(ctx, destKey(d.Name), rev); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) listApiDestinations(ctx context.Context, body []byte) (any, error) {
	var in destIn
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	awsapi.ValidateNamePrefix(&v, in.NamePrefix, 64, namePattern)
	awsapi.ValidateList(&v, in.NextToken, in.Limit)
	if a := in.ConnectionArn; a != nil && !connArnRE.MatchString(*a) {
		v.Add(*a, "connectionArn", awsapi.MatchPattern(connArnPattern))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	dests := map[string]Destination{}
	var names []string
	for _, k := range s.reg.listObjs(destPrefix) {
		var d Destination
		if _, ok := s.reg.getObj(k, &d); !ok {
			continue
		}
		if (in.NamePrefix == nil || strings.HasPrefix(d.Name, *in.NamePrefix)) && (in.ConnectionArn == nil || d.ConnectionArn == *in.ConnectionArn) {
			names = append(names, d.Name)
			dests[d.Name] = d
		}
	}
	slices.Sort(names)
	page, next, err := awsapi.Paginate(names, in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		ApiDestinations []destOut `json:"ApiDestinations"`
		NextToken       *string   `json:"NextToken,omitempty"`
	}{ApiDestinations: []destOut{}, NextToken: next}
	for _, n := range page {
		d := dests[n]
		o := s.destView(&d, true)
		o.Description = nil
		out.ApiDestinations = append(out.ApiDestinations, o)
	}
	return out, nil
}
