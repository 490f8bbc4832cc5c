package iam

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/policy"
)

// Operations returns the IAM operations by action name.
func (s *Service) Operations() map[string]awsapi.QueryOperation {
	role, user, group := s.kinds()
	return map[string]awsapi.QueryOperation{
		"CreateRole":                s.createRole,
		"GetRole":                   s.getRoleOp,
		"ListRoles":                 s.listRoles,
		"DeleteRole":                s.deleteRole,
		"UpdateRole":                s.updateRole,
		"UpdateAssumeRolePolicy":    s.updateAssumeRolePolicy,
		"TagRole":                   s.tagRole,
		"UntagRole":                 s.untagRole,
		"ListRoleTags":              s.listRoleTags,
		"PutRolePolicy":             role.putPolicy,
		"GetRolePolicy":             role.getPolicy,
		"ListRolePolicies":          role.listPolicies,
		"DeleteRolePolicy":          role.deletePolicy,
		"PutUserPolicy":             user.putPolicy,
		"GetUserPolicy":             user.getPolicy,
		"ListUserPolicies":          user.listPolicies,
		"DeleteUserPolicy":          user.deletePolicy,
		"PutGroupPolicy":            group.putPolicy,
		"GetGroupPolicy":            group.getPolicy,
		"ListGroupPolicies":         group.listPolicies,
		"DeleteGroupPolicy":         group.deletePolicy,
		"CreatePolicy":              s.createPolicy,
		"GetPolicy":                 s.getPolicyOp,
		"GetPolicyVersion":          s.getPolicyVersion,
		"CreatePolicyVersion":       s.createPolicyVersion,
		"ListPolicyVersions":        s.listPolicyVersions,
		"DeletePolicyVersion":       s.deletePolicyVersion,
		"SetDefaultPolicyVersion":   s.setDefaultPolicyVersion,
		"ListPolicies":              s.listPolicies,
		"DeletePolicy":              s.deletePolicy,
		"AttachRolePolicy":          s.attach(role),
		"DetachRolePolicy":          role.detach,
		"ListAttachedRolePolicies":  role.listAttached,
		"AttachUserPolicy":          s.attach(user),
		"DetachUserPolicy":          user.detach,
		"ListAttachedUserPolicies":  user.listAttached,
		"AttachGroupPolicy":         s.attach(group),
		"DetachGroupPolicy":         group.detach,
		"ListAttachedGroupPolicies": group.listAttached,
		"CreateUser":                s.createUser,
		"GetUser":                   s.getUser,
		"ListUsers":                 s.listUsers,
		"DeleteUser":                s.deleteUser,
		"TagUser":                   s.tagUser,
		"UntagUser":                 s.untagUser,
		"ListUserTags":              s.listUserTags,
		"CreateGroup":               s.createGroup,
		"GetGroup":                  s.getGroup,
		"ListGroups":                s.listGroups,
		"DeleteGroup":               s.deleteGroup,
		"AddUserToGroup":            s.addUserToGroup,
		"RemoveUserFromGroup":       s.removeUserFromGroup,
		"ListGroupsForUser":         s.listGroupsForUser,
		"CreateAccessKey":           s.createAccessKey,
		"ListAccessKeys":            s.listAccessKeys,
		"UpdateAccessKey":           s.updateAccessKey,
		"DeleteAccessKey":           s.deleteAccessKey,
		"GetAccessKeyLastUsed":      s.getAccessKeyLastUsed,
	}
}

