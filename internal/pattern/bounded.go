package pattern

import (
	"math"
	"slices"
)

// Matching in bounded time.
//
// The machine's walk (match.go) picks one value per condition and backs up
// when a value sits in another element of an array already used. That is
// fast for ordinary events, but an event with many arrays can make it try
// every combination of their elements: six fields of a hundred values each
// are 100^6 combinations. So the walk has a budget of steps (fastBudget);
// an event that spends it is matched again by a method whose cost is
// polynomial in the size of the event, whatever the patterns:
//
//  1. reach: the states of the machine reachable when any value may be
//     picked with any other (array elements ignored), each state visited
//     once. The rules that end in them are the candidates: a superset of
//     the rules that match.
//  2. holds: each candidate's alternatives are tested one by one against
//     the event's structure of arrays. Within an element of an array (or
//     the top of the event), the values of a condition all sit directly in
//     it or all in the same array below it (see dealias.go); so conditions
//     are grouped by that array, and a group holds when one element of its
//     array holds the whole group. Each value is looked at once per level
//     of arrays it sits in.

// fastBudget is the number of steps (states visited and values tried) the
// machine's walk may take before the event is matched the bounded way. A
// variable so that tests can force either way.
var fastBudget = 1 << 15

// cancelEvery is how many steps pass between checks of the match's context.
const cancelEvery = 1 << 12

// step counts one step of work and reports whether the match must stop
// here: its context ended, or (in the walk) its budget is spent. It looks
// at the context every cancelEvery steps; it is small enough to be inlined
// in the walk.
func (ms *matchScratch) step() bool {
	ms.steps++
	return ms.steps >= ms.check && ms.stepSlow()
}

func (ms *matchScratch) stepSlow() bool {
	if ms.err == nil && ms.ctx != nil {
		ms.err = ms.ctx.Err()
	}
	if ms.err != nil || ms.steps > ms.limit {
		ms.check = 0 // every step from now on stops
		return true
	}
	ms.check = min(ms.steps+cancelEvery, ms.limit+1)
	return false
}

// runBounded matches the flattened event against m the bounded way,
// leaving the matching rules in ms.hits, sorted.
func (ms *matchScratch) runBounded(m *machine) {
	ms.limit, ms.check = math.MaxInt, ms.steps+1
	ms.hits = ms.hits[:0]
	ms.gen++
	if ms.gen == 0 {
		clear(ms.seen)
		ms.gen = 1
	}
	cands := ms.reach(m)
	for _, r := range cands {
		m.pats[r].eachAlt(func(alt alternative) bool {
			if ms.err != nil {
				return false
			}
			if ms.holds(m, alt) {
				ms.hits = append(ms.hits, r)
				return false
			}
			return true
		})
	}
}

// reach returns the rules that end in states reachable from the start
// when values are picked without regard to arrays, sorted.
func (ms *matchScratch) reach(m *machine) []int32 {
	ms.stamp++
	if ms.stamp == 0 {
		clear(ms.mark)
		ms.stamp = 1
	}
	code := m.code
	ev := &ms.ev
	cands := ms.cands[:0]
	stack := append(ms.next[:0], 0)
	ms.mark[0] = ms.stamp
	push := func(s uint32) {
		if id := u32(code, s); ms.mark[id] != ms.stamp {
			ms.mark[id] = ms.stamp
			stack = append(stack, int32(s))
		}
	}
	for len(stack) > 0 && !ms.step() {
		s := uint32(stack[len(stack)-1])
		stack = stack[:len(stack)-1]
		nrules, ntrans := u32(code, s+4), u32(code, s+8)
		p := s + 12
		for i := range nrules {
			if r := u32(code, p+4*i); ms.seen[r] != ms.gen {
				ms.seen[r] = ms.gen
				cands = append(cands, int32(r))
			}
		}
		p += 4 * nrules
		for ; ntrans > 0; ntrans-- {
			path, info, end := u32(code, p), u32(code, p+4), u32(code, p+8)
			p += 12
			if info&transAbsent != 0 {
				n := u32(code, p) + u32(code, p+4)
				p += 8
				for i := range n {
					push(u32(code, p+4*i))
				}
				p += 4 * n
			}
			var big *bigIndex
			if info&transBig != 0 {
				big = &m.bigs[u32(code, p)]
				p += 4
			}
			for li := ev.first(int32(path)); li >= 0 && !ms.step(); li = ev.leaves[li].next {
				ms.tmp = m.appendNext(ms.tmp[:0], p, info, big, ev, &ev.leaves[li])
				for _, n := range ms.tmp {
					push(uint32(n))
				}
			}
			p = end
		}
	}
	ms.next = stack[:0]
	slices.Sort(cands)
	ms.cands = cands
	return cands
}

