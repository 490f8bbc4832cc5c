package iam

import (
	"fmt"
	"strings"
	"sync"

	"bridgeport/internal/policy"
)

// EventsPrincipal is the service principal EventBridge acts as.
const EventsPrincipal = "events.amazonaws.com"

// Denial is why EventBridge may not invoke a target with a role: Code is
// the EventBridge error code (FAILED_TO_ASSUME_ROLE or NO_PERMISSIONS).
type Denial struct {
	Code    string
	Message string
}

// CheckEventBridge answers whether EventBridge, invoking a target for the
// rule sourceArn, may assume roleArn and then perform action on resource.
// It reads the parsed roles and policies kept in memory, so it is cheap,
// and reflects every change this node has seen. Its answers are kept
// until the next change of any IAM record (every delivery asks, and most
// ask the same question), at most maxChecks of them.
func (s *Service) CheckEventBridge(roleArn, sourceArn, action, resource string) *Denial {
	k := checkKey{roleArn, sourceArn, action, resource}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if d, ok := s.checks.get(k); ok {
		return d
	}
	d := s.checkEventBridge(roleArn, sourceArn, action, resource)
	// Kept under the read lock, so that no change (apply, which clears
	// the answers under the write lock) comes between the answer and
	// keeping it.
	s.checks.put(k, d)
	return d
}

// maxChecks bounds the answers of CheckEventBridge kept.
const maxChecks = 10000

type checkKey struct{ role, source, action, resource string }

// checkCache holds answers of CheckEventBridge. Readers of the Service
// share its read lock, so the cache has a lock of its own.
type checkCache struct {
	mu sync.Mutex
	m  map[checkKey]*Denial
}

func (c *checkCache) get(k checkKey) (*Denial, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.m[k]
	return d, ok
}

func (c *checkCache) put(k checkKey, d *Denial) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxChecks {
		c.m = make(map[checkKey]*Denial)
	}
	c.m[k] = d
}

func (c *checkCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}

// checkEventBridge is CheckEventBridge's evaluation; s.mu is held.
func (s *Service) checkEventBridge(roleArn, sourceArn, action, resource string) *Denial {
	rest, ok := strings.CutPrefix(roleArn, "arn:aws:iam::"+s.account+":role/")
	if !ok {
		return &Denial{Code: "FAILED_TO_ASSUME_ROLE", Message: fmt.Sprintf("%s is not a role of account %s", roleArn, s.account)}
	}
	name := rest[strings.LastIndexByte(rest, '/')+1:]
	st := s.roles[roleKey(name)]
	if st == nil || s.roleArn(&st.role) != roleArn {
		return &Denial{Code: "FAILED_TO_ASSUME_ROLE", Message: fmt.Sprintf("role %s does not exist", roleArn)}
	}
	trust := policy.Request{
		Principal: policy.Principal{Service: EventsPrincipal},
		Action:    "sts:AssumeRole",
		Resource:  roleArn,
		Context:   map[string]string{"aws:SourceArn": sourceArn, "aws:SourceAccount": s.account},
	}
	if st.trust == nil || st.trust.Evaluate(trust) != policy.Allow {
		return &Denial{Code: "FAILED_TO_ASSUME_ROLE", Message: fmt.Sprintf(
			"the trust policy of role %s does not let %s call sts:AssumeRole", roleArn, EventsPrincipal)}
	}
	policies := s.attachedDocs(append([]*policy.Policy(nil), st.inline...), st.role.Attached)
	req := policy.Request{
		Principal: policy.Principal{Arn: roleArn, Account: s.account},
		Action:    action,
		Resource:  resource,
		Context:   map[string]string{"aws:PrincipalAccount": s.account},
	}
	switch policy.EvaluateAll(policies, req) {
	case policy.Allow:
		return nil
	case policy.Deny:
		return &Denial{Code: "NO_PERMISSIONS", Message: fmt.Sprintf(
			"role %s is not authorized to perform %s on %s with an explicit deny", roleArn, action, resource)}
	}
	return &Denial{Code: "NO_PERMISSIONS", Message: fmt.Sprintf("role %s is not authorized to perform %s on %s", roleArn, action, resource)}
}
