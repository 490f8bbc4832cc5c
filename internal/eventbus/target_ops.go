package eventbus

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

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
	if r.ManagedBy != "" {
		return nil, managedRuleError(r, "PutTargets")
	}
	out := targetsOutput{FailedEntries: []failedEntry{}}
	targets := slices.Clone(r.Targets)
	for _, t := range in.Targets {
		if fe, err := s.checkDeadLetter(ctx, &t); err != nil {
			return nil, err
		} else if fe != nil {
			out.FailedEntries = append(out.FailedEntries, *fe)
			continue
		}
		if i := slices.IndexFunc(targets, func(x Target) bool { return x.Id == t.Id }); i >= 0 {
			targets[i] = t
		} else {
			targets = append(targets, t)
		}
	}
	if len(targets) > s.quotas.TargetsPerRule {
		return nil, limitExceeded()
	}
	out.FailedEntryCount = len(out.FailedEntries)
	if out.FailedEntryCount == len(in.Targets) {
		return out, nil
	}
	r.Targets = targets
	if err := s.save(ctx, ruleKey(r.Bus, r.Name), rev, r); err != nil {
		return nil, err
	}
	return out, nil
}

// checkDeadLetter checks a target's DeadLetterConfig: the queue must be a
// standard queue of this account, in this region, that exists. A target
// that fails is reported as a failed entry and not stored. AWS's wording
// for these entries is not documented: the messages are bridgeport's
// (UNVERIFIED).
func (s *Service) checkDeadLetter(ctx context.Context, t *Target) (*failedEntry, error) {
	if t.DeadLetterConfig == nil || t.DeadLetterConfig.Arn == nil {
		return nil, nil
	}
	arn := *t.DeadLetterConfig.Arn
	fail := func(format string, args ...any) (*failedEntry, error) {
		return &failedEntry{TargetId: t.Id, ErrorCode: awsapi.CodeValidation, ErrorMessage: fmt.Sprintf(format, args...)}, nil
	}
	parts := strings.SplitN(arn, ":", 6)
	switch {
	case parts[3] != s.arns.region:
		return fail("The dead-letter queue %s must be in the same Region as the rule (%s).", arn, s.arns.region)
	case parts[4] != s.arns.account:
		return fail("The dead-letter queue %s must be in account %s.", arn, s.arns.account)
	}
	if s.queues == nil {
		return fail("The dead-letter queue %s does not exist.", arn)
	}
	exists, fifo, err := s.queues.Exists(ctx, arn)
	switch {
	case err != nil:
		return nil, err
	case !exists:
		return fail("The dead-letter queue %s does not exist.", arn)
	case fifo:
		return fail("The dead-letter queue %s is a FIFO queue; only standard queues can be dead-letter queues.", arn)
	}
	return nil, nil
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
	if r.ManagedBy != "" {
		// The whole call fails without Force, as in AWS (not a failed
		// entry).
		if !in.Force {
			return nil, managedRuleError(r, "RemoveTargets")
		}
		if slices.ContainsFunc(r.Targets, func(t Target) bool { return slices.Contains(in.Ids, t.Id) }) {
			if err := s.detachArchive(ctx, r, "targets"); err != nil {
				return nil, err
			}
		}
		return targetsOutput{FailedEntries: []failedEntry{}}, nil
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
	awsapi.ValidateList(&v, in.NextToken, in.Limit)
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
	page, next, err := awsapi.Paginate(sorted, in.NextToken, in.Limit)
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