// group is the values of one condition within one element (or the top of
// the event): leaf indexes, in document order.
type group struct {
	c      *condition
	leaves []int32
}

// holds reports whether the flattened event satisfies every condition of
// alt, with array-consistent values.
func (ms *matchScratch) holds(m *machine, alt alternative) bool {
	ev := &ms.ev
	groups := make([]group, len(alt))
	for i, c := range alt {
		groups[i].c = c
		id, ok := m.trie.ids[c.path]
		if !ok || ev.headGen[id] != ev.gen {
			continue
		}
		for li := ev.head[id]; li >= 0; li = ev.leaves[li].next {
			groups[i].leaves = append(groups[i].leaves, li)
		}
		slices.Reverse(groups[i].leaves)
	}
	ok, _ := ms.within(groups, 0)
	return ok
}

// within tests conditions against one element at array depth d (0: the
// top of the event), given each condition's values within it. It reports
// whether they all hold there, and whether a value was picked for one of
// them (an element of an array is chosen only for picked values: when none
// is, the values of the array's other elements count for exists: false).
func (ms *matchScratch) within(groups []group, d int) (ok, picked bool) {
	ev := &ms.ev
	// Conditions held by values directly in the element, and the arrays
	// below it that the others' values sit in, in order of first use.
	var arrays []int32
	for _, g := range groups {
		if ms.step() {
			return false, false
		}
		if len(g.leaves) == 0 {
			if !g.c.allowsAbsent() {
				return false, false
			}
			continue
		}
		tr := ev.trail(&ev.leaves[g.leaves[0]])
		if len(tr) > d {
			if !slices.Contains(arrays, tr[d].array) {
				arrays = append(arrays, tr[d].array)
			}
			continue
		}
		// Values directly here: one must be accepted, since a value that
		// is present is never absent.
		found := false
		for _, li := range g.leaves {
			if ms.step() {
				return false, false
			}
			if g.c.acceptsValue(ev, &ev.leaves[li]) {
				found = true
				break
			}
		}
		if !found {
			return false, false
		}
		picked = true
	}
	for _, a := range arrays {
		var in []group
		for _, g := range groups {
			if len(g.leaves) > 0 {
				if tr := ev.trail(&ev.leaves[g.leaves[0]]); len(tr) > d && tr[d].array == a {
					in = append(in, g)
				}
			}
		}
		// Present in the array, these conditions can only hold in one
		// element of it, chosen by a picked value.
		if !ms.someElement(in, d) {
			return false, false
		}
		picked = true
	}
	return true, picked
}

// someElement reports whether one element of the array at depth d holds all
// the conditions of in, with a value picked there.
func (ms *matchScratch) someElement(in []group, d int) bool {
	ev := &ms.ev
	pos := make([]int, len(in))
	sub := make([]group, len(in))
	for {
		// The next element that holds a value of one of the conditions:
		// values are in document order, so elements come in order.
		elem := int32(-1)
		for i, g := range in {
			if pos[i] < len(g.leaves) {
				idx := ev.trail(&ev.leaves[g.leaves[pos[i]]])[d].index
				if elem < 0 || idx < elem {
					elem = idx
				}
			}
		}
		if elem < 0 {
			return false
		}
		for i, g := range in {
			j := pos[i]
			for j < len(g.leaves) && ev.trail(&ev.leaves[g.leaves[j]])[d].index == elem {
				j++
			}
			sub[i] = group{c: g.c, leaves: g.leaves[pos[i]:j]}
			pos[i] = j
		}
		if ok, picked := ms.within(sub, d+1); ok && picked {
			return true
		}
		if ms.err != nil {
			return false
		}
	}
}

// acceptsValue reports whether one of the condition's operators accepts
// the leaf.
func (c *condition) acceptsValue(f *flatEvent, l *leaf) bool {
	for i := range c.ops {
		if c.ops[i].accepts(f, l) {
			return true
		}
	}
	return false
}
