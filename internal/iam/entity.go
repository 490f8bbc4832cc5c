package iam

import (
	"context"
	"encoding/xml"
	"slices"
	"strings"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/policy"
)

// Roles, users and groups hold permission policies the same way: inline
// documents by name, and managed policies attached by ARN. kind describes
// one of them to the operations they share.
type kind struct {
	name  string // "role", "user", "group"
	param string // the request parameter naming it: "RoleName"
	field string // its name in validation messages: "roleName"
	quota string // the attached-policies quota: "PoliciesPerRole"
	max   int    // the longest name
	// load returns the entity a name names (an IAM error when none) and
	// its revision; store writes it back at that revision.
	load  func(name string) (entity, uint64, error)
	store func(ctx context.Context, e entity, rev uint64) error
}

// entity is a role, user or group.
type entity interface {
	entityName() string
	inlinePolicies() *map[string]string
	attachedPolicies() *[]string
}

func (r *Role) entityName() string                  { return r.Name }
func (r *Role) inlinePolicies() *map[string]string  { return &r.Inline }
func (r *Role) attachedPolicies() *[]string         { return &r.Attached }
func (u *User) entityName() string                  { return u.Name }
func (u *User) inlinePolicies() *map[string]string  { return &u.Inline }
func (u *User) attachedPolicies() *[]string         { return &u.Attached }
func (g *Group) entityName() string                 { return g.Name }
func (g *Group) inlinePolicies() *map[string]string { return &g.Inline }
func (g *Group) attachedPolicies() *[]string        { return &g.Attached }

// kinds returns the descriptions of roles, users and groups (made once,
// in New).
func (s *Service) kinds() (role, user, group kind) { return s.roleKind, s.userKind, s.groupKind }

// newKind describes the entities of one kind: get reads one by name, key
// is its record's key.
func newKind[T any, P interface {
	*T
	entity
}](s *Service, name, param, quota string, max int, get func(string) (T, uint64, error), key func(string) string) kind {
	return kind{name: name, param: param, field: strings.ToLower(param[:1]) + param[1:], quota: quota, max: max,
		load: func(n string) (entity, uint64, error) {
			v, rev, err := get(n)
			return P(&v), rev, err
		},
		store: func(ctx context.Context, e entity, rev uint64) error { return s.save(ctx, key(e.entityName()), rev, e) }}
}

// policiesLeft is IAM's refusal to delete an entity that still has
// policies, inline ones first; nil when it has none.
func policiesLeft(e entity) error {
	switch {
	case len(*e.inlinePolicies()) > 0:
		return errConflict("Cannot delete entity, must delete policies first.")
	case len(*e.attachedPolicies()) > 0:
		return errConflict("Cannot delete entity, must detach all policies first.")
	}
	return nil
}

// named is an XML element whose name is chosen at run time (RoleName,
// UserName, GroupName).
type named struct{ elem, value string }

func (n named) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return e.EncodeElement(n.value, xml.StartElement{Name: xml.Name{Local: n.elem}})
}

// entityParam checks the parameter naming an entity of kind k and returns
// the name.
func (k kind) entityParam(c *checker, p awsapi.Params) *string {
	name := p.Str(k.param)
	c.str(name, k.field, true, 1, k.max, nameRE, `[\w+=,.@-]+`)
	return name
}

// change applies fn to the entity and stores it.
func (k kind) change(ctx context.Context, name string, fn func(e entity) error) error {
	e, rev, err := k.load(name)
	if err != nil {
		return err
	}
	if err := fn(e); err != nil {
		return err
	}
	return k.store(ctx, e, rev)
}

func (k kind) noInline(name string) *awsapi.Error {
	return errNoSuchEntity("The %s policy with name %s cannot be found.", k.name, name)
}

func (k kind) putPolicy(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	name := k.entityParam(&c, p)
	policyName, doc := p.Str("PolicyName"), p.Str("PolicyDocument")
	c.policyName(policyName)
	c.document(doc, "policyDocument")
	if err := c.err(); err != nil {
		return nil, err
	}
	if _, err := malformed(*doc, policy.IdentityPolicy); err != nil {
		return nil, err
	}
	return nil, k.change(ctx, *name, func(e entity) error {
		in := e.inlinePolicies()
		if *in == nil {
			*in = map[string]string{}
		}
		(*in)[*policyName] = *doc
		return nil
	})
}

