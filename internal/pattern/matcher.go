package pattern

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Matcher matches events against a set of named patterns at once, such as
// the rules of one event bus.
//
// Matcher is safe for concurrent use. Match never blocks: it reads an
// immutable set of machines through an atomic pointer, and a match that
// started before a change completes against the set as it was.
//
// A change costs what it changes, not the size of the set. The patterns
// live in levels, each a machine (machine.go) built once and never changed:
// a few large levels built in the background, and a small level that holds
// the latest changes and is rebuilt at each change (at most smallMax
// patterns, so in well under a millisecond). A pattern replaced or deleted
// in a large level is marked dead there, a bit in a copy of the level's
// set, and its new version goes to the small level. When the small level is
// full it becomes a large one and a new small level begins; a background
// compaction merges large levels so that there are few (see plan), and
// once the set has been quiet for settleAfter, merges everything into one
// level again, which is what a match costs least against. Every level is
// built over one trie of field paths that only grows between compactions,
// so an event is scanned once for all levels.
type Matcher struct {
	mu    sync.Mutex // serializes changes and the installing of compactions
	rules map[string]version
	small map[string]version // the small level's patterns
	seq   uint64             // the number of the latest change
	// settled is the change after which the set was last merged into one
	// level over a trie of only the paths in use: no settling is due
	// while it is seq.
	settled uint64
	epoch   uint64 // bumped by Replace: a compaction begun before it is dropped

	ids        uint64        // the last level id given out
	settle     time.Duration // settleAfter, or shorter in tests
	lastChange time.Time
	compacting bool        // a compaction goroutine runs
	timer      *time.Timer // runs kick once the set has been quiet for settleAfter

	cur  atomic.Pointer[layers]
	pool sync.Pool // *matchScratch
}

// version is one version of a named pattern: seq is the change that made it.
type version struct {
	p   *Pattern
	seq uint64
}

// layers is the published state of a Matcher: immutable.
type layers struct {
	trie   *pathTrie
	levels []*level // the large levels, oldest first: levels[0] is the base
	small  *level   // nil when the small level is empty
	n      int      // the number of patterns
}

// level is one machine of a Matcher and which of its patterns are dead
// (replaced or deleted since it was built). Immutable: a pattern marked
// dead makes a copy.
type level struct {
	id    uint64
	m     *machine
	seqs  []uint64 // per rule index: the version it was built with
	dead  []uint64 // bit set by rule index; nil when none is dead
	ndead int
}

const (
	// smallMax and smallMaxSize bound the small level, which every change
	// rebuilds: 32 rules of the benchmark corpus build in about 0.3 ms.
	smallMax     = 32
	smallMaxSize = 1024 // conditions, summed over the alternatives (Pattern.size)
)

// settleAfter is how long a Matcher waits after a change before merging
// all its levels into one.
const settleAfter = 200 * time.Millisecond

// NewMatcher returns a Matcher with no patterns.
func NewMatcher() *Matcher {
	m := &Matcher{rules: make(map[string]version), small: make(map[string]version), settle: settleAfter}
	m.cur.Store(&layers{trie: trieWith(nil, nil)})
	m.pool.New = func() any { return new(matchScratch) }
	return m
}

// Add adds a named pattern, replacing any pattern with the same name.
func (m *Matcher) Add(name string, p *Pattern) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	v := version{p, m.seq}
	m.rules[name] = v
	m.change(name, &v)
}

// Delete removes a named pattern. Afterwards the matcher answers exactly as
// if it had never been added.
func (m *Matcher) Delete(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rules[name]; !ok {
		return
	}
	m.seq++
	delete(m.rules, name)
	m.change(name, nil)
}

// Replace sets the whole set of patterns at once, in one level.
func (m *Matcher) Replace(rules map[string]*Pattern) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.epoch++
	m.seq++
	m.rules = make(map[string]version, len(rules))
	for name, p := range rules {
		m.rules[name] = version{p, m.seq}
	}
	clear(m.small)
	m.settled = m.seq
	next := &layers{n: len(m.rules)}
	if base := m.newLevel(next, m.rules); base != nil {
		next.levels = []*level{base}
	}
	if next.trie == nil {
		next.trie = trieWith(nil, nil)
	}
	m.cur.Store(next)
}

// Len returns the number of patterns.
func (m *Matcher) Len() int {
	return m.cur.Load().n
}

