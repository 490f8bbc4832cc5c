package pattern

import (
	"context"
	"slices"
)

// matchScratch is the working memory of one match. Matchers pool them; a
// scratch is used by one goroutine at a time.
type matchScratch struct {
	ev    flatEvent
	trail []arrayPos // arrays of the values picked so far, with their indexes
	// pickIdx is the element picked in each array (by id) while pickGen
	// holds the match's pgen there.
	pickIdx []int32
	pickGen []uint32
	pgen    uint32
	m       *machine
	next    []int32  // stack of next states
	pending []int32  // paths whose absence a rule's end must confirm
	seen    []uint32 // per rule: the gen it was last reported in
	mark    []uint32 // per state: the stamp it was last queued in
	gen     uint32
	stamp   uint32
	hits    []int32
	cands   []int32 // runBounded's candidates
	tmp     []int32 // reach's next states of one value

	ctx   context.Context // nil: never cancelled
	err   error           // the context's error, once it ended
	steps int             // work done so far
	check int             // the step at which step looks further
	limit int             // the steps the walk may take; then runBounded
	over  bool            // the walk stopped: out of budget, or cancelled
}

// run matches an event against m, leaving the matching rule indexes in
// ms.hits, sorted. It stops with ctx's error when ctx ends (ctx may be
// nil).
func (ms *matchScratch) run(ctx context.Context, m *machine, event []byte) error {
	err := ms.flatten(m.trie, event)
	if err == nil {
		err = ms.walk(ctx, m)
	}
	ms.ctx = nil // pooled scratch keeps no context
	return err
}

// flatten scans the event for the paths of trie, ready for walks of the
// machines built on it or on an older version of it (trieWith keeps ids).
func (ms *matchScratch) flatten(trie *pathTrie, event []byte) error {
	ms.ev.reset(event, len(trie.ids))
	return ms.ev.flatten(trie.root)
}

// walk matches the flattened event against m, leaving the matching rule
// indexes in ms.hits, sorted. It may be called for several machines after
// one flatten.
func (ms *matchScratch) walk(ctx context.Context, m *machine) error {
	ms.ctx, ms.err, ms.steps, ms.limit, ms.over = ctx, nil, 0, fastBudget, false
	ms.check = min(cancelEvery, ms.limit+1)
	if len(ms.seen) < len(m.names) {
		ms.seen = make([]uint32, len(m.names))
		ms.gen = 0
	}
	if len(ms.mark) < m.nstates {
		ms.mark = make([]uint32, m.nstates)
		ms.stamp = 0
	}
	ms.gen++
	if ms.gen == 0 {
		clear(ms.seen)
		ms.gen = 1
	}
	ms.hits = ms.hits[:0]
	ms.trail = ms.trail[:0]
	if n := int(ms.ev.arrays); len(ms.pickGen) < n {
		ms.pickGen = make([]uint32, n+n/2)
		ms.pickIdx = make([]int32, n+n/2)
		ms.pgen = 0
	}
	ms.pgen++
	if ms.pgen == 0 {
		clear(ms.pickGen)
		ms.pgen = 1
	}
	ms.next = ms.next[:0]
	ms.pending = ms.pending[:0]
	ms.m = m
	ms.visit(0)
	ms.m = nil
	if ms.over && ms.err == nil {
		ms.runBounded(m)
	}
	if ms.err != nil {
		ms.hits = ms.hits[:0]
		return ms.err
	}
	slices.Sort(ms.hits)
	return nil
}

