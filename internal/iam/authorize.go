package iam

import (
	"context"
	"fmt"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/policy"
)

// Verdict is the outcome of authorizing a caller's request.
type Verdict int

// Verdicts, as AWS words them in AccessDenied messages.
const (
	Allowed Verdict = iota
	// NoIdentityAllow: no identity-based policy allows the action (and no
	// resource-based policy names the caller).
	NoIdentityAllow
	// IdentityDeny: an identity-based policy denies it.
	IdentityDeny
	// ResourceDeny: the resource's policy denies it.
	ResourceDeny
)

// Authorize decides whether the IAM user principal (an ARN) may perform
// action on resource: its identity policies (the user's inline and
// attached policies and those of its groups) and the resource's policy,
// if any, are evaluated together, an explicit deny first; an allow in
// either is enough within the account. It reads memory only.
func (s *Service) Authorize(principal, action, resource string, context map[string]string, resourcePolicy *policy.Policy) Verdict {
	ptype := "User"
	if strings.Contains(principal, ":assumed-role/") {
		ptype = "AssumedRole"
	}
	ctx := map[string]string{"aws:PrincipalArn": principal, "aws:PrincipalAccount": s.account,
		"aws:PrincipalType": ptype, "aws:CurrentTime": time.Now().UTC().Format(time.RFC3339)}
	for k, v := range context {
		ctx[k] = v
	}
	req := policy.Request{Principal: policy.Principal{Arn: principal}, Action: action, Resource: resource, Context: ctx}
	identity := policy.EvaluateAll(s.identityPolicies(principal), req)
	res := policy.NotApplicable
	if resourcePolicy != nil {
		res = resourcePolicy.Evaluate(req)
	}
	switch {
	case identity == policy.Deny:
		return IdentityDeny
	case res == policy.Deny:
		return ResourceDeny
	case identity == policy.Allow || res == policy.Allow:
		return Allowed
	}
	return NoIdentityAllow
}

// identityPolicies returns the parsed policies that apply to a user (its
// own and its groups') or to a role's session (the role's): none for any
// other principal (it may do nothing).
func (s *Service) identityPolicies(principal string) []*policy.Policy {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if rest, ok := strings.CutPrefix(principal, "arn:aws:sts::"+s.account+":assumed-role/"); ok {
		// A role's session: the role's policies.
		role, _, _ := strings.Cut(rest, "/")
		st := s.roles[roleKey(role)]
		if st == nil {
			return nil
		}
		return s.attachedDocs(append([]*policy.Policy(nil), st.inline...), st.role.Attached)
	}
	rest, ok := strings.CutPrefix(principal, "arn:aws:iam::"+s.account+":user/")
	if !ok {
		return nil
	}
	us := s.users[userKey(rest[strings.LastIndexByte(rest, '/')+1:])]
	if us == nil || s.userArn(&us.user) != principal {
		return nil
	}
	out := append([]*policy.Policy(nil), us.inline...)
	out = s.attachedDocs(out, us.user.Attached)
	for _, g := range us.user.Groups {
		if gs := s.groups[groupKey(g)]; gs != nil {
			out = append(out, gs.inline...)
			out = s.attachedDocs(out, gs.group.Attached)
		}
	}
	return out
}

// attachedDocs appends the default versions of managed policies. Called
// with the read lock held.
func (s *Service) attachedDocs(out []*policy.Policy, arns []string) []*policy.Policy {
	for _, arn := range arns {
		if ps := s.policies[policyKey(arn[strings.LastIndexByte(arn, '/')+1:])]; ps != nil && ps.doc != nil && s.policyArn(&ps.policy) == arn {
			out = append(out, ps.doc)
		}
	}
	return out
}

// DeniedMessage is AWS's AccessDenied message for a verdict.
func DeniedMessage(v Verdict, principal, action, resource string) string {
	why := "because no identity-based policy allows the " + action + " action"
	switch v {
	case IdentityDeny:
		why = "with an explicit deny in an identity-based policy"
	case ResourceDeny:
		why = "with an explicit deny in a resource-based policy"
	}
	return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s %s", principal, action, resource, why)
}

// UserArn returns the ARN of the user an access key's principal names, as
// AWS shows it (with its path).
func (s *Service) UserArn(name string) (string, bool) {
	u, _, err := s.user(name)
	if err != nil {
		return "", false
	}
	return s.userArn(&u), true
}

// Access returns the permission an IAM request needs: iam:<Action> on the
// user, group, role or policy it names (the caller's own user when a user
// operation names none), or "*" for the List operations on no entity.
func (s *Service) Access(ctx context.Context, action string, p awsapi.Params) awsapi.Access {
	a := awsapi.Access{Action: "iam:" + action, Resource: "*"}
	prefix := "arn:aws:iam::" + s.account + ":"
	arnOf := func(kind, path, name string) string {
		if path == "" {
			path = "/"
		}
		return prefix + kind + path + name
	}
	switch {
	case p.Str("PolicyArn") != nil:
		a.Resource = *p.Str("PolicyArn")
	case action == "CreatePolicy" && p.Str("PolicyName") != nil:
		a.Resource = arnOf("policy", deref(p.Str("Path")), *p.Str("PolicyName"))
	case p.Str("RoleName") != nil:
		name := *p.Str("RoleName")
		a.Resource = arnOf("role", deref(p.Str("Path")), name)
		if r, _, ok := s.getRole(name); ok {
			a.Resource = s.roleArn(&r)
		}
	case p.Str("UserName") != nil:
		name := *p.Str("UserName")
		a.Resource = arnOf("user", deref(p.Str("Path")), name)
		if u, _, err := s.user(name); err == nil {
			a.Resource = s.userArn(&u)
		}
	case p.Str("GroupName") != nil:
		name := *p.Str("GroupName")
		a.Resource = arnOf("group", deref(p.Str("Path")), name)
		if g, _, err := s.group(name); err == nil {
			a.Resource = s.groupArn(&g)
		}
	case strings.Contains(action, "User") || strings.Contains(action, "AccessKey"):
		// A user operation on the caller itself.
		if id, _ := awsapi.IdentityFrom(ctx); id.Principal != "" {
			a.Resource = id.Principal
		}
		if id := p.Str("AccessKeyId"); id != nil && action == "GetAccessKeyLastUsed" {
			s.mu.RLock()
			if st := s.keys[*id]; st != nil {
				if us := s.users[userKey(st.key.User)]; us != nil {
					a.Resource = s.userArn(&us.user)
				}
			}
			s.mu.RUnlock()
		}
	}
	return a
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
