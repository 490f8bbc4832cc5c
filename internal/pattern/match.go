package pattern

import "slices"

// matchScratch is the working memory of one match. Matchers pool them; a
// scratch is used by one goroutine at a time.
type matchScratch struct {
	ev      flatEvent
	trail   []arrayPos // arrays of the values picked so far, with their indexes
	m       *machine
	next    []int32  // stack of next states
	pending []int32  // paths whose absence a rule's end must confirm
	seen    []uint32 // per rule: the gen it was last reported in
	mark    []uint32 // per state: the stamp it was last queued in
	gen     uint32
	stamp   uint32
	hits    []int32
}

// run matches an event against m, leaving the matching rule indexes in
// ms.hits, sorted.
func (ms *matchScratch) run(m *machine, event []byte) error {
	ms.ev.reset(event, m.npaths)
	if err := ms.ev.flatten(m.trie.root); err != nil {
		return err
	}
	if len(ms.seen) < len(m.names) {
		ms.seen = make([]uint32, len(m.names))
		ms.gen = 0
	}
	if len(ms.mark) < len(m.states) {
		ms.mark = make([]uint32, len(m.states))
		ms.stamp = 0
	}
	ms.gen++
	if ms.gen == 0 {
		clear(ms.seen)
		ms.gen = 1
	}
	ms.hits = ms.hits[:0]
	ms.trail = ms.trail[:0]
	ms.next = ms.next[:0]
	ms.pending = ms.pending[:0]
	ms.m = m
	ms.visit(0)
	ms.m = nil
	slices.Sort(ms.hits)
	return nil
}

// visit explores every way on from s that is consistent with the values
// picked so far.
func (ms *matchScratch) visit(id int32) {
	m := ms.m
	s := &m.states[id]
	if s.rules1 > s.rules0 && ms.pendingAbsent() {
		for _, r := range m.rules[s.rules0:s.rules1] {
			if ms.seen[r] != ms.gen {
				ms.seen[r] = ms.gen
				ms.hits = append(ms.hits, r)
			}
		}
	}
	ev := &ms.ev
	for ti := s.trans0; ti < s.trans1; ti++ {
		t := &m.trans[ti]
		first := ev.first(t.path)
		if t.absentNow1 > t.absentNow0 && !ms.anyConsistent(first) {
			for _, n := range m.nexts[t.absentNow0:t.absentNow1] {
				ms.visit(n)
			}
		}
		if t.absentLater1 > t.absentLater0 {
			ms.pending = append(ms.pending, t.path)
			for _, n := range m.nexts[t.absentLater0:t.absentLater1] {
				ms.visit(n)
			}
			ms.pending = ms.pending[:len(ms.pending)-1]
		}
		for li := first; li >= 0; li = ev.leaves[li].next {
			l := &ev.leaves[li]
			saved := len(ms.trail)
			if l.trail1 > l.trail0 && !ms.extend(ev.trail(l)) {
				continue
			}
			start := len(ms.next)
			ms.next = m.appendNext(ms.next, t, ev, l)
			end := ms.dedupe(start)
			for i := start; i < end; i++ {
				ms.visit(ms.next[i])
			}
			ms.next = ms.next[:start]
			ms.trail = ms.trail[:saved]
		}
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
		if ms.mark[st] != ms.stamp {
			ms.mark[st] = ms.stamp
			ms.next[end] = st
			end++
		}
	}
	ms.next = ms.next[:end]
	return end
}

// extend adds a value's arrays to the trail. It fails, leaving the trail as
// it was, when the value sits in another element of an array already used.
func (ms *matchScratch) extend(tr []arrayPos) bool {
	n := len(ms.trail)
	for _, p := range tr {
		found := false
		for _, q := range ms.trail[:n] {
			if q.array == p.array {
				if q.index != p.index {
					ms.trail = ms.trail[:n]
					return false
				}
				found = true
				break
			}
		}
		if !found {
			ms.trail = append(ms.trail, p)
		}
	}
	return true
}

// consistent reports whether a value's arrays agree with the trail.
func (ms *matchScratch) consistent(tr []arrayPos) bool {
	for _, p := range tr {
		for _, q := range ms.trail {
			if q.array == p.array && q.index != p.index {
				return false
			}
		}
	}
	return true
}

// anyConsistent reports whether any leaf in the list starting at li agrees
// with the trail: if so, the field is present as far as this match goes.
func (ms *matchScratch) anyConsistent(li int32) bool {
	ev := &ms.ev
	for ; li >= 0; li = ev.leaves[li].next {
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
