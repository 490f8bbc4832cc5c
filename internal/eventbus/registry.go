package eventbus

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"bridgeport/internal/pattern"
	"bridgeport/internal/policy"
	"bridgeport/internal/store"
)

// registry is this node's view of the configuration: every bus and rule,
// kept current by watching the configuration bucket, with each bus's enabled
// rules compiled into one matcher. API reads and routing use it; writes go
// to the bucket and then wait until the registry has seen them, so a client
// reads its own writes.
//
// Safe for concurrent use: readers take the read lock; the watch goroutine
// applies changes under the write lock. Matchers are themselves safe to use
// while they change.
type registry struct {
	log *slog.Logger

	applied store.Applied // newest revision applied, advanced after the change is in

	mu    sync.RWMutex
	buses map[string]*busState
	// ruleAt finds a rule by its record's key, for deletes.
	ruleAt map[string]schedRef
	// objs holds the records of other kinds (replays, the schedule
	// lease) by key, decoded when read.
	objs store.Records
	// archives holds the archives by name; each adds its managed rule to
	// its bus.
	archives map[string]archiveState
	arns     arns
	// loaded is set once the initial records are in; until then matchers
	// are not maintained rule by rule but built once, in loaded.
	loaded bool

	// schedChanged holds the scheduled rules changed since the scheduler
	// last looked (takeScheduleChanges); schedWake tells it.
	schedChanged map[schedRef]struct{}
	schedWake    chan struct{}
}

type busState struct {
	bus     Bus
	rev     uint64
	policy  *policy.Policy // the bus's policy, parsed once; nil for none
	rules   map[string]*ruleState
	matcher *pattern.Matcher // the enabled rules with a pattern
	// The user's rules (not managed ones), and those with wildcards: what
	// the quotas count, kept by put.
	userRules, wildcards int
}

// put sets a rule of b, or removes it (r nil).
func (b *busState) put(name string, r *ruleState) {
	if old := b.rules[name]; old != nil {
		b.count(old, -1)
		delete(b.rules, name)
	}
	if r != nil {
		b.rules[name] = r
		b.count(r, 1)
	}
}

func (b *busState) count(r *ruleState, d int) {
	if r.rule.ManagedBy != "" {
		return // managed rules do not count against the quotas
	}
	b.userRules += d
	if r.wildcard {
		b.wildcards += d
	}
}

type archiveState struct {
	archive Archive
	rev     uint64
}

type ruleState struct {
	rule     Rule
	rev      uint64
	pat      *pattern.Pattern // the compiled EventPattern; nil for none
	wildcard bool             // the pattern uses the wildcard operator
}

func newRegistry(log *slog.Logger, arns arns) *registry {
	return &registry{log: log, arns: arns, buses: make(map[string]*busState), ruleAt: make(map[string]schedRef), objs: store.Records{Log: log},
		archives: make(map[string]archiveState), schedChanged: make(map[schedRef]struct{}), schedWake: make(chan struct{}, 1)}
}

// bus returns the state of a bus, creating a placeholder for rules that
// arrive before their bus (the watch delivers in revision order, but a bus
// may be deleted and its rules linger).
func (g *registry) busLocked(name string) *busState {
	b := g.buses[name]
	if b == nil {
		b = &busState{rules: make(map[string]*ruleState), matcher: pattern.NewMatcher()}
		g.buses[name] = b
	}
	return b
}

// apply records one change from the configuration bucket.
func (g *registry) apply(e store.Entry) {
	g.mu.Lock()
	defer g.applied.Advance(e.Revision) // runs after the unlock
	defer g.mu.Unlock()
	switch keyKind(e.Key) {
	case "bus":
		g.applyBus(e)
	case "rule":
		g.applyRule(e)
	case "archive":
		g.applyArchive(e)
	case "conn", "dest":
		// Connections and API destinations: the connection service
		// keeps them.
	default:
		g.objs.Apply(e)
	}
}

// getObj decodes the record at key into v.
func (g *registry) getObj(key string, v any) (uint64, bool) { return g.objs.Get(key, v) }

// listObjs returns the keys of the records whose keys start with prefix,
// sorted.
func (g *registry) listObjs(prefix string) []string { return g.objs.Keys(prefix) }

