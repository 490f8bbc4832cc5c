package eventbus

import (
	"time"

	"bridgeport/internal/store"
)

// TargetRef names one target of one rule.
type TargetRef struct {
	Bus, Rule, RuleArn, TargetID, TargetArn string
}

// Targets lists every target of every rule, for metrics and diagnostics.
func (s *Service) Targets() []TargetRef {
	var out []TargetRef
	for _, b := range s.reg.listBuses() {
		for _, r := range s.reg.listRules(b.Name) {
			for _, t := range r.Targets {
				out = append(out, TargetRef{Bus: r.Bus, Rule: r.Name, RuleArn: r.Arn, TargetID: t.Id, TargetArn: t.Arn})
			}
		}
	}
	return out
}

// TargetKeys maps the store's TargetKey of every target to the target.
func (s *Service) TargetKeys() map[string]TargetRef {
	out := map[string]TargetRef{}
	for _, t := range s.Targets() {
		out[store.TargetKey(t.RuleArn, t.TargetID)] = t
	}
	return out
}

// LastMatched returns when this node last routed an event that matched the
// rule, if it has since it started.
func (s *Service) LastMatched(ruleArn string) (time.Time, bool) {
	v, ok := s.lastMatch.Load(ruleArn)
	if !ok {
		return time.Time{}, false
	}
	return v.(time.Time), true
}

// Rule returns a rule that exists.
func (s *Service) Rule(bus, name string) (Rule, bool) {
	r, _, ok := s.reg.getRule(bus, name)
	return r, ok
}
