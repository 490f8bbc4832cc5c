package eventbus

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/pattern"
	"bridgeport/internal/schedule"
)

const ruleNamePattern = `[\.\-_A-Za-z0-9]+`

var ruleNameRE = regexp.MustCompile(`^` + ruleNamePattern + `$`)

type ruleInput struct {
	Name               *string `json:"Name"`
	ScheduleExpression *string `json:"ScheduleExpression"`
	EventPattern       *string `json:"EventPattern"`
	State              *string `json:"State"`
	Description        *string `json:"Description"`
	RoleArn            *string `json:"RoleArn"`
	Tags               []Tag   `json:"Tags"`
	EventBusName       *string `json:"EventBusName"`
	Force              bool    `json:"Force"`
}

type ruleOutput struct {
	Name               string  `json:"Name"`
	Arn                string  `json:"Arn"`
	EventPattern       *string `json:"EventPattern,omitempty"`
	ScheduleExpression *string `json:"ScheduleExpression,omitempty"`
	State              string  `json:"State"`
	Description        *string `json:"Description,omitempty"`
	RoleArn            *string `json:"RoleArn,omitempty"`
	EventBusName       string  `json:"EventBusName"`
	CreatedBy          string  `json:"CreatedBy,omitempty"`
	ManagedBy          string  `json:"ManagedBy,omitempty"`
}

func (s *Service) describe(r Rule) ruleOutput {
	return ruleOutput{Name: r.Name, Arn: r.Arn, EventPattern: r.EventPattern, ScheduleExpression: r.ScheduleExpression,
		State: r.State, Description: r.Description,
		RoleArn: r.RoleArn, EventBusName: r.Bus, CreatedBy: s.arns.account, ManagedBy: r.ManagedBy}
}

func validateRuleName(v *awsapi.Violations, name *string, path string) {
	validateName(v, name, path, true, 64, ruleNameRE, ruleNamePattern)
}

func notFoundRule(bus, name string) *awsapi.Error {
	return awsapi.Errorf(awsapi.CodeNotFound, "Rule %s does not exist on EventBus %s.", name, bus)
}

// ruleTarget resolves the Name and EventBusName of a request about one rule.
func (s *Service) ruleTarget(in *ruleInput) (bus, name string, err error) {
	var v awsapi.Violations
	validateRuleName(&v, in.Name, "name")
	if err := v.Err(); err != nil {
		return "", "", err
	}
	bus, err = s.resolveBus(in.EventBusName, "eventBusName")
	if err != nil {
		return "", "", err
	}
	return bus, *in.Name, nil
}

