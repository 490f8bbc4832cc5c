// Package iam is bridgeport's IAM: roles with their trust policies, inline
// and managed permission policies, over the IAM Query protocol (enough for
// the AWS CLI and Terraform), and the checks EventBridge makes before it
// invokes a target with a role. Records live in the configuration bucket
// under iam.; every node keeps them parsed in memory from a watch, so a
// permission change applies to the next delivery attempt on every node.
package iam

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/policy"
	"bridgeport/internal/secretbox"
	"bridgeport/internal/store"
)

// Config builds a Service.
type Config struct {
	Store     *store.Store
	AccountID string
	// Secrets seals access keys' secrets at rest.
	Secrets *secretbox.Box
	Logger  *slog.Logger
}

// Service answers the IAM API and evaluates roles for EventBridge.
type Service struct {
	st      *store.Store
	account string
	box     *secretbox.Box
	log     *slog.Logger

	applied store.Applied // newest revision applied, advanced after the change is in

	mu       sync.RWMutex
	roles    map[string]*roleState    // by key
	policies map[string]*policyState  // by key
	users    map[string]*userState    // by key
	groups   map[string]*groupState   // by key
	keys     map[string]*keyState     // by access key id
	sessions map[string]*sessionState // by key
	// checks: answers of CheckEventBridge, cleared by every change.
	checks checkCache

	roleKind, userKind, groupKind kind

	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Service; Start loads the records.
func New(cfg Config) *Service {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{st: cfg.Store, account: cfg.AccountID, box: cfg.Secrets, log: log,
		roles: map[string]*roleState{}, policies: map[string]*policyState{}, users: map[string]*userState{},
		groups: map[string]*groupState{}, keys: map[string]*keyState{}, sessions: map[string]*sessionState{}}
	s.roleKind = newKind[Role](s, "role", "RoleName", "PoliciesPerRole", 64, s.role, roleKey)
	s.userKind = newKind[User](s, "user", "UserName", "PoliciesPerUser", 64, s.user, userKey)
	s.groupKind = newKind[Group](s, "group", "GroupName", "PoliciesPerGroup", 128, s.group, groupKey)
	return s
}

// Role is a role's record.
type Role struct {
	Name               string            `json:"name"`
	ID                 string            `json:"id"`
	Path               string            `json:"path"`
	Created            time.Time         `json:"created"`
	AssumeRolePolicy   string            `json:"trust"`
	Description        *string           `json:"description,omitempty"`
	MaxSessionDuration int               `json:"maxSession"`
	Tags               []Tag             `json:"tags,omitempty"`
	Inline             map[string]string `json:"inline,omitempty"` // policy name -> document
	Attached           []string          `json:"attached,omitempty"`
}

// Policy is a managed policy's record.
type Policy struct {
	Name           string          `json:"name"`
	ID             string          `json:"id"`
	Path           string          `json:"path"`
	Description    *string         `json:"description,omitempty"`
	Created        time.Time       `json:"created"`
	Updated        time.Time       `json:"updated"`
	DefaultVersion string          `json:"default"`
	NextVersion    int             `json:"next"`
	Versions       []PolicyVersion `json:"versions"`
	Tags           []Tag           `json:"tags,omitempty"`
}

// PolicyVersion is one version of a managed policy.
type PolicyVersion struct {
	ID       string    `json:"id"`
	Document string    `json:"document"`
	Created  time.Time `json:"created"`
}

// Tag is a tag of a role or a policy.
type Tag struct {
	Key   string `json:"Key" xml:"Key"`
	Value string `json:"Value" xml:"Value"`
}

func (s *Service) roleArn(r *Role) string {
	return "arn:aws:iam::" + s.account + ":role" + r.Path + r.Name
}

func (s *Service) policyArn(p *Policy) string {
	return "arn:aws:iam::" + s.account + ":policy" + p.Path + p.Name
}

func roleKey(name string) string   { return "iam.role." + store.Token(strings.ToLower(name)) }
func policyKey(name string) string { return "iam.policy." + store.Token(strings.ToLower(name)) }

// roleState and policyState are the parsed forms kept for evaluation.
type roleState struct {
	role   Role
	rev    uint64
	trust  *policy.Policy
	inline []*policy.Policy
}

type userState struct {
	user   User
	rev    uint64
	inline []*policy.Policy
}

type groupState struct {
	group  Group
	rev    uint64
	inline []*policy.Policy
}

type keyState struct {
	key     AccessKey
	rev     uint64
	secret  string                 // opened; empty when it does not open with this server's key
	use     atomic.Pointer[KeyUse] // the last use this node saw
	written atomic.Int64           // when this node last wrote the key's last use (Unix ns)
	stored  KeyUse                 // the last use in the store
	useRev  uint64                 // the revision of that record
}

// parseInline parses an entity's inline policies; one that no longer
// parses denies everything (fail closed: it might have denied something).
func (s *Service) parseInline(kind, name string, inline map[string]string) []*policy.Policy {
	var out []*policy.Policy
	for pname, doc := range inline {
		p, err := policy.ParseKind(doc, policy.IdentityPolicy)
		if err != nil {
			s.log.Error("stored inline policy does not parse; it denies everything", kind, name, "policy", pname, "error", err)
			p = denyAll
		}
		out = append(out, p)
	}
	return out
}

type policyState struct {
	policy Policy
	rev    uint64
	doc    *policy.Policy // the default version
}

// Start loads the records and keeps them current until Stop.
func (s *Service) Start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	ready := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Expired sessions leave the store.
		tick := time.NewTicker(10 * time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
				s.sweepSessions(wctx)
			}
		}
	}()
	go func() {
		defer close(s.done)
		defer wg.Wait()
		for wctx.Err() == nil {
			// Only IAM's records: a write waits for its own revision,
			// which this watch delivers.
			err := s.st.WatchPrefix(wctx, "iam.", s.apply, func() {
				select {
				case <-ready:
				default:
					close(ready)
				}
			})
			if err != nil && wctx.Err() == nil {
				s.log.Warn("iam watch stopped; restarting", "error", err)
				time.Sleep(time.Second)
			}
		}
	}()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		s.Stop()
		return ctx.Err()
	}
}