// change publishes the set with name's new version v (nil: deleted).
// Called with m.mu held.
func (m *Matcher) change(name string, v *version) {
	cur := m.cur.Load()
	next := &layers{trie: cur.trie, levels: cur.levels, n: len(m.rules)}
	for i, l := range cur.levels {
		if r, ok := l.find(name); ok && !l.isDead(r) {
			next.levels = slices.Clone(cur.levels)
			next.levels[i] = l.withDead(r)
			break // a name is live in one level at most
		}
	}
	_, wasSmall := m.small[name]
	if v != nil {
		m.small[name] = *v
	} else {
		delete(m.small, name)
	}
	next.small = cur.small
	if v != nil || wasSmall {
		next.small = m.newLevel(next, m.small)
	}
	if next.small != nil && (len(m.small) >= smallMax || next.small.size() >= smallMaxSize) {
		next.levels = append(slices.Clip(next.levels), next.small)
		next.small = nil
		m.small = make(map[string]version)
	}
	m.cur.Store(next)
	m.lastChange = time.Now()
	m.kick()
}

// newLevel builds a level of the given versions over next's trie, which
// it extends (in next) with their new paths; nil when there are none.
func (m *Matcher) newLevel(next *layers, set map[string]version) *level {
	if len(set) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(set))
	pats := make([]*Pattern, len(names))
	seqs := make([]uint64, len(names))
	for i, n := range names {
		pats[i], seqs[i] = set[n].p, set[n].seq
	}
	next.trie = trieWith(next.trie, pats)
	m.ids++
	return &level{id: m.ids, m: buildMachineOn(next.trie, names, pats), seqs: seqs}
}

func (l *level) isDead(r int32) bool {
	return l.dead != nil && l.dead[r>>6]&(1<<(r&63)) != 0
}

// find returns the rule index of name in l.
func (l *level) find(name string) (int32, bool) {
	i, ok := slices.BinarySearch(l.m.names, name)
	return int32(i), ok
}

// withDead returns a copy of l in which rule r is dead.
func (l *level) withDead(r int32) *level {
	c := *l
	c.dead = make([]uint64, (len(l.m.names)+63)/64)
	copy(c.dead, l.dead)
	c.dead[r>>6] |= 1 << (r & 63)
	c.ndead++
	return &c
}

// live returns the number of l's patterns that are not dead.
func (l *level) live() int { return len(l.m.names) - l.ndead }

// size returns the conditions of l's patterns, summed over their
// alternatives: what building it costs.
func (l *level) size() int {
	n := 0
	for _, p := range l.m.pats {
		n += p.size
	}
	return n
}

// A compaction merges some levels (and, when the set has settled, the
// small level) into one. It is planned and installed with m.mu held and
// built without it: the levels it reads are immutable, and changes made
// meanwhile mark its patterns dead when it is installed.
type compaction struct {
	epoch, seq uint64
	trie       *pathTrie
	merge      []*level // large levels, as they were when planned
	small      *level   // the small level, merged too when settling
	settle     bool

	built *level    // nil when no pattern is left
	fresh *pathTrie // a new trie, without the paths no pattern uses any more; nil when the old one is kept
}

// kick starts a compaction goroutine when one is due, or arms the timer
// that looks again once the set has settled. Called with m.mu held.
func (m *Matcher) kick() {
	if m.compacting {
		return
	}
	if m.plan() != nil {
		m.compacting = true
		go m.compact()
		return
	}
	m.armSettle()
}

// armSettle arms the timer for the merge of everything into one level,
// unless the set is already one clean level. Called with m.mu held.
func (m *Matcher) armSettle() {
	if m.timer != nil || m.settled == m.seq {
		return
	}
	wait := m.settle - time.Since(m.lastChange)
	m.timer = time.AfterFunc(max(wait, 0), func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.timer = nil
		m.kick()
	})
}

// plan returns the compaction due, or nil. The large levels are kept few:
//   - when the levels after the base hold a quarter as many patterns as the
//     base, or a quarter of the base is dead, all of them are merged into a
//     new base (so the base grows geometrically while rules are loaded,
//     and loading n rules one by one builds O(n) patterns in all);
//   - otherwise, when there are three or more, those after the base are
//     merged into one;
//   - once no change has come for settleAfter, everything, the small level
//     included, is merged into one level.
//
// Called with m.mu held.
func (m *Matcher) plan() *compaction {
	cur := m.cur.Load()
	c := &compaction{epoch: m.epoch, seq: m.seq, trie: cur.trie}
	levels := cur.levels
	rest := 0
	for _, l := range levels[min(1, len(levels)):] {
		rest += l.live()
	}
	switch {
	case len(levels) >= 2 && (rest >= levels[0].live()/4 || levels[0].ndead > levels[0].live()/4):
		c.merge = levels
	case len(levels) >= 3:
		c.merge = levels[1:]
	case m.settled != m.seq && time.Since(m.lastChange) >= m.settle:
		c.merge, c.small, c.settle = levels, cur.small, true
	default:
		return nil
	}
	return c
}

