package pattern

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Matcher matches events against a set of named patterns at once, such as
// the rules of one event bus.
//
// Matcher is safe for concurrent use. Match reads an immutable machine
// through an atomic pointer and never blocks; Add, Delete and Replace build a
// new machine from the whole set, under a mutex that serializes writers, and
// publish it atomically. A match that started before a change completes
// against the old set. Building costs time linear in the size of all
// patterns, so load many patterns with one Replace.
type Matcher struct {
	mu    sync.Mutex // serializes writers
	rules map[string]*Pattern
	cur   atomic.Pointer[machine]
	pool  sync.Pool // *matchScratch
}

// NewMatcher returns a Matcher with no patterns.
func NewMatcher() *Matcher {
	m := &Matcher{rules: make(map[string]*Pattern)}
	m.cur.Store(buildMachine(nil, nil))
	m.pool.New = func() any { return new(matchScratch) }
	return m
}

// Add adds a named pattern, replacing any pattern with the same name.
func (m *Matcher) Add(name string, p *Pattern) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rules[name] = p
	m.rebuild()
}

// Delete removes a named pattern. Afterwards the matcher answers exactly as
// if it had never been added.
func (m *Matcher) Delete(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rules[name]; !ok {
		return
	}
	delete(m.rules, name)
	m.rebuild()
}

// Replace sets the whole set of patterns at once.
func (m *Matcher) Replace(rules map[string]*Pattern) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rules = maps.Clone(rules)
	if m.rules == nil {
		m.rules = make(map[string]*Pattern)
	}
	m.rebuild()
}

// Len returns the number of patterns.
func (m *Matcher) Len() int {
	return len(m.cur.Load().names)
}

func (m *Matcher) rebuild() {
	names := slices.Sorted(maps.Keys(m.rules))
	patterns := make([]*Pattern, len(names))
	for i, n := range names {
		patterns[i] = m.rules[n]
	}
	m.cur.Store(buildMachine(names, patterns))
}

// Match returns the names of the patterns that match the event, a JSON
// object, in sorted order. A malformed event is an *EventError.
func (m *Matcher) Match(event []byte) ([]string, error) {
	return m.AppendMatches(nil, event)
}

// AppendMatches appends the names of the matching patterns to dst, in sorted
// order, and returns it. It allocates nothing when dst has room.
func (m *Matcher) AppendMatches(dst []string, event []byte) ([]string, error) {
	return m.AppendMatchesContext(context.Background(), dst, event)
}

// AppendMatchesContext is AppendMatches, stopped with ctx's error when ctx
// ends. Matching takes time polynomial in the size of the event whatever
// the patterns, but a large event against many patterns can still take a
// while.
func (m *Matcher) AppendMatchesContext(ctx context.Context, dst []string, event []byte) ([]string, error) {
	mc := m.cur.Load()
	ms := m.pool.Get().(*matchScratch)
	defer m.pool.Put(ms)
	if err := ms.run(ctx, mc, event); err != nil {
		return dst, err
	}
	for _, r := range ms.hits {
		dst = append(dst, mc.names[r])
	}
	return dst, nil
}