// Stop ends the watch.
func (s *Service) Stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

// apply records one change of the configuration bucket.
func (s *Service) apply(e store.Entry) {
	s.mu.Lock()
	defer s.applied.Advance(e.Revision) // runs after the unlock
	defer s.mu.Unlock()
	s.checks.clear()
	switch {
	case strings.HasPrefix(e.Key, "iam.role."):
		if e.Deleted {
			delete(s.roles, e.Key)
			return
		}
		var r Role
		if err := json.Unmarshal(e.Value, &r); err != nil {
			s.log.Error("unreadable role record", "key", e.Key, "error", err)
			return
		}
		st := &roleState{role: r, rev: e.Revision, inline: s.parseInline("role", r.Name, r.Inline)}
		// Stored documents were validated when written.
		st.trust, _ = policy.ParseKind(r.AssumeRolePolicy, policy.TrustPolicy)
		s.roles[e.Key] = st
	case strings.HasPrefix(e.Key, "iam.user."):
		if e.Deleted {
			delete(s.users, e.Key)
			return
		}
		var u User
		if err := json.Unmarshal(e.Value, &u); err != nil {
			s.log.Error("unreadable user record", "key", e.Key, "error", err)
			return
		}
		s.users[e.Key] = &userState{user: u, rev: e.Revision, inline: s.parseInline("user", u.Name, u.Inline)}
	case strings.HasPrefix(e.Key, "iam.group."):
		if e.Deleted {
			delete(s.groups, e.Key)
			return
		}
		var g Group
		if err := json.Unmarshal(e.Value, &g); err != nil {
			s.log.Error("unreadable group record", "key", e.Key, "error", err)
			return
		}
		s.groups[e.Key] = &groupState{group: g, rev: e.Revision, inline: s.parseInline("group", g.Name, g.Inline)}
	case strings.HasPrefix(e.Key, "iam.session."):
		s.applySession(e.Key, e.Value, e.Revision, e.Deleted)
	case strings.HasPrefix(e.Key, "iam.keyuse."):
		st := s.keys[strings.TrimPrefix(e.Key, "iam.keyuse.")]
		if st == nil || e.Deleted {
			return
		}
		var u KeyUse
		if json.Unmarshal(e.Value, &u) == nil {
			st.stored, st.useRev = u, e.Revision
		}
	case strings.HasPrefix(e.Key, "iam.key."):
		id := strings.TrimPrefix(e.Key, "iam.key.")
		if e.Deleted {
			delete(s.keys, id)
			return
		}
		var k AccessKey
		if err := json.Unmarshal(e.Value, &k); err != nil {
			s.log.Error("unreadable access key record", "key", e.Key, "error", err)
			return
		}
		st := &keyState{key: k, rev: e.Revision}
		if old := s.keys[id]; old != nil {
			st.use.Store(old.use.Load())
			st.written.Store(old.written.Load())
			st.stored, st.useRev = old.stored, old.useRev
		}
		if s.box != nil {
			secret, err := s.box.Open(k.SealedSecret)
			if err != nil {
				// The key cannot sign: it is refused like an unknown one.
				s.log.Error("access key secret does not open with this server's key", "access_key_id", k.ID)
			}
			st.secret = secret
		}
		s.keys[id] = st
	case strings.HasPrefix(e.Key, "iam.policy."):
		if e.Deleted {
			delete(s.policies, e.Key)
			return
		}
		var p Policy
		if err := json.Unmarshal(e.Value, &p); err != nil {
			s.log.Error("unreadable policy record", "key", e.Key, "error", err)
			return
		}
		st := &policyState{policy: p, rev: e.Revision}
		for _, v := range p.Versions {
			if v.ID == p.DefaultVersion {
				doc, err := policy.ParseKind(v.Document, policy.IdentityPolicy)
				if err != nil {
					s.log.Error("stored managed policy does not parse; it denies everything", "policy", p.Name, "error", err)
					doc = denyAll
				}
				st.doc = doc
			}
		}
		s.policies[e.Key] = st
	}
}

