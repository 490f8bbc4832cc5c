package iam

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/policy"
)

// maxVersions is how many versions a managed policy keeps, as in IAM.
const maxVersions = 5

// policyByArn returns the managed policy an ARN names.
func (s *Service) policyByArn(arn *string) (Policy, uint64, error) {
	var c checker
	c.arn(arn, "policyArn")
	if err := c.err(); err != nil {
		return Policy{}, 0, err
	}
	prefix := "arn:aws:iam::" + s.account + ":policy/"
	rest, ok := strings.CutPrefix(*arn, prefix)
	if !ok {
		if strings.HasPrefix(*arn, "arn:aws:iam::") {
			return Policy{}, 0, errNoSuchEntity("Policy %s does not exist or is not attachable.", *arn)
		}
		return Policy{}, 0, errInvalidInput("ARN %s is not valid.", *arn)
	}
	name := rest[strings.LastIndexByte(rest, '/')+1:]
	pol, rev, found := s.getPolicy(name)
	if !found || s.policyArn(&pol) != *arn {
		return Policy{}, 0, errNoSuchEntity("Policy %s does not exist or is not attachable.", *arn)
	}
	return pol, rev, nil
}

// attachments counts the roles, users and groups a managed policy is
// attached to.
func (s *Service) attachments(arn string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, st := range s.roles {
		if slices.Contains(st.role.Attached, arn) {
			n++
		}
	}
	for _, st := range s.users {
		if slices.Contains(st.user.Attached, arn) {
			n++
		}
	}
	for _, st := range s.groups {
		if slices.Contains(st.group.Attached, arn) {
			n++
		}
	}
	return n
}

func (s *Service) createPolicy(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	name, doc, path, desc := p.Str("PolicyName"), p.Str("PolicyDocument"), p.Str("Path"), p.Str("Description")
	c.policyName(name)
	c.document(doc, "policyDocument")
	c.str(path, "path", false, 1, 512, policyPathRE, `((/[A-Za-z0-9\.,\+@=_-]+)*)/`)
	c.str(desc, "description", false, 0, 1000, nil, "")
	tags, err := readTags(p, "Tags")
	if err != nil {
		return nil, err
	}
	c.tags(tags)
	if err := c.err(); err != nil {
		return nil, err
	}
	if _, err := malformed(*doc, policy.IdentityPolicy); err != nil {
		return nil, err
	}
	if _, _, ok := s.getPolicy(*name); ok {
		return nil, errExists("A policy called %s already exists. Duplicate names are not allowed.", *name)
	}
	now := time.Now().UTC()
	pol := Policy{Name: *name, ID: newID("ANPA"), Path: "/", Description: desc, Created: now, Updated: now,
		DefaultVersion: "v1", NextVersion: 2, Versions: []PolicyVersion{{ID: "v1", Document: *doc, Created: now}}, Tags: tags}
	if path != nil {
		pol.Path = *path
	}
	if err := s.save(ctx, policyKey(pol.Name), 0, &pol); err != nil {
		if aerr, ok := err.(*awsapi.Error); ok && aerr.Code == "ConcurrentModification" {
			return nil, errExists("A policy called %s already exists. Duplicate names are not allowed.", *name)
		}
		return nil, err
	}
	return struct {
		Policy policyXML `xml:"Policy"`
	}{s.policyXML(&pol, true)}, nil
}

func (s *Service) getPolicyOp(ctx context.Context, p awsapi.Params) (any, error) {
	pol, _, err := s.policyByArn(p.Str("PolicyArn"))
	if err != nil {
		return nil, err
	}
	return struct {
		Policy policyXML `xml:"Policy"`
	}{s.policyXML(&pol, true)}, nil
}

// version returns one version of a policy.
func (s *Service) version(p awsapi.Params) (Policy, *PolicyVersion, uint64, error) {
	pol, rev, err := s.policyByArn(p.Str("PolicyArn"))
	if err != nil {
		return Policy{}, nil, 0, err
	}
	var c checker
	id := p.Str("VersionId")
	c.str(id, "versionId", true, 1, 128, versionRE, `v[1-9][0-9]*(\.[A-Za-z0-9-]*)?`)
	if err := c.err(); err != nil {
		return Policy{}, nil, 0, err
	}
	for i := range pol.Versions {
		if pol.Versions[i].ID == *id {
			return pol, &pol.Versions[i], rev, nil
		}
	}
	return Policy{}, nil, 0, errNoSuchEntity("Policy %s version %s does not exist or is not attachable.", s.policyArn(&pol), *id)
}

func (s *Service) getPolicyVersion(ctx context.Context, p awsapi.Params) (any, error) {
	pol, v, _, err := s.version(p)
	if err != nil {
		return nil, err
	}
	return struct {
		PolicyVersion versionXML `xml:"PolicyVersion"`
	}{versionOut(&pol, v, true)}, nil
}