func (s *Service) putRule(ctx context.Context, body []byte) (any, error) {
	var in ruleInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	validateRuleName(&v, in.Name, "name")
	if in.ScheduleExpression != nil && len(*in.ScheduleExpression) > 256 {
		v.Add(*in.ScheduleExpression, "scheduleExpression", awsapi.MaxLen(256))
	}
	if in.EventPattern != nil && len(*in.EventPattern) > pattern.APIMaxLength {
		v.Add(*in.EventPattern, "eventPattern", awsapi.MaxLen(pattern.APIMaxLength))
	}
	if in.State != nil && *in.State != StateEnabled && *in.State != StateDisabled && *in.State != StateEnabledCloudTrail {
		v.Add(*in.State, "state", awsapi.InEnum(StateEnabled, StateDisabled, StateEnabledCloudTrail))
	}
	if in.Description != nil && len(*in.Description) > 512 {
		v.Add(*in.Description, "description", awsapi.MaxLen(512))
	}
	if in.RoleArn != nil && (len(*in.RoleArn) < 1 || len(*in.RoleArn) > 1600) {
		v.Add(*in.RoleArn, "roleArn", awsapi.MaxLen(1600))
	}
	validateTags(&v, in.Tags, "tags")
	if err := v.Err(); err != nil {
		return nil, err
	}
	bus, err := s.resolveBus(in.EventBusName, "eventBusName")
	if err != nil {
		return nil, err
	}
	name := *in.Name
	hasPattern := in.EventPattern != nil && *in.EventPattern != ""
	hasSchedule := in.ScheduleExpression != nil && *in.ScheduleExpression != ""
	switch {
	case !hasPattern && !hasSchedule:
		return nil, awsapi.Errorf(awsapi.CodeValidation, "Parameter(s) EventPattern or ScheduleExpression must be specified.")
	case hasSchedule && bus != defaultBus:
		return nil, awsapi.Errorf(awsapi.CodeValidation, "ScheduleExpression is supported only on the default event bus.")
	case hasSchedule:
		if _, err := schedule.Parse(*in.ScheduleExpression); err != nil {
			return nil, awsapi.Errorf(awsapi.CodeValidation, "Parameter ScheduleExpression is not valid.")
		}
	}
	if !hasPattern {
		in.EventPattern = nil
	}
	if !hasSchedule {
		in.ScheduleExpression = nil
	}
	var p *pattern.Pattern
	if hasPattern {
		var err error
		if p, err = pattern.CompileWithLimits(*in.EventPattern, pattern.Limits{MaxLength: s.quotas.PatternSize}); err != nil {
			var perr *pattern.Error
			if errors.As(err, &perr) {
				return nil, &awsapi.Error{Code: awsapi.CodeInvalidPattern, Message: perr.Error()}
			}
			return nil, err
		}
	}
	if _, _, ok := s.reg.getBus(bus); !ok {
		return nil, notFoundBus(bus)
	}
	state := StateEnabled
	if in.State != nil {
		state = *in.State
	}
	old, rev, exists := s.reg.getRule(bus, name)
	if exists && old.ManagedBy != "" {
		return nil, managedRuleError(old, "PutRule")
	}
	if !exists && strings.HasPrefix(name, archiveRulePrefix) {
		if _, _, ok := s.reg.getArchive(strings.TrimPrefix(name, archiveRulePrefix)); ok {
			// The archive's rule was deleted with Force: its name stays
			// the archive's.
			return nil, managedRuleError(Rule{Name: name}, "PutRule")
		}
	}
	_, rules, wildcards := s.reg.counts(bus)
	if !exists && rules >= s.quotas.RulesPerBus {
		return nil, limitExceeded()
	}
	if p != nil && p.HasWildcard() && !(exists && old.EventPattern != nil && hasWildcard(*old.EventPattern)) && wildcards >= s.quotas.WildcardRules {
		return nil, limitExceeded()
	}
	now := s.now().UTC()
	rule := Rule{Name: name, Bus: bus, Arn: s.arns.rule(bus, name), EventPattern: in.EventPattern, State: state,
		ScheduleExpression: in.ScheduleExpression, Description: in.Description, RoleArn: in.RoleArn, Tags: in.Tags, Created: now}
	if hasSchedule {
		rule.ScheduleSince = s.schedNow().UTC()
	}
	if exists {
		// An update replaces the rule's settings; its targets, tags and
		// creation time stay, and so does a schedule's countdown when the
		// expression is the same.
		rule.Targets, rule.Tags, rule.Created = old.Targets, old.Tags, old.Created
		if hasSchedule && old.ScheduleExpression != nil && *old.ScheduleExpression == *in.ScheduleExpression {
			rule.ScheduleSince = old.ScheduleSince
		}
	}
	if err := s.save(ctx, ruleKey(bus, name), rev, rule); err != nil {
		return nil, err
	}
	return struct {
		RuleArn string `json:"RuleArn"`
	}{rule.Arn}, nil
}

func (s *Service) describeRule(ctx context.Context, body []byte) (any, error) {
	var in ruleInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	bus, name, err := s.ruleTarget(&in)
	if err != nil {
		return nil, err
	}
	r, _, ok := s.reg.getRule(bus, name)
	if !ok {
		return nil, notFoundRule(bus, name)
	}
	return s.describe(r), nil
}