// inline returns the entity and inline policy a request names.
func (k kind) inline(p awsapi.Params) (entity, string, error) {
	var c checker
	name := k.entityParam(&c, p)
	policyName := p.Str("PolicyName")
	c.policyName(policyName)
	if err := c.err(); err != nil {
		return nil, "", err
	}
	e, _, err := k.load(*name)
	if err != nil {
		return nil, "", err
	}
	if _, ok := (*e.inlinePolicies())[*policyName]; !ok {
		return nil, "", k.noInline(*policyName)
	}
	return e, *policyName, nil
}

func (k kind) getPolicy(ctx context.Context, p awsapi.Params) (any, error) {
	e, name, err := k.inline(p)
	if err != nil {
		return nil, err
	}
	return struct {
		Entity         named
		PolicyName     string `xml:"PolicyName"`
		PolicyDocument string `xml:"PolicyDocument"`
	}{named{k.param, e.entityName()}, name, encodeDocument((*e.inlinePolicies())[name])}, nil
}

func (k kind) listPolicies(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	name := k.entityParam(&c, p)
	max, err := c.maxItems(p)
	if err != nil {
		return nil, err
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	e, _, err := k.load(*name)
	if err != nil {
		return nil, err
	}
	list, info := pageOf(*e.inlinePolicies(), p.Str("Marker"), max, func(name string, _ *string) string { return name })
	return struct {
		PolicyNames members[string] `xml:"PolicyNames"`
		listInfo
	}{list, info}, nil
}

func (k kind) deletePolicy(ctx context.Context, p awsapi.Params) (any, error) {
	e, name, err := k.inline(p)
	if err != nil {
		return nil, err
	}
	return nil, k.change(ctx, e.entityName(), func(e entity) error {
		in := e.inlinePolicies()
		if _, ok := (*in)[name]; !ok {
			return k.noInline(name)
		}
		delete(*in, name)
		return nil
	})
}

func (s *Service) attach(k kind) awsapi.QueryOperation {
	return func(ctx context.Context, p awsapi.Params) (any, error) {
		var c checker
		name := k.entityParam(&c, p)
		if err := c.err(); err != nil {
			return nil, err
		}
		pol, _, err := s.policyByArn(p.Str("PolicyArn"))
		if err != nil {
			return nil, err
		}
		arn := s.policyArn(&pol)
		return nil, k.change(ctx, *name, func(e entity) error {
			att := e.attachedPolicies()
			if !slices.Contains(*att, arn) {
				if len(*att) >= 10 {
					return errLimit("Cannot exceed quota for %s: 10", k.quota)
				}
				*att = append(*att, arn)
			}
			return nil
		})
	}
}

func (k kind) detach(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	name := k.entityParam(&c, p)
	arn := p.Str("PolicyArn")
	c.arn(arn, "policyArn")
	if err := c.err(); err != nil {
		return nil, err
	}
	return nil, k.change(ctx, *name, func(e entity) error {
		att := e.attachedPolicies()
		if !slices.Contains(*att, *arn) {
			return errNoSuchEntity("Policy %s was not found.", *arn)
		}
		*att = slices.DeleteFunc(*att, func(a string) bool { return a == *arn })
		return nil
	})
}

func (k kind) listAttached(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	name := k.entityParam(&c, p)
	max, err := c.maxItems(p)
	if err != nil {
		return nil, err
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	e, _, err := k.load(*name)
	if err != nil {
		return nil, err
	}
	prefix := p.Str("PathPrefix")
	type attached struct {
		PolicyName string `xml:"PolicyName"`
		PolicyArn  string `xml:"PolicyArn"`
	}
	arns := map[string]bool{}
	for _, a := range *e.attachedPolicies() {
		if prefix == nil || strings.Contains(a, ":policy"+*prefix) {
			arns[a] = true
		}
	}
	list, info := pageOf(arns, p.Str("Marker"), max, func(a string, _ *bool) attached {
		return attached{PolicyName: a[strings.LastIndexByte(a, '/')+1:], PolicyArn: a}
	})
	return struct {
		AttachedPolicies members[attached] `xml:"AttachedPolicies"`
		listInfo
	}{list, info}, nil
}
