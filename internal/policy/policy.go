// Package policy parses AWS access policy documents and evaluates requests
// against them: an explicit Deny wins, then an Allow, and anything else is
// an implicit deny. It covers what bridgeport enforces: resource policies
// of queues (which principals may send to them) now, and role trust and
// permission policies with the IAM API. Pure: no I/O.
package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Decision is the outcome of evaluating a request.
type Decision int

const (
	// NotApplicable: no statement matches the request (an implicit deny).
	NotApplicable Decision = iota
	// Allow: a statement allows the request and none denies it.
	Allow
	// Deny: a statement denies the request.
	Deny
)

func (d Decision) String() string {
	return [...]string{"NotApplicable", "Allow", "Deny"}[d]
}

// Policy is a parsed policy document.
type Policy struct {
	Version    string
	Statements []Statement
}

// Statement is one statement of a policy.
type Statement struct {
	Sid          string
	Effect       string // "Allow" or "Deny"
	Principal    *Principals
	NotPrincipal *Principals
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	Conditions   []Condition
}

// Principals is a Principal element: "*", or principals by kind ("AWS",
// "Service", "Federated", "CanonicalUser").
type Principals struct {
	Any    bool
	ByKind map[string][]string
}

// Condition is one operator applied to one key.
type Condition struct {
	Operator string // as written, e.g. "ArnLike" or "StringEqualsIfExists"
	Key      string // lower-cased
	Values   []string
}

// Principal is who makes a request.
type Principal struct {
	// Service is a service principal, e.g. "events.amazonaws.com".
	Service string
	// Account and Arn name an AWS principal (a root user or a role).
	Account string
	Arn     string
}

// Request is what is evaluated: who does what to which resource, and the
// condition keys in effect (names are case-insensitive).
type Request struct {
	Principal Principal
	Action    string
	Resource  string
	Context   map[string]string
}

// Error is a malformed policy document, with the reason.
type Error struct{ Reason string }

func (e *Error) Error() string { return e.Reason }

func errorf(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// Parse parses and validates a policy document.
func Parse(doc string) (*Policy, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, errorf("Syntax errors in policy.")
	}
	if dec.More() {
		return nil, errorf("Syntax errors in policy.")
	}
	p := &Policy{}
	for k, v := range raw {
		switch k {
		case "Version":
			if err := json.Unmarshal(v, &p.Version); err != nil {
				return nil, errorf("Syntax errors in policy.")
			}
			if p.Version != "2012-10-17" && p.Version != "2008-10-17" {
				return nil, errorf("The policy must contain a valid version string")
			}
		case "Id":
		case "Statement":
			var list []json.RawMessage
			if bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) {
				if err := json.Unmarshal(v, &list); err != nil {
					return nil, errorf("Syntax errors in policy.")
				}
			} else {
				list = []json.RawMessage{v}
			}
			for _, sv := range list {
				st, err := parseStatement(sv)
				if err != nil {
					return nil, err
				}
				p.Statements = append(p.Statements, st)
			}
		default:
			return nil, errorf("Policy document contains an unknown element: %s", k)
		}
	}
	if _, ok := raw["Statement"]; !ok {
		return nil, errorf("Policy document should not be empty or missing the Statement element.")
	}
	return p, nil
}