// deleteRule deletes a rule; deleting one that does not exist succeeds, as
// in AWS.
func (s *Service) deleteRule(ctx context.Context, body []byte) (any, error) {
	var in ruleInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	bus, name, err := s.ruleTarget(&in)
	if err != nil {
		return nil, err
	}
	r, rev, ok := s.reg.getRule(bus, name)
	if !ok {
		return struct{}{}, nil
	}
	if r.ManagedBy != "" {
		if !in.Force {
			return nil, managedRuleError(r, "DeleteRule")
		}
		if err := s.detachArchive(ctx, r, "rule"); err != nil {
			return nil, err
		}
		return struct{}{}, nil
	}
	// Force only matters for managed rules; as in AWS it does not delete
	// a rule with targets.
	if len(r.Targets) > 0 {
		return nil, awsapi.Errorf(awsapi.CodeValidation, "Rule can't be deleted since it has targets.")
	}
	if err := s.remove(ctx, ruleKey(bus, name), rev); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) setState(ctx context.Context, body []byte, state string) (any, error) {
	var in ruleInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	bus, name, err := s.ruleTarget(&in)
	if err != nil {
		return nil, err
	}
	r, rev, ok := s.reg.getRule(bus, name)
	if !ok {
		return nil, notFoundRule(bus, name)
	}
	if r.ManagedBy != "" {
		op := "DisableRule"
		if state == StateEnabled {
			op = "EnableRule"
		}
		return nil, managedRuleError(r, op)
	}
	if r.State == state || (state == StateEnabled && r.State == StateEnabledCloudTrail) {
		return struct{}{}, nil
	}
	r.State = state
	if err := s.save(ctx, ruleKey(bus, name), rev, r); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) enableRule(ctx context.Context, body []byte) (any, error) {
	return s.setState(ctx, body, StateEnabled)
}

func (s *Service) disableRule(ctx context.Context, body []byte) (any, error) {
	return s.setState(ctx, body, StateDisabled)
}

func (s *Service) listRules(ctx context.Context, body []byte) (any, error) {
	var in listInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	awsapi.ValidateNamePrefix(&v, in.NamePrefix, 64, ruleNamePattern)
	awsapi.ValidateList(&v, in.NextToken, in.Limit)
	if err := v.Err(); err != nil {
		return nil, err
	}
	bus, err := s.resolveBus(in.EventBusName, "eventBusName")
	if err != nil {
		return nil, err
	}
	if _, _, ok := s.reg.getBus(bus); !ok {
		return nil, notFoundBus(bus)
	}
	rules := map[string]Rule{}
	var names []string
	for _, r := range s.reg.listRules(bus) {
		if in.NamePrefix == nil || strings.HasPrefix(r.Name, *in.NamePrefix) {
			names = append(names, r.Name)
			rules[r.Name] = r
		}
	}
	page, next, err := awsapi.Paginate(names, in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		Rules     []ruleOutput `json:"Rules"`
		NextToken *string      `json:"NextToken,omitempty"`
	}{Rules: []ruleOutput{}, NextToken: next}
	for _, n := range page {
		d := s.describe(rules[n])
		d.CreatedBy = ""
		out.Rules = append(out.Rules, d)
	}
	return out, nil
}

func (s *Service) listRuleNamesByTarget(ctx context.Context, body []byte) (any, error) {
	var in listInput
	if err := awsapi.Decode(body, &in); err != nil {
		return nil, err
	}
	var v awsapi.Violations
	switch {
	case in.TargetArn == nil:
		v.Add(nil, "targetArn", awsapi.MustNotBeNull)
	case len(*in.TargetArn) < 1:
		v.Add(*in.TargetArn, "targetArn", awsapi.MinLen(1))
	case len(*in.TargetArn) > 1600:
		v.Add(*in.TargetArn, "targetArn", awsapi.MaxLen(1600))
	}
	awsapi.ValidateList(&v, in.NextToken, in.Limit)
	if err := v.Err(); err != nil {
		return nil, err
	}
	bus, err := s.resolveBus(in.EventBusName, "eventBusName")
	if err != nil {
		return nil, err
	}
	if _, _, ok := s.reg.getBus(bus); !ok {
		return nil, notFoundBus(bus)
	}
	var names []string
	for _, r := range s.reg.listRules(bus) {
		if slices.ContainsFunc(r.Targets, func(t Target) bool { return t.Arn == *in.TargetArn }) {
			names = append(names, r.Name)
		}
	}
	page, next, err := awsapi.Paginate(names, in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	if page == nil {
		page = []string{}
	}
	return struct {
		RuleNames []string `json:"RuleNames"`
		NextToken *string  `json:"NextToken,omitempty"`
	}{page, next}, nil
}