func (g *registry) applyBus(e store.Entry) {
	if e.Deleted {
		for name, b := range g.buses {
			if busKey(name) == e.Key {
				b.rev = 0
				if len(b.rules) == 0 {
					delete(g.buses, name)
				}
			}
		}
		return
	}
	var bus Bus
	if err := json.Unmarshal(e.Value, &bus); err != nil {
		g.log.Error("unreadable bus record", "key", e.Key, "error", err)
		return
	}
	b := g.busLocked(bus.Name)
	b.bus, b.rev, b.policy = bus, e.Revision, nil
	if bus.Policy != "" {
		// Validated when written; one that no longer parses is no
		// policy (the callers' own policies decide), as if unset.
		p, err := policy.ParseKind(bus.Policy, policy.ResourcePolicy)
		if err != nil {
			g.log.Error("stored bus policy does not parse; it is ignored", "bus", bus.Name, "error", err)
		}
		b.policy = p
	}
}

func (g *registry) applyRule(e store.Entry) {
	if e.Deleted {
		ref, ok := g.ruleAt[e.Key]
		if !ok {
			return
		}
		delete(g.ruleAt, e.Key)
		if b := g.buses[ref.bus]; b != nil {
			if r := b.rules[ref.name]; r != nil {
				g.scheduleChanged(r.rule)
				b.put(ref.name, nil)
				if g.loaded {
					b.matcher.Delete(ref.name)
				}
			}
		}
		return
	}
	var rule Rule
	if err := json.Unmarshal(e.Value, &rule); err != nil {
		g.log.Error("unreadable rule record", "key", e.Key, "error", err)
		return
	}
	b := g.busLocked(rule.Bus)
	if old := b.rules[rule.Name]; old != nil {
		g.scheduleChanged(old.rule)
	}
	g.scheduleChanged(rule)
	g.ruleAt[e.Key] = schedRef{rule.Bus, rule.Name}
	p := g.compile(rule)
	b.put(rule.Name, &ruleState{rule: rule, rev: e.Revision, pat: p, wildcard: p != nil && p.HasWildcard()})
	if !g.loaded {
		return
	}
	if p != nil && rule.enabled() {
		b.matcher.Add(rule.Name, p)
	} else {
		b.matcher.Delete(rule.Name)
	}
}

// scheduleChanged tells the scheduler about a change to a rule, if the
// rule has a schedule. Called with the lock held.
func (g *registry) scheduleChanged(r Rule) {
	if r.ScheduleExpression == nil {
		return
	}
	g.schedChanged[schedRef{r.Bus, r.Name}] = struct{}{}
	select {
	case g.schedWake <- struct{}{}:
	default:
	}
}

// takeScheduleChanges returns the scheduled rules changed since the last
// call.
func (g *registry) takeScheduleChanges() []schedRef {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.schedChanged) == 0 {
		return nil
	}
	out := make([]schedRef, 0, len(g.schedChanged))
	for ref := range g.schedChanged {
		out = append(out, ref)
	}
	clear(g.schedChanged)
	return out
}

// scheduledRules returns the rules that have a schedule.
func (g *registry) scheduledRules() []Rule {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []Rule
	for _, b := range g.buses {
		for _, r := range b.rules {
			if r.rule.ScheduleExpression != nil {
				out = append(out, r.rule)
			}
		}
	}
	return out
}

// ruleByArn returns a rule by its ARN.
func (g *registry) ruleByArn(arns arns, arn string) (Rule, bool) {
	bus, name, ok := arns.resource(arn)
	if !ok || name == "" {
		return Rule{}, false
	}
	r, _, ok := g.getRule(bus, name)
	return r, ok && r.Arn == arn
}

// applyArchive records an archive and puts its managed rule on its bus,
// or takes both away.
func (g *registry) applyArchive(e store.Entry) {
	for name, a := range g.archives {
		if archiveKey(name) == e.Key {
			delete(g.archives, name)
			g.setManagedRule(a.archive.Bus, archiveRulePrefix+name, nil, 0)
		}
	}
	if e.Deleted {
		return
	}
	var a Archive
	if err := json.Unmarshal(e.Value, &a); err != nil {
		g.log.Error("unreadable archive record", "key", e.Key, "error", err)
		return
	}
	g.archives[a.Name] = archiveState{archive: a, rev: e.Revision}
	if r, ok := a.managedRule(g.arns); ok {
		g.setManagedRule(a.Bus, r.Name, &r, e.Revision)
	}
}

