package eventbus

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/policy"
)

// An event bus's resource-based policy (PutPermission, RemovePermission)
// is kept with the bus, as written; DescribeEventBus returns it, and the
// authorization of a request on the bus, or on a rule of the bus,
// evaluates it with the caller's own policies (BusPolicy).

// maxBusPolicy is the largest policy a bus may hold, in bytes.
const maxBusPolicy = 10 * 1024

var (
	permActionRE    = regexp.MustCompile(`^events:[a-zA-Z]+$`)
	permPrincipalRE = regexp.MustCompile(`^(\d{12}|\*)$`)
	statementIDRE   = regexp.MustCompile(`^[a-zA-Z0-9-_]+$`)
)

type permissionInput struct {
	EventBusName         *string `json:"EventBusName"`
	Action               *string `json:"Action"`
	Principal            *string `json:"Principal"`
	StatementId          *string `json:"StatementId"`
	Policy               *string `json:"Policy"`
	RemoveAllPermissions bool    `json:"RemoveAllPermissions"`
	Condition            *struct {
		Type  *string `json:"Type"`
		Key   *string `json:"Key"`
		Value *string `json:"Value"`
	} `json:"Condition"`
}

// busPolicyDoc is a bus's policy as stored, statements kept as written.
type busPolicyDoc struct {
	Version   string            `json:"Version"`
	Statement []json.RawMessage `json:"Statement"`
}

func statementID(st json.RawMessage) string {
	var s struct {
		Sid string `json:"Sid"`
	}
	_ = json.Unmarshal(st, &s)
	return s.Sid
}

func (s *Service) putPermission(ctx context.Context, body []byte) (any, error) {
	var in permissionInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	if in.Policy == nil {
		checkPermissionField(&v, in.Action, "action", 1, 64, permActionRE, `events:[a-zA-Z]+`)
		checkPermissionField(&v, in.Principal, "principal", 1, 12, permPrincipalRE, `(\d{12}|\*)`)
		checkPermissionField(&v, in.StatementId, "statementId", 1, 64, statementIDRE, `[a-zA-Z0-9-_]+`)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	b, rev, err := s.existingBus(in.EventBusName, "eventBusName")
	if err != nil {
		return nil, err
	}
	name := b.Name
	var doc string
	if in.Policy != nil {
		if _, err := policy.ParseKind(*in.Policy, policy.ResourcePolicy); err != nil {
			return nil, awsapi.Errorf(awsapi.CodeValidation, "Policy is not valid: %v", err)
		}
		doc = *in.Policy
	} else {
		// Members in AWS's order.
		st := struct {
			Sid       string `json:"Sid"`
			Effect    string `json:"Effect"`
			Principal any    `json:"Principal"`
			Action    string `json:"Action"`
			Resource  string `json:"Resource"`
			Condition any    `json:"Condition,omitempty"`
		}{Sid: *in.StatementId, Effect: "Allow", Principal: "*", Action: *in.Action, Resource: b.Arn}
		if *in.Principal != "*" {
			st.Principal = map[string]string{"AWS": "arn:aws:iam::" + *in.Principal + ":root"}
		}
		if c := in.Condition; c != nil && c.Type != nil && c.Key != nil && c.Value != nil {
			st.Condition = map[string]map[string]string{*c.Type: {*c.Key: *c.Value}}
		}
		raw, _ := json.Marshal(st)
		var p busPolicyDoc
		if b.Policy != "" {
			_ = json.Unmarshal([]byte(b.Policy), &p)
		}
		p.Version = "2012-10-17"
		replaced := false
		for i, old := range p.Statement {
			if statementID(old) == *in.StatementId {
				p.Statement[i], replaced = raw, true
			}
		}
		if !replaced {
			p.Statement = append(p.Statement, raw)
		}
		data, _ := json.Marshal(p)
		doc = string(data)
	}
	if len(doc) > maxBusPolicy {
		return nil, awsapi.Errorf("PolicyLengthExceededException", "The policy of event bus %s would exceed 10 KB.", name)
	}
	b.Policy = doc
	if err := s.save(ctx, busKey(name), rev, b); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func checkPermissionField(v *awsapi.Violations, s *string, path string, lo, hi int, re *regexp.Regexp, pattern string) {
	switch {
	case s == nil:
		v.Add(nil, path, awsapi.MustNotBeNull)
	case len(*s) < lo || len(*s) > hi:
		v.Add(*s, path, awsapi.LenConstraint(len(*s), lo, hi))
	case !re.MatchString(*s):
		v.Add(*s, path, awsapi.MatchPattern(pattern))
	}
}

func (s *Service) removePermission(ctx context.Context, body []byte) (any, error) {
	var in permissionInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	b, rev, err := s.existingBus(in.EventBusName, "eventBusName")
	if err != nil {
		return nil, err
	}
	name := b.Name
	noStatement := awsapi.Errorf(awsapi.CodeNotFound, "Statement with the provided id does not exist.")
	switch {
	case in.RemoveAllPermissions:
		b.Policy = ""
	case in.StatementId == nil:
		var v awsapi.Violations
		v.Add(nil, "statementId", awsapi.MustNotBeNull)
		return nil, v.Err()
	default:
		var p busPolicyDoc
		if b.Policy == "" || json.Unmarshal([]byte(b.Policy), &p) != nil {
			return nil, noStatement
		}
		kept := p.Statement[:0]
		for _, st := range p.Statement {
			if statementID(st) != *in.StatementId {
				kept = append(kept, st)
			}
		}
		if len(kept) == len(p.Statement) {
			return nil, noStatement
		}
		p.Statement = kept
		b.Policy = ""
		if len(kept) > 0 {
			data, _ := json.Marshal(p)
			b.Policy = string(data)
		}
	}
	if err := s.save(ctx, busKey(name), rev, b); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// BusPolicy returns the resource policy that governs a request on
// resource: the policy of the bus it is, or of the bus its rule is on
// (parsed when the registry applied the bus); nil when there is none.
func (s *Service) BusPolicy(resource string) *policy.Policy {
	rest, ok := strings.CutPrefix(resource, s.arns.prefix())
	if !ok {
		return nil
	}
	var bus string
	switch {
	case strings.HasPrefix(rest, "event-bus/"):
		bus = strings.TrimPrefix(rest, "event-bus/")
	case strings.HasPrefix(rest, "rule/"):
		bus = defaultBus
		if b, _, two := strings.Cut(strings.TrimPrefix(rest, "rule/"), "/"); two {
			bus = b
		}
	default:
		return nil
	}
	return s.reg.busPolicy(bus)
}