func parseStatement(v json.RawMessage) (Statement, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil || raw == nil {
		return Statement{}, errorf("Syntax errors in policy.")
	}
	var st Statement
	var err error
	for k, v := range raw {
		switch k {
		case "Sid":
			err = json.Unmarshal(v, &st.Sid)
		case "Effect":
			err = json.Unmarshal(v, &st.Effect)
			if err == nil && st.Effect != "Allow" && st.Effect != "Deny" {
				return Statement{}, errorf("Invalid effect: %s", st.Effect)
			}
		case "Principal":
			st.Principal, err = parsePrincipals(v)
		case "NotPrincipal":
			st.NotPrincipal, err = parsePrincipals(v)
		case "Action":
			st.Action, err = stringList(v)
		case "NotAction":
			st.NotAction, err = stringList(v)
		case "Resource":
			st.Resource, err = stringList(v)
		case "NotResource":
			st.NotResource, err = stringList(v)
		case "Condition":
			st.Conditions, err = parseConditions(v)
		default:
			return Statement{}, errorf("Statement contains an unknown element: %s", k)
		}
		if err != nil {
			if _, ok := err.(*Error); ok {
				return Statement{}, err
			}
			return Statement{}, errorf("Syntax errors in policy.")
		}
	}
	switch {
	case st.Effect == "":
		return Statement{}, errorf("Missing required field Effect")
	case st.Action == nil && st.NotAction == nil:
		return Statement{}, errorf("Policy statement must contain actions.")
	case st.Action != nil && st.NotAction != nil:
		return Statement{}, errorf("Statement cannot contain both Action and NotAction.")
	case st.Resource != nil && st.NotResource != nil:
		return Statement{}, errorf("Statement cannot contain both Resource and NotResource.")
	case st.Principal != nil && st.NotPrincipal != nil:
		return Statement{}, errorf("Statement cannot contain both Principal and NotPrincipal.")
	}
	for _, a := range append(st.Action, st.NotAction...) {
		if a != "*" && !strings.Contains(a, ":") {
			return Statement{}, errorf("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
		}
	}
	return st, nil
}

// stringList reads a string or a list of strings.
func stringList(v json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(v, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil {
		return nil, err
	}
	if list == nil {
		list = []string{}
	}
	return list, nil
}

func parsePrincipals(v json.RawMessage) (*Principals, error) {
	var star string
	if err := json.Unmarshal(v, &star); err == nil {
		if star != "*" {
			return nil, errorf("Invalid principal in policy: %q", star)
		}
		return &Principals{Any: true}, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, err
	}
	p := &Principals{ByKind: map[string][]string{}}
	for kind, vals := range raw {
		switch kind {
		case "AWS", "Service", "Federated", "CanonicalUser":
		default:
			return nil, errorf("Invalid principal in policy: %q", kind)
		}
		list, err := stringList(vals)
		if err != nil {
			return nil, err
		}
		p.ByKind[kind] = list
	}
	return p, nil
}

// operators lists the condition operators understood, by their base name
// (without IfExists).
var operators = map[string]bool{
	"StringEquals": true, "StringNotEquals": true, "StringEqualsIgnoreCase": true, "StringNotEqualsIgnoreCase": true,
	"StringLike": true, "StringNotLike": true,
	"ArnEquals": true, "ArnLike": true, "ArnNotEquals": true, "ArnNotLike": true,
	"Null": true, "Bool": true,
}

func parseConditions(v json.RawMessage) ([]Condition, error) {
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, err
	}
	var out []Condition
	for op, keys := range raw {
		base := strings.TrimSuffix(op, "IfExists")
		if !operators[base] || (base == "Null" && base != op) {
			return nil, errorf("Invalid Condition type : %s", op)
		}
		for key, vals := range keys {
			list, err := stringList(vals)
			if err != nil {
				// Booleans are written unquoted as often as not.
				var b []bool
				var one bool
				if json.Unmarshal(vals, &one) == nil {
					list = []string{fmt.Sprint(one)}
				} else if json.Unmarshal(vals, &b) == nil {
					for _, x := range b {
						list = append(list, fmt.Sprint(x))
					}
				} else {
					return nil, err
				}
			}
			out = append(out, Condition{Operator: op, Key: strings.ToLower(key), Values: list})
		}
	}
	return out, nil
}

// Evaluate evaluates a request against the policy alone.
func (p *Policy) Evaluate(r Request) Decision {
	ctx := make(map[string]string, len(r.Context))
	for k, v := range r.Context {
		ctx[strings.ToLower(k)] = v
	}
	allowed := false
	for i := range p.Statements {
		st := &p.Statements[i]
		if !st.applies(r, ctx) {
			continue
		}
		if st.Effect == "Deny" {
			return Deny
		}
		allowed = true
	}
	if allowed {
		return Allow
	}
	return NotApplicable
}

func (st *Statement) applies(r Request, ctx map[string]string) bool {
	if st.Principal != nil && !st.Principal.match(r.Principal) {
		return false
	}
	if st.NotPrincipal != nil && st.NotPrincipal.match(r.Principal) {
		return false
	}
	if st.Action != nil && !anyMatch(st.Action, r.Action, true) {
		return false
	}
	if st.NotAction != nil && anyMatch(st.NotAction, r.Action, true) {
		return false
	}
	if st.Resource != nil && !anyMatch(st.Resource, r.Resource, false) {
		return false
	}
	if st.NotResource != nil && anyMatch(st.NotResource, r.Resource, false) {
		return false
	}
	for _, c := range st.Conditions {
		if !c.holds(ctx) {
			return false
		}
	}
	return true
}

func anyMatch(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			if Glob(strings.ToLower(p), strings.ToLower(s)) {
				return true
			}
		} else if Glob(p, s) {
			return true
		}
	}
	return false
}