func (s *Service) createPolicyVersion(ctx context.Context, p awsapi.Params) (any, error) {
	pol, rev, err := s.policyByArn(p.Str("PolicyArn"))
	if err != nil {
		return nil, err
	}
	var c checker
	doc := p.Str("PolicyDocument")
	c.document(doc, "policyDocument")
	if err := c.err(); err != nil {
		return nil, err
	}
	if _, err := malformed(*doc, policy.IdentityPolicy); err != nil {
		return nil, err
	}
	if len(pol.Versions) >= maxVersions {
		return nil, errLimit("A managed policy can have up to %d versions. Before you create a new version, you must delete an existing version.", maxVersions)
	}
	now := time.Now().UTC()
	v := PolicyVersion{ID: "v" + strconv.Itoa(pol.NextVersion), Document: *doc, Created: now}
	pol.NextVersion++
	pol.Versions = append(pol.Versions, v)
	if p.Bool("SetAsDefault") {
		pol.DefaultVersion = v.ID
	}
	pol.Updated = now
	if err := s.save(ctx, policyKey(pol.Name), rev, &pol); err != nil {
		return nil, err
	}
	return struct {
		PolicyVersion versionXML `xml:"PolicyVersion"`
	}{versionOut(&pol, &v, false)}, nil
}

func (s *Service) listPolicyVersions(ctx context.Context, p awsapi.Params) (any, error) {
	pol, _, err := s.policyByArn(p.Str("PolicyArn"))
	if err != nil {
		return nil, err
	}
	out := struct {
		Versions struct {
			Members []versionXML `xml:"member"`
		} `xml:"Versions"`
		listInfo
	}{}
	out.Versions.Members = []versionXML{}
	for i := len(pol.Versions) - 1; i >= 0; i-- {
		out.Versions.Members = append(out.Versions.Members, versionOut(&pol, &pol.Versions[i], false))
	}
	return out, nil
}

func (s *Service) deletePolicyVersion(ctx context.Context, p awsapi.Params) (any, error) {
	pol, v, rev, err := s.version(p)
	if err != nil {
		return nil, err
	}
	if v.ID == pol.DefaultVersion {
		return nil, errConflict("Cannot delete the default version of a policy.")
	}
	id := v.ID
	pol.Versions = slices.DeleteFunc(pol.Versions, func(x PolicyVersion) bool { return x.ID == id })
	return nil, s.save(ctx, policyKey(pol.Name), rev, &pol)
}

func (s *Service) setDefaultPolicyVersion(ctx context.Context, p awsapi.Params) (any, error) {
	pol, v, rev, err := s.version(p)
	if err != nil {
		return nil, err
	}
	pol.DefaultVersion = v.ID
	pol.Updated = time.Now().UTC()
	return nil, s.save(ctx, policyKey(pol.Name), rev, &pol)
}

func (s *Service) listPolicies(ctx context.Context, p awsapi.Params) (any, error) {
	var c checker
	max, err := c.maxItems(p)
	if err != nil {
		return nil, err
	}
	scope := p.Str("Scope")
	if scope != nil && *scope != "All" && *scope != "AWS" && *scope != "Local" {
		c.v.Add(*scope, "scope", awsapi.InEnum("All", "AWS", "Local"))
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	prefix, onlyAttached := p.Str("PathPrefix"), p.Bool("OnlyAttached")
	s.mu.RLock()
	byName := map[string]Policy{}
	for _, st := range s.policies {
		if prefix != nil && !strings.HasPrefix(st.policy.Path, *prefix) {
			continue
		}
		byName[st.policy.Name] = st.policy
	}
	s.mu.RUnlock()
	if scope != nil && *scope == "AWS" {
		clear(byName) // bridgeport has no AWS managed policies
	}
	if onlyAttached {
		maps.DeleteFunc(byName, func(_ string, pol Policy) bool { return s.attachments(s.policyArn(&pol)) == 0 })
	}
	list, info := pageOf(byName, p.Str("Marker"), max, func(_ string, pol *Policy) policyXML { return s.policyXML(pol, false) })
	return struct {
		Policies members[policyXML] `xml:"Policies"`
		listInfo
	}{list, info}, nil
}

func (s *Service) deletePolicy(ctx context.Context, p awsapi.Params) (any, error) {
	pol, rev, err := s.policyByArn(p.Str("PolicyArn"))
	if err != nil {
		return nil, err
	}
	if s.attachments(s.policyArn(&pol)) > 0 {
		return nil, errConflict("Cannot delete a policy attached to entities.")
	}
	if len(pol.Versions) > 1 {
		return nil, errConflict("This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.")
	}
	return nil, s.remove(ctx, policyKey(pol.Name), rev)
}
