package pattern

import (
	"encoding/binary"
	"slices"
	"sync/atomic"
)

// Merged states.
//
// When an exact string leads on to several states, the walk visits each of
// them with the same picked values, one after the other: every one of them
// looks up its fields and compares its values on its own. On a bus where
// many rules name the same source and detail-type, an event of that kind
// leads to a state per rule after the detail-type, each testing a field or
// two of the detail. A merged state stands for such a set of states: its
// rules are theirs, and its transitions are theirs grouped by field, so the
// walk looks up each field once and finds the next states of all of them
// with one comparison per value (or one index lookup), and those next
// states, when an exact string leads to several again, are merged in turn.
// This is the subset construction of a deterministic automaton, applied
// only where an exact string selects the set, so it never depends on which
// other operators accept a value.
//
// Visiting a merged state is visiting each of its members with the same
// picked values and the same absences pending: the walk's results are a
// function of the state's rules and transitions, not of its identity. The
// states merged are bounded (mergeBudget): a rule set whose merged states
// would grow beyond a multiple of its own size keeps the rest of its
// fan-outs as lists, which the walk visits one by one, as before.

// mergeFactor bounds what the merged states of a machine may add (in
// stateSize's units, which count operands' text) to this multiple of the
// size of the states built from its rules. 0 merges nothing; a negative
// factor is a fixed budget of its magnitude. A variable so that tests can
// turn merging off or starve it; atomic, as maxLinearExact.
var mergeFactor atomic.Int64

func init() { mergeFactor.Store(3) }

// mergeBudget is what merged states may add to a machine whose own states
// have the given size.
func mergeBudget(size int) int {
	f := int(mergeFactor.Load())
	if f <= 0 {
		return -f
	}
	return f * size
}

// stateSize is what a state adds to a merged state that has it: a unit for
// the state, each of its rules, transitions and absent links, and for each
// operator a unit and one for each 16 bytes of its operands.
func stateSize(s *buildState) int {
	n := len(s.rules) + 1
	for _, t := range s.trans {
		n += 1 + len(t.absentNow) + len(t.absentLater)
		for _, o := range t.ops {
			n += 1 + o.op.textSize()/16
		}
	}
	return n
}

// textSize is the length of the operator's operands' text.
func (o *operator) textSize() int {
	n := len(o.text)
	if o.but != nil {
		for _, s := range o.but.strs {
			n += len(s)
		}
	}
	return n
}

// prepare groups each reachable transition's operators into exact strings
// (with all their next states) and the others, and merges the next states
// of an exact string into one state while the budget lasts.
func (b *builder) prepare(start *buildState) {
	b.merged = make(map[string]*buildState)
	b.ownSize = b.sizeFrom(start)
	b.budget = mergeBudget(b.ownSize)
	start.prepared = true
	work := []*buildState{start}
	push := func(s *buildState) {
		if !s.prepared {
			s.prepared = true
			work = append(work, s)
		}
	}
	index := make(map[string]int) // an operator's key to its place in others
	for len(work) > 0 {
		s := work[len(work)-1]
		work = work[:len(work)-1]
		for _, t := range s.trans {
			var strs []buildOp
			t.others = t.others[:0]
			// Equal operators that lead to different states are tested
			// once, and lead to the merge of those states: same[i] holds
			// the states of others[i]'s operator, in order.
			var same [][]*buildState
			nops := 0
			for _, o := range t.ops {
				if o.op.kind != opString {
					nops++
				}
			}
			clear(index)
			for _, o := range t.ops {
				if o.op.kind == opString {
					strs = append(strs, o)
					continue
				}
				if nops < 2 {
					t.others = append(t.others, o)
					continue
				}
				k := o.op.key()
				if i, ok := index[k]; ok {
					same[i] = append(same[i], o.next)
					continue
				}
				index[k] = len(t.others)
				t.others = append(t.others, o)
				same = append(same, []*buildState{o.next})
			}
			for i, list := range same {
				if len(list) < 2 {
					continue
				}
				if m := b.merge(list); m != nil {
					t.others[i].next = m
					continue
				}
				for _, n := range list[1:] { // over budget: an entry each
					t.others = append(t.others, buildOp{op: t.others[i].op, next: n})
				}
			}
			t.texts, t.nexts = exactNexts(strs, t.others)
			for _, text := range t.texts {
				if list := t.nexts[text]; len(list) > 1 {
					if m := b.merge(list); m != nil {
						t.nexts[text] = []*buildState{m}
					}
				}
				for _, n := range t.nexts[text] {
					push(n)
				}
			}
			for _, o := range t.others {
				push(o.next)
			}
			for _, n := range t.absentNow {
				push(n)
			}
			for _, n := range t.absentLater {
				push(n)
			}
		}
	}
	b.merged = nil
}

// sizeFrom returns the stateSize of the states reachable from start, summed.
func (b *builder) sizeFrom(start *buildState) int {
	seen := map[*buildState]bool{start: true}
	work := []*buildState{start}
	size := 0
	for len(work) > 0 {
		s := work[len(work)-1]
		work = work[:len(work)-1]
		size += stateSize(s)
		for _, t := range s.trans {
			for _, o := range t.ops {
				if !seen[o.next] {
					seen[o.next] = true
					work = append(work, o.next)
				}
			}
			for _, list := range [][]*buildState{t.absentNow, t.absentLater} {
				for _, n := range list {
					if !seen[n] {
						seen[n] = true
						work = append(work, n)
					}
				}
			}
		}
	}
	return size
}

// merge returns the merged state for the states of list (at least two), or
// nil when the budget does not allow it.
func (b *builder) merge(list []*buildState) *buildState {
	members := slices.Clone(list)
	slices.SortFunc(members, func(x, y *buildState) int { return int(x.seq - y.seq) })
	members = slices.CompactFunc(members, func(x, y *buildState) bool { return x == y })
	if len(members) == 1 {
		return members[0]
	}
	key := b.key[:0]
	for _, s := range members {
		key = binary.LittleEndian.AppendUint32(key, uint32(s.seq))
	}
	b.key = key
	if m, ok := b.merged[string(key)]; ok {
		return m
	}
	size := 0
	for _, s := range members {
		size += stateSize(s)
	}
	if size > b.budget {
		return nil
	}
	b.budget -= size
	b.nmerged++
	b.mergedSize += size
	m := b.newState()
	byPath := make(map[int32]*buildTrans)
	for _, s := range members {
		m.rules = append(m.rules, s.rules...)
		for _, t := range s.trans {
			mt := byPath[t.path]
			if mt == nil {
				mt = &buildTrans{path: t.path}
				byPath[t.path] = mt
				m.trans = append(m.trans, mt)
			}
			mt.ops = append(mt.ops, t.ops...)
			mt.absentNow = appendNew(mt.absentNow, t.absentNow)
			mt.absentLater = appendNew(mt.absentLater, t.absentLater)
		}
	}
	slices.Sort(m.rules)
	m.rules = slices.Compact(m.rules)
	b.merged[string(key)] = m
	return m
}

// appendNew appends the states of add that dst does not have yet.
func appendNew(dst, add []*buildState) []*buildState {
	for _, s := range add {
		if !slices.Contains(dst, s) {
			dst = append(dst, s)
		}
	}
	return dst
}
