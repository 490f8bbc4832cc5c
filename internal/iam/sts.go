package iam

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/policy"
)

// STS: AssumeRole, GetSessionToken and GetCallerIdentity over the Query
// protocol (version 2011-06-15), on the same listener. A session is a
// record (iam.session.<ASIA id>) with its secret sealed and only the
// SHA-256 of its session token, so that every node knows it, a kill -9
// keeps it, and the store never holds a token a thief could use. Expired
// sessions are refused (ExpiredToken) and swept from the store.

// Session is a set of temporary credentials.
type Session struct {
	ID           string    `json:"id"`
	SealedSecret string    `json:"secret"`
	TokenSHA256  string    `json:"token"`
	Principal    string    `json:"principal"`      // the assumed role's session ARN, or the user's ARN; "" for root
	Role         string    `json:"role,omitempty"` // the assumed role's name
	Expires      time.Time `json:"expires"`
}

func sessionKey(id string) string { return "iam.session." + id }

// STSOperations returns the STS operations by name.
func (s *Service) STSOperations() map[string]awsapi.QueryOperation {
	return map[string]awsapi.QueryOperation{
		"AssumeRole":        s.assumeRole,
		"GetSessionToken":   s.getSessionToken,
		"GetCallerIdentity": s.getCallerIdentity,
	}
}