// denyAll stands for a stored document that no longer parses.
var denyAll = &policy.Policy{Version: "2012-10-17", Statements: []policy.Statement{{Effect: "Deny", Action: []string{"*"}, Resource: []string{"*"}}}}

// seen waits, for a while, until this node has applied a revision it wrote.
func (s *Service) seen(ctx context.Context, rev uint64) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.applied.WaitFor(wctx, rev); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "iam change stored but not seen by this node yet", "revision", rev)
	}
}

func (s *Service) getRole(name string) (Role, uint64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.roles[roleKey(name)]
	if st == nil {
		return Role{}, 0, false
	}
	return st.role, st.rev, true
}

func (s *Service) getPolicy(name string) (Policy, uint64, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.policies[policyKey(name)]
	if st == nil {
		return Policy{}, 0, false
	}
	return st.policy, st.rev, true
}

// save writes a record if it is still at rev (0: new) and waits until the
// watch has applied it.
func (s *Service) save(ctx context.Context, key string, rev uint64, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = s.st.Create(ctx, key, data)
	} else {
		nrev, err = s.st.Update(ctx, key, data, rev)
	}
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists) {
		return &awsapi.Error{Code: "ConcurrentModification", Status: 409,
			Message: "Rate exceeded: the entity was changed by another request at the same time; retry."}
	}
	if err != nil {
		return err
	}
	s.seen(ctx, nrev)
	return nil
}

func (s *Service) remove(ctx context.Context, key string, rev uint64) error {
	nrev, err := s.st.Delete(ctx, key, rev)
	if errors.Is(err, store.ErrConflict) {
		return &awsapi.Error{Code: "ConcurrentModification", Status: 409,
			Message: "Rate exceeded: the entity was changed by another request at the same time; retry."}
	}
	if err != nil {
		return err
	}
	s.seen(ctx, nrev)
	return nil
}

// newID returns an IAM unique id: a four-letter prefix and 17 characters.
func newID(prefix string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var b [17]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return prefix + string(b[:])
}

// Errors, as IAM sends them.
func errNoSuchEntity(format string, args ...any) *awsapi.Error {
	return &awsapi.Error{Code: "NoSuchEntity", Status: 404, Message: fmt.Sprintf(format, args...)}
}

func errExists(format string, args ...any) *awsapi.Error {
	return &awsapi.Error{Code: "EntityAlreadyExists", Status: 409, Message: fmt.Sprintf(format, args...)}
}

func errConflict(msg string) *awsapi.Error {
	return &awsapi.Error{Code: "DeleteConflict", Status: 409, Message: msg}
}

func errInvalidInput(format string, args ...any) *awsapi.Error {
	return &awsapi.Error{Code: "InvalidInput", Message: fmt.Sprintf(format, args...)}
}

func errLimit(format string, args ...any) *awsapi.Error {
	return &awsapi.Error{Code: "LimitExceeded", Status: 409, Message: fmt.Sprintf(format, args...)}
}

// malformed checks a policy document of a kind and returns IAM's
// MalformedPolicyDocument error for it.
func malformed(doc string, kind policy.Kind) (*policy.Policy, error) {
	p, err := policy.ParseKind(doc, kind)
	var perr *policy.Error
	if errors.As(err, &perr) {
		return nil, &awsapi.Error{Code: "MalformedPolicyDocument", Message: perr.Reason}
	}
	return p, err
}