// compact runs compactions until none is due.
func (m *Matcher) compact() {
	for {
		m.mu.Lock()
		c := m.plan()
		if c == nil {
			m.compacting = false
			m.armSettle()
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		c.build()
		m.mu.Lock()
		m.install(c)
		m.mu.Unlock()
	}
}

// build builds the merged level from the live patterns of c's levels.
func (c *compaction) build() {
	var names []string
	var pats []*Pattern
	var seqs []uint64
	add := func(l *level) {
		if l == nil {
			return
		}
		for r, name := range l.m.names {
			if !l.isDead(int32(r)) {
				names, pats, seqs = append(names, name), append(pats, l.m.pats[r]), append(seqs, l.seqs[r])
			}
		}
	}
	for _, l := range c.merge {
		add(l)
	}
	add(c.small)
	if len(names) == 0 {
		if c.settle && len(c.trie.ids) > 0 {
			c.fresh = trieWith(nil, nil)
		}
		return
	}
	// A name is live in one level at most: sorting by name is enough.
	idx := make([]int, len(names))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(names[a], names[b]) })
	sn, sp, ss := make([]string, len(idx)), make([]*Pattern, len(idx)), make([]uint64, len(idx))
	for i, j := range idx {
		sn[i], sp[i], ss[i] = names[j], pats[j], seqs[j]
	}
	trie := c.trie
	if c.settle {
		// Drop the paths that no pattern uses any more, when there are.
		if t := trieWith(nil, sp); len(t.ids) < len(trie.ids) {
			trie, c.fresh = t, t
		}
	}
	c.built = &level{m: buildMachineOn(trie, sn, sp), seqs: ss}
}

// install publishes the set with c's levels replaced by the level c built.
// Called with m.mu held.
func (m *Matcher) install(c *compaction) {
	if c.epoch != m.epoch || (c.fresh != nil && c.seq != m.seq) {
		return // replaced meanwhile, or changed while a new trie was built: try again later
	}
	cur := m.cur.Load()
	next := &layers{trie: cur.trie, small: cur.small, n: cur.n}
	if c.fresh != nil {
		next.trie = c.fresh
	}
	lv := c.built
	if lv != nil {
		m.ids++
		lv.id = m.ids
		for r, name := range lv.m.names {
			// Dead: changed or deleted since; or taken from the small
			// level, and no longer there in that version (changed, or
			// moved into a large level when the small level filled).
			v, ok := m.rules[name]
			dead := !ok || v.seq != lv.seqs[r]
			if !dead && c.small != nil {
				if _, was := c.small.find(name); was {
					sv, still := m.small[name]
					dead = !still || sv.seq != lv.seqs[r]
				}
			}
			if dead {
				if lv.dead == nil {
					lv.dead = make([]uint64, (len(lv.m.names)+63)/64)
				}
				lv.dead[r>>6] |= 1 << (r & 63)
				lv.ndead++
			}
		}
	}
	merged := make(map[uint64]bool, len(c.merge))
	for _, l := range c.merge {
		merged[l.id] = true
	}
	placed := lv == nil
	for _, l := range cur.levels {
		if merged[l.id] {
			if !placed {
				next.levels = append(next.levels, lv)
				placed = true
			}
			continue
		}
		next.levels = append(next.levels, l)
	}
	if !placed {
		next.levels = append([]*level{lv}, next.levels...)
	}
	if c.small != nil {
		// The small level's versions as they were are in lv now; the
		// versions of later changes stay.
		for r, name := range c.small.m.names {
			if v, ok := m.small[name]; ok && v.seq == c.small.seqs[r] {
				delete(m.small, name)
			}
		}
		next.small = m.newLevel(next, m.small)
	}
	if c.settle && c.seq == m.seq {
		m.settled = m.seq
	}
	m.cur.Store(next)
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
	ls := m.cur.Load()
	ms := m.pool.Get().(*matchScratch)
	defer m.pool.Put(ms)
	defer func() { ms.ctx = nil }() // pooled scratch keeps no context
	if err := ms.flatten(ls.trie, event); err != nil {
		return dst, err
	}
	start, hit := len(dst), 0
	for i := 0; i <= len(ls.levels); i++ {
		l := ls.small
		if i < len(ls.levels) {
			l = ls.levels[i]
		}
		if l == nil {
			continue
		}
		if err := ms.walk(ctx, l.m); err != nil {
			return dst[:start], err
		}
		if len(ms.hits) > 0 {
			hit++
		}
		for _, r := range ms.hits {
			if !l.isDead(r) {
				dst = append(dst, l.m.names[r])
			}
		}
	}
	if hit > 1 {
		slices.Sort(dst[start:])
	}
	return dst, nil
}

// levels returns the number of machines a match walks: a test hook.
func (m *Matcher) levels() int {
	ls := m.cur.Load()
	n := len(ls.levels)
	if ls.small != nil {
		n++
	}
	return n
}
