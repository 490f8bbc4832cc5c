package eventbus

import (
	"context"
	"slices"
	"strconv"

	"bridgeport/internal/awsapi"
)

type targetsInput struct {
	Rule         *string  `json:"Rule"`
	EventBusName *string  `json:"EventBusName"`
	Targets      []Target `json:"Targets"`
	Ids          []string `json:"Ids"`
	Force        bool     `json:"Force"`
	NextToken    *string  `json:"NextToken"`
	Limit        *int     `json:"Limit"`
}

type failedEntry struct {
	TargetId     string `json:"TargetId"`
	ErrorCode    string `json:"ErrorCode"`
	ErrorMessage string `json:"ErrorMessage"`
}

type targetsOutput struct {
	FailedEntryCount int           `json:"FailedEntryCount"`
	FailedEntries    []failedEntry `json:"FailedEntries"`
}

// rule resolves the Rule and EventBusName of a targets request to an
// existing rule.
func (s *Service) ruleOf(in *targetsInput) (Rule, uint64, error) {
	var v awsapi.Violations
	validateRuleName(&v, in.Rule, "rule")
	if err := v.Err(); err != nil {
		return Rule{}, 0, err
	}
	bus, err := s.resolveBus(in.EventBusName, "eventBusName")
	if err != nil {
		return Rule{}, 0, err
	}
	r, rev, ok := s.reg.getRule(bus, *in.Rule)
	if !ok {
		return Rule{}, 0, notFoundRule(bus, *in.Rule)
	}
	return r, rev, nil
}

// putTargets adds targets to a rule or replaces those with the same Id.
// Every target is validated before any is stored; a request that breaks a
// constraint changes nothing.
func (s *Service) putTargets(ctx context.Context, body []byte) (any, error) {
	var in targetsInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateRuleName(&v, in.Rule, "rule")
	switch {
	case in.Targets == nil:
		v.Add(nil, "targets", awsapi.MustNotBeNull)
	case len(in.Targets) < 1:
		v.Add("[]", "targets", awsapi.MinLen(1))
	case len(in.Targets) > 100:
		v.Add(len(in.Targets), "targets", awsapi.MaxLen(100))
	}
	validateTargetShapes(in.Targets, &v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	for i := range in.Targets {
		if err := checkTarget(&in.Targets[i]); err != nil {
			return nil, err
		}
	}
	r, rev, err := s.ruleOf(&in)
	if err != nil {
		return nil, err
	}
	targets := slices.Clone(r.Targets)
	for _, t := range in.Targets {
		if i := slices.IndexFunc(targets, func(x Target) bool { return x.Id == t.Id }); i >= 0 {
			targets[i] = t
		} else {
			targets = append(targets, t)
		}
	}
	if len(targets) > s.quotas.TargetsPerRule {
		return nil, limitExceeded()
	}
	r.Targets = targets
	if err := s.save(ctx, ruleKey(r.Bus, r.Name), rev, r); err != nil {
		return nil, err
	}
	return targetsOutput{FailedEntries: []failedEntry{}}, nil
}

// removeTargets removes targets from a rule. Ids the rule does not have are
// ignored, as in AWS.
func (s *Service) removeTargets(ctx context.Context, body []byte) (any, error) {
	var in targetsInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateRuleName(&v, in.Rule, "rule")
	switch {
	case in.Ids == nil:
		v.Add(nil, "ids", awsapi.MustNotBeNull)
	case len(in.Ids) < 1:
		v.Add("[]", "ids", awsapi.MinLen(1))
	case len(in.Ids) > 100:
		v.Add(len(in.Ids), "ids", awsapi.MaxLen(100))
	}
	for i, id := range in.Ids {
		p := "ids." + strconv.Itoa(i+1) + ".member"
		switch {
		case len(id) < 1:
			v.Add(id, p, awsapi.MinLen(1))
		case len(id) > 64:
			v.Add(id, p, awsapi.MaxLen(64))
		case !ruleNameRE.MatchString(id):
			v.Add(id, p, awsapi.MatchPattern(ruleNamePattern))
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	r, rev, err := s.ruleOf(&in)
	if err != nil {
		return nil, err
	}
	kept := slices.DeleteFunc(slices.Clone(r.Targets), func(t Target) bool { return slices.Contains(in.Ids, t.Id) })
	if len(kept) != len(r.Targets) {
		r.Targets = kept
		if err := s.save(ctx, ruleKey(r.Bus, r.Name), rev, r); err != nil {
			return nil, err
		}
	}
	return targetsOutput{FailedEntries: []failedEntry{}}, nil
}

func (s *Service) listTargetsByRule(ctx context.Context, body []byte) (any, error) {
	var in targetsInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateRuleName(&v, in.Rule, "rule")
	validateList(&v, in.NextToken, in.Limit)
	if err := v.Err(); err != nil {
		return nil, err
	}
	r, _, err := s.ruleOf(&in)
	if err != nil {
		return nil, err
	}
	// Pages are cut by target id; within a page, targets keep the order in
	// which they were added.
	ids := make([]string, len(r.Targets))
	for i, t := range r.Targets {
		ids[i] = t.Id
	}
	sorted := slices.Sorted(slices.Values(ids))
	page, next, err := paginate(sorted, in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		Targets   []Target `json:"Targets"`
		NextToken *string  `json:"NextToken,omitempty"`
	}{Targets: []Target{}, NextToken: next}
	for _, t := range r.Targets {
		if slices.Contains(page, t.Id) {
			out.Targets = append(out.Targets, t)
		}
	}
	return out, nil
}