// Validation, with the model's constraints and AWS's wording.
var (
	nameRE       = regexp.MustCompile(`^[\w+=,.@-]+$`)
	rolePathRE   = regexp.MustCompile(`^(/|/[\x21-\x7E]+/)$`)
	policyPathRE = regexp.MustCompile(`^((/[A-Za-z0-9.,+@=_-]+)*)/$`)
	documentRE   = regexp.MustCompile(`^[\t\n\r\x{20}-\x{FF}]+$`)
	descRE       = regexp.MustCompile(`^[\t\n\r\x{20}-\x{7E}\x{A1}-\x{FF}]*$`)
	tagKeyRE     = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$`)
	tagValueRE   = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
	versionRE    = regexp.MustCompile(`^v[1-9][0-9]*(\.[A-Za-z0-9-]*)?$`)
)

type checker struct{ v awsapi.Violations }

func (c *checker) str(s *string, path string, required bool, lo, hi int, re *regexp.Regexp, pattern string) {
	switch {
	case s == nil:
		if required {
			c.v.Add(nil, path, awsapi.MustNotBeNull)
		}
	case len([]rune(*s)) < lo:
		c.v.Add(*s, path, awsapi.MinLen(lo))
	case len([]rune(*s)) > hi:
		c.v.Add(*s, path, awsapi.MaxLen(hi))
	case re != nil && !re.MatchString(*s):
		c.v.Add(*s, path, awsapi.MatchPattern(pattern))
	}
}

func (c *checker) roleName(s *string) {
	c.str(s, "roleName", true, 1, 64, nameRE, `[\w+=,.@-]+`)
}

func (c *checker) policyName(s *string) {
	c.str(s, "policyName", true, 1, 128, nameRE, `[\w+=,.@-]+`)
}

func (c *checker) document(s *string, path string) {
	c.str(s, path, true, 1, 131072, documentRE, `[\u0009\u000A\u000D\u0020-\u00FF]+`)
}

func (c *checker) arn(s *string, path string) {
	c.str(s, path, true, 20, 2048, nil, "")
}

func (c *checker) maxItems(p awsapi.Params) (int, error) {
	n, err := p.Int("MaxItems")
	if err != nil {
		return 0, err
	}
	if n == nil {
		return 100, nil
	}
	if *n < 1 {
		c.v.Add(*n, "maxItems", awsapi.MinValue(1))
	} else if *n > 1000 {
		c.v.Add(*n, "maxItems", awsapi.MaxValue(1000))
	}
	return *n, nil
}

func (c *checker) tags(tags []Tag) {
	if len(tags) > 50 {
		c.v.Add(len(tags), "tags", "Member must have length less than or equal to 50")
	}
	for i, t := range tags {
		p := "tags." + strconv.Itoa(i+1) + ".member."
		c.str(&t.Key, p+"key", true, 1, 128, tagKeyRE, `[\p{L}\p{Z}\p{N}_.:/=+\-@]+`)
		c.str(&t.Value, p+"value", true, 0, 256, tagValueRE, `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`)
	}
}

// err returns IAM's ValidationError for the violations, or nil.
func (c *checker) err() error {
	e := c.v.Err()
	if e == nil {
		return nil
	}
	e.Code = "ValidationError"
	return e
}

func readTags(p awsapi.Params, name string) ([]Tag, error) {
	var out []Tag
	for _, m := range p.Structs(name, "Key", "Value") {
		if m["Key"] == nil {
			return nil, errInvalidInput("Tag keys must not be empty.")
		}
		t := Tag{Key: *m["Key"]}
		if m["Value"] != nil {
			t.Value = *m["Value"]
		}
		out = append(out, t)
	}
	return out, nil
}

// mergeTags adds or replaces tags by key, keeping the order of first use.
func mergeTags(have, add []Tag) []Tag {
	out := slices.Clone(have)
	for _, t := range add {
		if i := slices.IndexFunc(out, func(x Tag) bool { return x.Key == t.Key }); i >= 0 {
			out[i] = t
		} else {
			out = append(out, t)
		}
	}
	return out
}

// encodeDocument URL-encodes a policy document as IAM returns documents:
// every byte but the unreserved characters of RFC 3986 as %XX, so that any
// URL decoder gets the document back.
func encodeDocument(doc string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// XML shapes of answers.

type tagsXML struct {
	Members []Tag `xml:"member"`
}

func tagList(tags []Tag) *tagsXML {
	if len(tags) == 0 {
		return nil
	}
	return &tagsXML{Members: tags}
}

type roleXML struct {
	Path                     string   `xml:"Path"`
	RoleName                 string   `xml:"RoleName"`
	RoleId                   string   `xml:"RoleId"`
	Arn                      string   `xml:"Arn"`
	CreateDate               string   `xml:"CreateDate"`
	AssumeRolePolicyDocument string   `xml:"AssumeRolePolicyDocument"`
	Description              *string  `xml:"Description,omitempty"`
	MaxSessionDuration       int      `xml:"MaxSessionDuration"`
	Tags                     *tagsXML `xml:"Tags,omitempty"`
}

func (s *Service) roleXML(r *Role, withTags bool) roleXML {
	out := roleXML{Path: r.Path, RoleName: r.Name, RoleId: r.ID, Arn: s.roleArn(r), CreateDate: isoTime(r.Created),
		AssumeRolePolicyDocument: encodeDocument(r.AssumeRolePolicy), Description: r.Description, MaxSessionDuration: r.MaxSessionDuration}
	if withTags {
		out.Tags = tagList(r.Tags)
	}
	return out
}

type policyXML struct {
	PolicyName                    string   `xml:"PolicyName"`
	PolicyId                      string   `xml:"PolicyId"`
	Arn                           string   `xml:"Arn"`
	Path                          string   `xml:"Path"`
	DefaultVersionId              string   `xml:"DefaultVersionId"`
	AttachmentCount               int      `xml:"AttachmentCount"`
	PermissionsBoundaryUsageCount int      `xml:"PermissionsBoundaryUsageCount"`
	IsAttachable                  bool     `xml:"IsAttachable"`
	Description                   *string  `xml:"Description,omitempty"`
	CreateDate                    string   `xml:"CreateDate"`
	UpdateDate                    string   `xml:"UpdateDate"`
	Tags                          *tagsXML `xml:"Tags,omitempty"`
}

func (s *Service) policyXML(p *Policy, withTags bool) policyXML {
	out := policyXML{PolicyName: p.Name, PolicyId: p.ID, Arn: s.policyArn(p), Path: p.Path, DefaultVersionId: p.DefaultVersion,
		AttachmentCount: s.attachments(s.policyArn(p)), IsAttachable: true, Description: p.Description,
		CreateDate: isoTime(p.Created), UpdateDate: isoTime(p.Updated)}
	if withTags {
		out.Tags = tagList(p.Tags)
	}
	return out
}

type versionXML struct {
	Document         string `xml:"Document,omitempty"`
	VersionId        string `xml:"VersionId"`
	IsDefaultVersion bool   `xml:"IsDefaultVersion"`
	CreateDate       string `xml:"CreateDate"`
}

func versionOut(p *Policy, v *PolicyVersion, withDoc bool) versionXML {
	out := versionXML{VersionId: v.ID, IsDefaultVersion: v.ID == p.DefaultVersion, CreateDate: isoTime(v.Created)}
	if withDoc {
		out.Document = encodeDocument(v.Document)
	}
	return out
}

// page cuts a sorted list of names after marker (the first name of the
// page) into MaxItems.
func page(names []string, marker *string, max int) (items []string, truncated bool, next string) {
	if marker != nil {
		i, _ := slices.BinarySearch(names, *marker)
		names = names[i:]
	}
	if len(names) > max {
		return names[:max], true, names[max]
	}
	return names, false, ""
}

// members is a list as the Query protocol writes it: <member> elements.
type members[T any] struct {
	Members []T `xml:"member"`
}

// pageOf returns the page after marker of the items of byName, in order of
// their names (or ids), rendered, with the list's truncation.
func pageOf[T, X any](byName map[string]T, marker *string, max int, render func(name string, v *T) X) (members[X], listInfo) {
	items, truncated, next := page(slices.Sorted(maps.Keys(byName)), marker, max)
	out := members[X]{Members: make([]X, 0, len(items))}
	for _, n := range items {
		v := byName[n]
		out.Members = append(out.Members, render(n, &v))
	}
	return out, listInfo{IsTruncated: truncated, Marker: next}
}

type listInfo struct {
	IsTruncated bool   `xml:"IsTruncated"`
	Marker      string `xml:"Marker,omitempty"`
}

// Roles.

func noRole(name string) *awsapi.Error {
	return errNoSuchEntity("The role with name %s cannot be found.", name)
}

// roleParam checks a RoleName parameter and returns the role it names.
func (s *Service) roleParam(name *string) (Role, uint64, error) {
	var c checker
	c.roleName(name)
	if err := c.err(); err != nil {
		return Role{}, 0, err
	}
	return s.role(*name)
}

func (s *Service) role(name string) (Role, uint64, error) {
	r, rev, ok := s.getRole(name)
	if !ok {
		return Role{}, 0, noRole(name)
	}
	return r, rev, nil
}

func (s *Service) createRole(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	name, doc, path, desc := p.Str("RoleName"), p.Str("AssumeRolePolicyDocument"), p.Str("Path"), p.Str("Description")
	c.roleName(name)
	c.document(doc, "assumeRolePolicyDocument")
	c.str(path, "path", false, 1, 512, rolePathRE, `(\u002F)|(\u002F[\u0021-\u007E]+\u002F)`)
	c.str(desc, "description", false, 0, 1000, descRE, `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*`)
	maxSession, err := p.Int("MaxSessionDuration")
	if err != nil {
		return nil, err
	}
	if maxSession != nil && (*maxSession < 3600 || *maxSession > 43200) {
		if *maxSession < 3600 {
			c.v.Add(*maxSession, "maxSessionDuration", awsapi.MinValue(3600))
		} else {
			c.v.Add(*maxSession, "maxSessionDuration", awsapi.MaxValue(43200))
		}
	}
	tags, err := readTags(p, "Tags")
	if err != nil {
		return nil, err
	}
	c.tags(tags)
	if err := c.err(); err != nil {
		return nil, err
	}
	if _, err := malformed(*doc, policy.TrustPolicy); err != nil {
		return nil, err
	}
	if _, _, ok := s.getRole(*name); ok {
		return nil, errExists("Role with name %s already exists.", *name)
	}
	r := Role{Name: *name, ID: newID("AROA"), Path: "/", Created: time.Now().UTC(), AssumeRolePolicy: *doc,
		Description: desc, MaxSessionDuration: 3600, Tags: tags}
	if path != nil {
		r.Path = *path
	}
	if maxSession != nil {
		r.MaxSessionDuration = *maxSession
	}
	if err := s.save(ctx, roleKey(r.Name), 0, &r); err != nil {
		if aerr, ok := err.(*awsapi.Error); ok && aerr.Code == "ConcurrentModification" {
			return nil, errExists("Role with name %s already exists.", *name)
		}
		return nil, err
	}
	return struct {
		Role roleXML `xml:"Role"`
	}{s.roleXML(&r, true)}, nil
}

func (s *Service) getRoleOp(ctx context.Context, p awsapi.Params) (any, error) {
	r, _, err := s.roleParam(p.Str("RoleName"))
	if err != nil {
		return nil, err
	}
	return struct {
		Role roleXML `xml:"Role"`
	}{s.roleXML(&r, true)}, nil
}

func (s *Service) listRoles(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	max, err := c.maxItems(p)
	if err != nil {
		return nil, err
	}
	prefix := p.Str("PathPrefix")
	if err := c.err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	byName := map[string]Role{}
	for _, st := range s.roles {
		if prefix == nil || strings.HasPrefix(st.role.Path, *prefix) {
			byName[st.role.Name] = st.role
		}
	}
	s.mu.RUnlock()
	list, info := pageOf(byName, p.Str("Marker"), max, func(_ string, r *Role) roleXML { return s.roleXML(r, false) })
	return struct {
		Roles members[roleXML] `xml:"Roles"`
		listInfo
	}{list, info}, nil
}

func (s *Service) deleteRole(ctx context.Context, p awsapi.Params) (any, error) {
	r, rev, err := s.roleParam(p.Str("RoleName"))
	if err != nil {
		return nil, err
	}
	if err := policiesLeft(&r); err != nil {
		return nil, err
	}
	return nil, s.remove(ctx, roleKey(r.Name), rev)
}

// changeRole applies change to a role and stores it.
func (s *Service) changeRole(ctx context.Context, name *string, change func(*Role) error) error {
	r, rev, err := s.roleParam(name)
	if err != nil {
		return err
	}
	if err := change(&r); err != nil {
		return err
	}
	return s.save(ctx, roleKey(r.Name), rev, &r)
}

func (s *Service) updateRole(ctx context.Context, p awsapi.Params) (any, error) {
	desc := p.Str("Description")
	maxSession, err := p.Int("MaxSessionDuration")
	if err != nil {
		return nil, err
	}
	var c checker
	c.str(desc, "description", false, 0, 1000, descRE, `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*`)
	if maxSession != nil && *maxSession < 3600 {
		c.v.Add(*maxSession, "maxSessionDuration", awsapi.MinValue(3600))
	} else if maxSession != nil && *maxSession > 43200 {
		c.v.Add(*maxSession, "maxSessionDuration", awsapi.MaxValue(43200))
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return struct{}{}, s.changeRole(ctx, p.Str("RoleName"), func(r *Role) error {
		if desc != nil {
			r.Description = desc
		}
		if maxSession != nil {
			r.MaxSessionDuration = *maxSession
		}
		return nil
	})
}

func (s *Service) updateAssumeRolePolicy(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	doc := p.Str("PolicyDocument")
	c.document(doc, "policyDocument")
	if err := c.err(); err != nil {
		return nil, err
	}
	if _, err := malformed(*doc, policy.TrustPolicy); err != nil {
		return nil, err
	}
	return nil, s.changeRole(ctx, p.Str("RoleName"), func(r *Role) error {
		r.AssumeRolePolicy = *doc
		return nil
	})
}

func (s *Service) tagRole(ctx context.Context, p awsapi.Params) (any, error) {
	tags, err := readTags(p, "Tags")
	if err != nil {
		return nil, err
	}
	var c checker
	c.tags(tags)
	if err := c.err(); err != nil {
		return nil, err
	}
	return nil, s.changeRole(ctx, p.Str("RoleName"), func(r *Role) error {
		r.Tags = mergeTags(r.Tags, tags)
		if len(r.Tags) > 50 {
			return errLimit("The number of tags has reached the maximum limit.")
		}
		return nil
	})
}

func (s *Service) untagRole(ctx context.Context, p awsapi.Params) (any, error) {
	keys := p.List("TagKeys")
	return nil, s.changeRole(ctx, p.Str("RoleName"), func(r *Role) error {
		r.Tags = slices.DeleteFunc(r.Tags, func(t Tag) bool { return slices.Contains(keys, t.Key) })
		return nil
	})
}

func (s *Service) listRoleTags(ctx context.Context, p awsapi.Params) (any, error) {
	r, _, err := s.roleParam(p.Str("RoleName"))
	if err != nil {
		return nil, err
	}
	return struct {
		Tags tagsXML `xml:"Tags"`
		listInfo
	}{Tags: tagsXML{Members: r.Tags}}, nil
}

// Inline policies.
