package pattern

import (
	"slices"
	"strconv"
)

// The machine's states are built as the minimal acyclic automaton over the
// chains of conditions of every alternative of every pattern: chains that
// begin alike share their first states, as in a trie, and chains that end
// alike (the same conditions left, ending in the same rules) share their
// last ones. The alternatives of a pattern with "$or"s are a product: nine
// "$or"s of two objects are 512 chains, which as a trie take 1,023 states
// and here take about twenty.
//
// The chains are sorted, then added one at a time, and the states of the
// previous chain that the new one does not share can no longer change, so
// each is replaced by an equal state already built or kept as a new one
// (Daciuk, Mihov, Watson and Watson, "Incremental construction of minimal
// acyclic finite-state automata", 2000). Only the states of one chain are
// ever not yet minimal.

// words collects the chains: each a list of labels (conditions, numbered
// by their key) and the rule it ends in.
type words struct {
	labels []label // label to condition
	byCond map[label]int32
	byKey  map[string]int32
	arena  []int32
	chains []chain
	conds  []*condition // scratch for the caller
}

type chain struct {
	start, end int32 // labels in arena
	rule       int32
}

// label is a condition in a chain. A condition that only accepts a missing
// field is tested at once where nothing but such conditions follows it in
// the chain, and otherwise once the chain's values are all picked (later),
// since a value picked after it may rule out an element of an array.
type label struct {
	cond  *condition
	later bool
}

func (w *words) label(c *condition, later bool, rule int32) int32 {
	lb := label{c, later}
	if l, ok := w.byCond[lb]; ok {
		return l
	}
	if w.byCond == nil {
		w.byCond, w.byKey = make(map[label]int32), make(map[string]int32)
	}
	key := c.key
	if later {
		key += "\x00later"
	}
	if !c.common {
		// The conditions only some alternatives have are the rule's own:
		// shared with another rule's, the two rules' "$or"s could multiply
		// into states neither needs alone. So a rule's share of a machine
		// is at most its own machine (Pattern.states).
		key += "\x00rule" + strconv.Itoa(int(rule))
	}
	l, ok := w.byKey[key]
	if !ok {
		l = int32(len(w.labels))
		w.labels = append(w.labels, lb)
		w.byKey[key] = l
	}
	w.byCond[lb] = l
	return l
}

// add adds the chain of conditions that ends in rule.
func (w *words) add(conds []*condition, rule int32) {
	start := int32(len(w.arena))
	// Conditions that only accept a missing field are tested at once in the
	// chain's tail, where only such conditions are.
	tail := len(conds)
	for tail > 0 && conds[tail-1].absentOnly() {
		tail--
	}
	for i, c := range conds {
		w.arena = append(w.arena, w.label(c, i < tail && c.absentOnly(), rule))
	}
	w.chains = append(w.chains, chain{start: start, end: int32(len(w.arena)), rule: rule})
}

// dstate is a state of the automaton being built: its transitions, sorted
// by label, and the rules whose chains end in it.
type dstate struct {
	labels []int32
	kids   []*dstate
	rules  []int32
	id     int32       // numbered once final; -1 before
	built  *buildState // see builder.fromDAG
}

// minimize builds the minimal automaton of the chains and returns its
// start state.
func (w *words) minimize() *dstate {
	slices.SortFunc(w.chains, func(a, b chain) int {
		if c := slices.Compare(w.arena[a.start:a.end], w.arena[b.start:b.end]); c != 0 {
			return c
		}
		return int(a.rule - b.rule)
	})
	root := &dstate{id: -1}
	// The final states, by a hash of what makes two states equal: their
	// rules and transitions (to final states, so compared by id).
	reg := make(map[uint64][]*dstate)
	final := 0
	equal := func(a, b *dstate) bool {
		if !slices.Equal(a.rules, b.rules) || !slices.Equal(a.labels, b.labels) {
			return false
		}
		for i := range a.kids {
			if a.kids[i] != b.kids[i] {
				return false
			}
		}
		return true
	}
	// settle replaces the last child of s (and, first, its own last child,
	// and so on down) by an equal final state, or makes it final.
	var settle func(s *dstate)
	settle = func(s *dstate) {
		last := len(s.kids) - 1
		child := s.kids[last]
		if len(child.kids) > 0 {
			settle(child)
		}
		h := uint64(14695981039346656037)
		mix := func(v int32) { h = (h ^ uint64(uint32(v))) * 1099511628211 }
		mix(int32(len(child.rules)))
		for _, r := range child.rules {
			mix(r)
		}
		for i, l := range child.labels {
			mix(l)
			mix(child.kids[i].id)
		}
		for _, q := range reg[h] {
			if equal(q, child) {
				s.kids[last] = q
				return
			}
		}
		child.id = int32(final)
		final++
		reg[h] = append(reg[h], child)
	}
	for _, ch := range w.chains {
		word := w.arena[ch.start:ch.end]
		// Follow the part the previous chain shares: its states are the
		// last children from the start.
		s, i := root, 0
		for i < len(word) && len(s.kids) > 0 && s.labels[len(s.labels)-1] == word[i] {
			s = s.kids[len(s.kids)-1]
			i++
		}
		if len(s.kids) > 0 && i < len(word) {
			settle(s)
		}
		for ; i < len(word); i++ {
			n := &dstate{id: -1}
			s.labels = append(s.labels, word[i])
			s.kids = append(s.kids, n)
			s = n
		}
		if len(s.rules) == 0 || s.rules[len(s.rules)-1] != ch.rule {
			s.rules = append(s.rules, ch.rule)
		}
	}
	if len(root.kids) > 0 {
		settle(root)
	}
	return root
}

// states returns the number of states of the pattern's own automaton. Its
// share of a machine with other patterns is at most that: the chains of
// its alternatives are ordered the same way there, but for the order of
// the conditions every alternative has, and chains of other patterns can
// only share states with it.
func (p *Pattern) states() int {
	var w words
	p.eachAlt(func(alt alternative) bool {
		conds := append(w.conds[:0], alt...)
		slices.SortFunc(conds, func(x, y *condition) int { return chainOrder(x, y, nil) })
		w.add(conds, 0)
		w.conds = conds
		return true
	})
	seen := make(map[*dstate]bool)
	var count func(d *dstate)
	count = func(d *dstate) {
		if seen[d] {
			return
		}
		seen[d] = true
		for _, k := range d.kids {
			count(k)
		}
	}
	count(w.minimize())
	return len(seen)
}