// visit explores every way on from the state at offset s that is
// consistent with the values picked so far.
func (ms *matchScratch) visit(s uint32) {
	if ms.over || ms.step() {
		ms.over = true
		return
	}
	m := ms.m
	code := m.code
	nrules, ntrans := u32(code, s+4), u32(code, s+8)
	p := s + 12
	if nrules > 0 && ms.pendingAbsent() {
		for i := range nrules {
			r := u32(code, p+4*i)
			if ms.seen[r] != ms.gen {
				ms.seen[r] = ms.gen
				ms.hits = append(ms.hits, int32(r))
			}
		}
	}
	p += 4 * nrules
	ev := &ms.ev
	for ; ntrans > 0; ntrans-- {
		path, info, end := u32(code, p), u32(code, p+4), u32(code, p+8)
		p += 12
		first := ev.first(int32(path))
		if info&transAbsent != 0 {
			nnow, nlater := u32(code, p), u32(code, p+4)
			p += 8
			if nnow > 0 && !ms.anyConsistent(first) {
				for i := range nnow {
					ms.visit(u32(code, p+4*i))
				}
			}
			p += 4 * nnow
			if nlater > 0 {
				ms.pending = append(ms.pending, int32(path))
				for i := range nlater {
					ms.visit(u32(code, p+4*i))
				}
				ms.pending = ms.pending[:len(ms.pending)-1]
			}
			p += 4 * nlater
		}
		var big *bigIndex
		if info&transBig != 0 {
			big = &m.bigs[u32(code, p)]
			p += 4
		}
		for li := first; li >= 0; li = ev.leaves[li].next {
			if ms.over || ms.step() {
				ms.over = true
				return
			}
			l := &ev.leaves[li]
			saved := len(ms.trail)
			if l.trail1 > l.trail0 && !ms.extend(ev.trail(l)) {
				continue
			}
			start := len(ms.next)
			ms.next = m.appendNext(ms.next, p, info, big, ev, l)
			stop := ms.dedupe(start)
			for i := start; i < stop; i++ {
				ms.visit(uint32(ms.next[i]))
			}
			ms.next = ms.next[:start]
			ms.unpick(saved)
		}
		p = end
	}
}

// dedupe removes repeated states from ms.next[start:] and returns its end.
func (ms *matchScratch) dedupe(start int) int {
	if len(ms.next)-start < 2 {
		return len(ms.next)
	}
	ms.stamp++
	if ms.stamp == 0 {
		clear(ms.mark)
		ms.stamp = 1
	}
	end := start
	for i := start; i < len(ms.next); i++ {
		st := ms.next[i]
		if id := u32(ms.m.code, uint32(st)); ms.mark[id] != ms.stamp {
			ms.mark[id] = ms.stamp
			ms.next[end] = st
			end++
		}
	}
	ms.next = ms.next[:end]
	return end
}

// extend adds a value's arrays to the trail. It fails, leaving the trail as
// it was, when the value sits in another element of an array already used.
// The element picked in each array is kept in a table by array id, so the
// check costs the value's arrays, not their product with the trail's.
func (ms *matchScratch) extend(tr []arrayPos) bool {
	n := len(ms.trail)
	ms.steps += len(tr)
	for _, p := range tr {
		if ms.pickGen[p.array] == ms.pgen {
			if ms.pickIdx[p.array] != p.index {
				ms.unpick(n)
				return false
			}
			continue
		}
		ms.pickGen[p.array], ms.pickIdx[p.array] = ms.pgen, p.index
		ms.trail = append(ms.trail, p)
	}
	return true
}

// unpick takes the trail back to its first n arrays.
func (ms *matchScratch) unpick(n int) {
	for _, p := range ms.trail[n:] {
		ms.pickGen[p.array] = 0
	}
	ms.trail = ms.trail[:n]
}

// consistent reports whether a value's arrays agree with the trail.
func (ms *matchScratch) consistent(tr []arrayPos) bool {
	ms.steps += len(tr)
	for _, p := range tr {
		if ms.pickGen[p.array] == ms.pgen && ms.pickIdx[p.array] != p.index {
			return false
		}
	}
	return true
}

// anyConsistent reports whether any leaf in the list starting at li agrees
// with the trail: if so, the field is present as far as this match goes.
func (ms *matchScratch) anyConsistent(li int32) bool {
	ev := &ms.ev
	for ; li >= 0 && !ms.step(); li = ev.leaves[li].next {
		if ms.consistent(ev.trail(&ev.leaves[li])) {
			return true
		}
	}
	return false
}

// pendingAbsent confirms the deferred absences against the final trail.
func (ms *matchScratch) pendingAbsent() bool {
	for _, path := range ms.pending {
		if ms.anyConsistent(ms.ev.first(path)) {
			return false
		}
	}
	return true
}
