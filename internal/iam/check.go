package iam

import (
	"fmt"
	"strings"

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
// and reflects every change this node has seen.
func (s *Service) CheckEventBridge(roleArn, sourceArn, action, resource string) *Denial {
	rest, ok := strings.CutPrefix(roleArn, "arn:aws:iam::"+s.account+":role/")
	if !ok {
		return &Denial{Code: "FAILED_TO_ASSUME_ROLE", Message: fmt.Sprintf("%s is not a role of account %s", roleArn, s.account)}
	}
	name := rest[strings.LastIndexByte(rest, '/')+1:]
	s.mu.RLock()
	defer s.mu.RUnlock()
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