func (ps *Principals) match(who Principal) bool {
	if ps.Any {
		return true
	}
	for _, v := range ps.ByKind["AWS"] {
		switch {
		case v == "*":
			return true
		case who.Account != "" && (v == who.Account || v == "arn:aws:iam::"+who.Account+":root"):
			return true
		case who.Arn != "" && v == who.Arn:
			return true
		}
	}
	for _, v := range ps.ByKind["Service"] {
		if who.Service != "" && strings.EqualFold(v, who.Service) {
			return true
		}
	}
	return false
}

func (c *Condition) holds(ctx map[string]string) bool {
	base, ifExists := strings.CutSuffix(c.Operator, "IfExists")
	v, present := ctx[c.Key]
	if base == "Null" {
		want := len(c.Values) > 0 && strings.EqualFold(c.Values[0], "true")
		return want == !present
	}
	negated := strings.Contains(base, "Not")
	if !present {
		// A negated operator holds for a missing key, as does any operator
		// with IfExists.
		return ifExists || negated
	}
	var match func(pattern string) bool
	switch strings.Replace(base, "Not", "", 1) {
	case "StringEquals":
		match = func(p string) bool { return p == v }
	case "StringEqualsIgnoreCase":
		match = func(p string) bool { return strings.EqualFold(p, v) }
	case "StringLike":
		match = func(p string) bool { return Glob(p, v) }
	case "ArnEquals", "ArnLike":
		match = func(p string) bool { return arnLike(p, v) }
	case "Bool":
		match = func(p string) bool { return strings.EqualFold(p, v) }
	default:
		return false
	}
	any := false
	for _, p := range c.Values {
		if match(p) {
			any = true
			break
		}
	}
	return any != negated
}

// arnLike matches an ARN against a pattern component by component (the six
// colon-separated parts), with wildcards inside each. A pattern with fewer
// parts (such as "arn:aws:events:*") is matched as a whole.
func arnLike(pattern, arn string) bool {
	pp := strings.SplitN(pattern, ":", 6)
	ap := strings.SplitN(arn, ":", 6)
	if len(pp) != len(ap) {
		return Glob(pattern, arn)
	}
	for i := range pp {
		if !Glob(pp[i], ap[i]) {
			return false
		}
	}
	return true
}

// Glob matches s against a pattern in which '*' stands for any run of
// characters and '?' for any one. It runs in O(len(pattern)*len(s)) at
// worst, without recursion.
func Glob(pattern, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				px++
				sx++
				continue
			default:
				if c == s[sx] {
					px++
					sx++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		px, sx = starP+1, starS
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// Kind is what a policy document is attached to, which decides the
// elements it must and must not have.
type Kind int

const (
	// ResourcePolicy is attached to a resource (a queue): statements name
	// a Principal.
	ResourcePolicy Kind = iota
	// IdentityPolicy is attached to a role (inline or managed): statements
	// name no Principal and must name resources.
	IdentityPolicy
	// TrustPolicy is a role's assume-role policy: statements name a
	// Principal, only sts actions, and no Resource.
	TrustPolicy
)

// ParseKind parses a document and checks the rules of its kind, with IAM's
// MalformedPolicyDocument reasons.
func ParseKind(doc string, kind Kind) (*Policy, error) {
	p, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	for _, st := range p.Statements {
		hasPrincipal := st.Principal != nil || st.NotPrincipal != nil
		switch kind {
		case IdentityPolicy:
			if hasPrincipal {
				return nil, errorf("Policy document should not specify a principal.")
			}
			if st.Resource == nil && st.NotResource == nil {
				return nil, errorf("Policy statement must contain resources.")
			}
		case TrustPolicy:
			if !hasPrincipal {
				return nil, errorf("Missing required field Principal")
			}
			if st.Resource != nil || st.NotResource != nil {
				return nil, errorf("Has prohibited field Resource")
			}
			for _, a := range st.Action {
				if !strings.HasPrefix(strings.ToLower(a), "sts:") && a != "*" {
					return nil, errorf("AssumeRole policy may only specify STS AssumeRole actions.")
				}
			}
		case ResourcePolicy:
			if !hasPrincipal {
				return nil, errorf("Missing required field Principal")
			}
		}
	}
	return p, nil
}

// EvaluateAll evaluates a request against several policies together, as
// AWS evaluates the policies of one principal: an explicit Deny in any
// wins, then an Allow in any, else an implicit deny (NotApplicable).
func EvaluateAll(policies []*Policy, r Request) Decision {
	out := NotApplicable
	for _, p := range policies {
		switch p.Evaluate(r) {
		case Deny:
			return Deny
		case Allow:
			out = Allow
		}
	}
	return out
}