var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]*$`)

func accessDenied(format string, args ...any) *awsapi.Error {
	return &awsapi.Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: fmt.Sprintf(format, args...)}
}

type credentialsXML struct {
	AccessKeyId     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

// newSession stores a session for principal and returns its credentials.
func (s *Service) newSession(ctx context.Context, principal, role string, d time.Duration) (credentialsXML, error) {
	secret := randomFrom(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
	var raw [96]byte
	_, _ = rand.Read(raw[:])
	token := base64.StdEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(token))
	ses := Session{ID: "ASIA" + randomFrom(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), SealedSecret: s.box.Seal(secret),
		TokenSHA256: hex.EncodeToString(sum[:]), Principal: principal, Role: role, Expires: time.Now().UTC().Add(d).Truncate(time.Second)}
	if err := s.save(ctx, sessionKey(ses.ID), 0, &ses); err != nil {
		return credentialsXML{}, err
	}
	return credentialsXML{ses.ID, secret, token, isoTime(ses.Expires)}, nil
}

func (s *Service) assumeRole(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	roleArn, name := p.Str("RoleArn"), p.Str("RoleSessionName")
	c.str(roleArn, "roleArn", true, 20, 2048, nil, "")
	c.str(name, "roleSessionName", true, 2, 64, sessionNameRE, `[\w+=,.@-]*`)
	d, err := p.Int("DurationSeconds")
	if err != nil {
		return nil, err
	}
	if d != nil && *d < 900 {
		c.v.Add(*d, "durationSeconds", awsapi.MinValue(900))
	} else if d != nil && *d > 43200 {
		c.v.Add(*d, "durationSeconds", awsapi.MaxValue(43200))
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	id, _ := awsapi.IdentityFrom(ctx)
	if id.Principal == "" {
		return nil, accessDenied("Roles may not be assumed by root accounts.")
	}
	denied := accessDenied("User: %s is not authorized to perform: sts:AssumeRole on resource: %s", id.Principal, *roleArn)
	rest, ok := strings.CutPrefix(*roleArn, "arn:aws:iam::"+s.account+":role/")
	if !ok {
		if !strings.HasPrefix(*roleArn, "arn:") {
			return nil, &awsapi.Error{Code: "ValidationError", Message: *roleArn + " is invalid"}
		}
		return nil, denied
	}
	r, _, found := s.getRole(rest[strings.LastIndexByte(rest, '/')+1:])
	if !found || s.roleArn(&r) != *roleArn || !s.mayAssume(id.Principal, *roleArn) {
		return nil, denied
	}
	dur := 3600
	if d != nil {
		dur = *d
	}
	switch {
	case dur > r.MaxSessionDuration:
		return nil, &awsapi.Error{Code: "ValidationError", Message: "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."}
	case id.Session && dur > 3600:
		return nil, &awsapi.Error{Code: "ValidationError", Message: "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."}
	}
	principal := "arn:aws:sts::" + s.account + ":assumed-role/" + r.Name + "/" + *name
	creds, err := s.newSession(ctx, principal, r.Name, time.Duration(dur)*time.Second)
	if err != nil {
		return nil, err
	}
	return struct {
		Credentials     credentialsXML `xml:"Credentials"`
		AssumedRoleUser struct {
			AssumedRoleId string `xml:"AssumedRoleId"`
			Arn           string `xml:"Arn"`
		} `xml:"AssumedRoleUser"`
	}{Credentials: creds, AssumedRoleUser: struct {
		AssumedRoleId string `xml:"AssumedRoleId"`
		Arn           string `xml:"Arn"`
	}{r.ID + ":" + *name, principal}}, nil
}

// mayAssume decides AssumeRole: the role's trust policy must allow the
// caller, by its ARN (enough alone), or the account (then the caller's own
// policies must allow sts:AssumeRole on the role too); a deny in either
// refuses.
func (s *Service) mayAssume(caller, roleArn string) bool {
	s.mu.RLock()
	st := s.roles[roleKey(roleArn[strings.LastIndexByte(roleArn, '/')+1:])]
	s.mu.RUnlock()
	if st == nil || st.trust == nil {
		return false
	}
	req := func(who policy.Principal) policy.Request {
		return policy.Request{Principal: who, Action: "sts:AssumeRole", Resource: roleArn,
			Context: map[string]string{"aws:PrincipalArn": caller, "aws:PrincipalAccount": s.account}}
	}
	byArn := st.trust.Evaluate(req(policy.Principal{Arn: caller}))
	byAccount := st.trust.Evaluate(req(policy.Principal{Account: s.account}))
	if byArn == policy.Deny || byAccount == policy.Deny {
		return false
	}
	if byArn == policy.Allow {
		return s.Authorize(caller, "sts:AssumeRole", roleArn, nil, nil) != IdentityDeny
	}
	return byAccount == policy.Allow && s.Authorize(caller, "sts:AssumeRole", roleArn, nil, nil) == Allowed
}

func (s *Service) getSessionToken(ctx context.Context, p awsapi.Params) (any, error) {
	id, _ := awsapi.IdentityFrom(ctx)
	if id.Session {
		return nil, accessDenied("Cannot call GetSessionToken with session credentials")
	}
	lo, def, hi := 900, 43200, 129600
	if id.Principal == "" {
		def, hi = 3600, 3600 // the root user's sessions
	}
	d, err := p.Int("DurationSeconds")
	if err != nil {
		return nil, err
	}
	var c checker
	if d != nil && *d < lo {
		c.v.Add(*d, "durationSeconds", awsapi.MinValue(lo))
	} else if d != nil && *d > hi {
		c.v.Add(*d, "durationSeconds", awsapi.MaxValue(hi))
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	if d != nil {
		def = *d
	}
	creds, err := s.newSession(ctx, id.Principal, "", time.Duration(def)*time.Second)
	if err != nil {
		return nil, err
	}
	return struct {
		Credentials credentialsXML `xml:"Credentials"`
	}{creds}, nil
}

func (s *Service) getCallerIdentity(ctx context.Context, p awsapi.Params) (any, error) {
	id, _ := awsapi.IdentityFrom(ctx)
	out := struct {
		UserId  string `xml:"UserId"`
		Account string `xml:"Account"`
		Arn     string `xml:"Arn"`
	}{UserId: s.account, Account: s.account, Arn: "arn:aws:iam::" + s.account + ":root"}
	switch {
	case strings.Contains(id.Principal, ":assumed-role/"):
		rest := id.Principal[strings.Index(id.Principal, ":assumed-role/")+len(":assumed-role/"):]
		role, session, _ := strings.Cut(rest, "/")
		out.Arn, out.UserId = id.Principal, session
		if r, _, ok := s.getRole(role); ok {
			out.UserId = r.ID + ":" + session
		}
	case id.Principal != "":
		out.Arn = id.Principal
		if u, _, err := s.user(id.Principal[strings.LastIndexByte(id.Principal, '/')+1:]); err == nil {
			out.UserId = u.ID
		}
	}
	return out, nil
}

// lookupSession returns the credentials of a session; expired ones too
// (the verifier refuses them as expired).
func (s *Service) lookupSession(id string) (awsapi.Key, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.sessions[sessionKey(id)]
	if st == nil || st.secret == "" {
		return awsapi.Key{}, false
	}
	return awsapi.Key{Secret: st.secret, Principal: st.session.Principal, TokenSHA256: st.session.TokenSHA256, Expires: st.session.Expires}, true
}

// sessionState is a session as kept in memory, its secret opened.
type sessionState struct {
	session Session
	rev     uint64
	secret  string
}

func (s *Service) applySession(key string, value []byte, rev uint64, deleted bool) {
	if deleted {
		delete(s.sessions, key)
		return
	}
	var ses Session
	if err := json.Unmarshal(value, &ses); err != nil {
		s.log.Error("unreadable session record", "key", key, "error", err)
		return
	}
	st := &sessionState{session: ses, rev: rev}
	if s.box != nil {
		st.secret, _ = s.box.Open(ses.SealedSecret)
	}
	s.sessions[key] = st
}

// sessionKeep is how long an expired session stays in the store: long
// enough to be refused as expired rather than unknown for a while.
const sessionKeep = time.Hour

// sweepSessions deletes the sessions expired more than sessionKeep ago.
func (s *Service) sweepSessions(ctx context.Context) {
	s.mu.RLock()
	var old []*sessionState
	for _, st := range s.sessions {
		if time.Since(st.session.Expires) > sessionKeep {
			old = append(old, st)
		}
	}
	s.mu.RUnlock()
	for _, st := range old {
		_, _ = s.st.Delete(ctx, sessionKey(st.session.ID), st.rev)
	}
}