// setManagedRule puts a managed rule on a bus, or removes it (r nil). A
// rule of the user's with the same name is left alone: CreateArchive and
// PutRule keep the two apart.
func (g *registry) setManagedRule(bus, name string, r *Rule, rev uint64) {
	b := g.busLocked(bus)
	if old := b.rules[name]; old != nil && old.rule.ManagedBy == "" {
		return
	}
	if r == nil {
		b.put(name, nil)
		if g.loaded {
			b.matcher.Delete(name)
		}
		if b.rev == 0 && len(b.rules) == 0 {
			delete(g.buses, bus)
		}
		return
	}
	p := g.compile(*r)
	b.put(name, &ruleState{rule: *r, rev: rev, pat: p})
	if !g.loaded {
		return
	}
	if p != nil && r.enabled() {
		b.matcher.Add(name, p)
	} else {
		b.matcher.Delete(name)
	}
}

// getArchive returns an archive.
func (g *registry) getArchive(name string) (Archive, uint64, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	a, ok := g.archives[name]
	return a.archive, a.rev, ok
}

// listArchives returns the archives, sorted by name.
func (g *registry) listArchives() []Archive {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]Archive, 0, len(g.archives))
	for _, a := range g.archives {
		out = append(out, a.archive)
	}
	slices.SortFunc(out, func(a, b Archive) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// compile returns a rule's pattern, or nil.
func (g *registry) compile(rule Rule) *pattern.Pattern {
	if rule.EventPattern != nil {
		p, err := pattern.CompileWithLimits(*rule.EventPattern, pattern.Limits{MaxLength: pattern.APIMaxLength})
		if err != nil {
			// Patterns are validated before they are stored; one that no
			// longer compiles matches nothing.
			g.log.Error("stored pattern does not compile", "bus", rule.Bus, "rule", rule.Name, "error", err)
			return nil
		}
		return p
	}
	return nil
}

// load builds every bus's matcher once the initial records are in.
func (g *registry) load() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.buses {
		patterns := make(map[string]*pattern.Pattern, len(b.rules))
		for name, r := range b.rules {
			if r.rule.enabled() && r.pat != nil {
				patterns[name] = r.pat
			}
		}
		b.matcher.Replace(patterns)
	}
	g.loaded = true
}

// busPolicy returns a bus's parsed policy, nil for none.
func (g *registry) busPolicy(name string) *policy.Policy {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if b := g.buses[name]; b != nil && b.rev != 0 {
		return b.policy
	}
	return nil
}

// getBus returns a bus that exists.
func (g *registry) getBus(name string) (Bus, uint64, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	b := g.buses[name]
	if b == nil || b.rev == 0 {
		return Bus{}, 0, false
	}
	return b.bus, b.rev, true
}

// listBuses returns the buses, sorted by name.
func (g *registry) listBuses() []Bus {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []Bus
	for _, b := range g.buses {
		if b.rev != 0 {
			out = append(out, b.bus)
		}
	}
	slices.SortFunc(out, func(a, b Bus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// getRule returns a rule of a bus.
func (g *registry) getRule(bus, name string) (Rule, uint64, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	b := g.buses[bus]
	if b == nil {
		return Rule{}, 0, false
	}
	r := b.rules[name]
	if r == nil {
		return Rule{}, 0, false
	}
	return r.rule, r.rev, true
}

// listRules returns the rules of a bus, sorted by name.
func (g *registry) listRules(bus string) []Rule {
	g.mu.RLock()
	defer g.mu.RUnlock()
	b := g.buses[bus]
	if b == nil {
		return nil
	}
	out := make([]Rule, 0, len(b.rules))
	for _, r := range b.rules {
		out = append(out, r.rule)
	}
	slices.SortFunc(out, func(a, b Rule) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// counts returns the number of buses, and the rules and wildcard rules of
// one bus.
func (g *registry) counts(bus string) (buses, rules, wildcards int) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	for _, b := range g.buses {
		if b.rev != 0 {
			buses++
		}
	}
	if b := g.buses[bus]; b != nil {
		rules, wildcards = b.userRules, b.wildcards
	}
	return buses, rules, wildcards
}

func hasWildcard(src string) bool {
	p, err := pattern.CompileWithLimits(src, pattern.Limits{MaxLength: pattern.APIMaxLength})
	return err == nil && p.HasWildcard()
}

// match returns the enabled rules of bus that match event. It stops with
// ctx's error when ctx ends.
func (g *registry) match(ctx context.Context, bus string, event []byte) ([]Rule, error) {
	g.mu.RLock()
	b := g.buses[bus]
	var m *pattern.Matcher
	if b != nil {
		m = b.matcher
	}
	g.mu.RUnlock()
	if m == nil {
		return nil, nil
	}
	names, err := m.AppendMatchesContext(ctx, nil, event)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]Rule, 0, len(names))
	for _, n := range names {
		if r := b.rules[n]; r != nil && r.rule.enabled() {
			out = append(out, r.rule)
		}
	}
	return out, nil
}
