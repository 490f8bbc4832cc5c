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
// only where an exact string, or one operator, selects the set (equal
// operators of several states are tested once, as one), so it never
// depends on which other operators accept a value.
//
// Visiting a merged state is visiting each of its members with the same
// picked values and the same absences pending: the walk's results are a
// function of the state's rules and transitions, not of its identity. The
// states merged are bounded (mergeBudget): a rule set whose merged states
// would grow beyond a multiple of its own size, in bytes of code, keeps the
// rest of its fan-outs as lists, which the walk visits one by one, as
// before. A merge's cost is checked before it is built, from sizes kept in
// the states, and a set refused is not tried again, so that refusals cost
// what the set has, not what its members hold.

// mergeFactor bounds the bytes that merged states may add to a machine's
// code to this multiple of the bytes of the states built from its rules
// (stateSize, crossSize). 0 merges nothing; a negative factor is a fixed
// budget of its magnitude. A variable so that tests can turn merging off or
// starve it; atomic, as maxLinearExact.
var mergeFactor atomic.Int64

func init() { mergeFactor.Store(3) }

// mergeBytesPerRule caps what merged states may add to a machine at this
// many bytes for each of its rules, whatever its own size: the memory a
// rule may cost (docs/OPERATIONS.md, "Pattern limits and memory") is
// measured on rules that share nothing, which have no merged states, and
// merged states must not raise it by more than this. The corpora of the
// benchmarks merge under 1 KB a rule.
const mergeBytesPerRule = 2048

// mergeBudget is what merged states may add to a machine of the given
// number of rules whose own states take size bytes.
func mergeBudget(size, rules int) int {
	f := int(mergeFactor.Load())
	if f <= 0 {
		return -f
	}
	return min(f*size, mergeBytesPerRule*rules)
}

// stateSize is the bytes a state's own content takes in code, as compile
// lays it out (an exact string counted as if it led to one state): what it
// adds to a merged state that has it. Kept in the state once measured.
func stateSize(s *buildState) int {
	if s.size > 0 {
		return s.size
	}
	n := 12 + 4*len(s.rules)
	for _, t := range s.trans {
		n += 12
		if k := len(t.absentNow) + len(t.absentLater); k > 0 {
			n += 8 + 4*k
		}
		for _, o := range t.ops {
			n += opSize(o.op)
		}
	}
	s.size = n
	return n
}

// opSize is the bytes of an operator's entry in code, its next state
// included.
func opSize(op *operator) int {
	pad := func(n int) int { return (n + 3) &^ 3 }
	switch op.kind {
	case opString:
		return 12 + pad(len(op.text))
	case opNumeric:
		return 8 + 20
	case opCIDR:
		return 8 + 36
	case opWildcard:
		return 8 + 4
	case opAnythingBut:
		n := 8 + 8
		if op.but.kind == butWildcard {
			return n + 4
		}
		for _, s := range op.but.strs {
			n += 4 + pad(len(s))
		}
		return n + 8*len(op.but.nums)
	default: // numbers, affixes and ignore-case forms: their text; exists, true, false, null: nothing
		return 8 + pad(len(op.text))
	}
}

// Bytes of an entry in a large transition's indexes (bigIndex): a string
// and its list of next states in a map, or an operator in a valueIndex.
const (
	bigStringBytes = 96
	bigOpBytes     = 64
)

// crossSize bounds the bytes that the transitions of a state merged from
// members take beyond their operators' entries: each exact string of a path
// may lead to the next state of every other operator of that path, a word
// each (exactNexts), so members that test a path with many strings and
// others with many operators could make a merged transition of their
// product; and a transition with many strings or operators keeps them in
// maps (bigIndex) as well.
func (b *builder) crossSize(members []*buildState) int {
	counts := b.counts[:0]
	for _, s := range members {
		for _, t := range s.trans {
			strs, others := t.opCounts()
			counts = append(counts, pathCount{t.path, strs, others})
		}
	}
	b.counts = counts
	slices.SortFunc(counts, func(x, y pathCount) int { return int(x.path - y.path) })
	n := 0
	for i := 0; i < len(counts); {
		strs, others := 0, 0
		j := i
		for ; j < len(counts) && counts[j].path == counts[i].path; j++ {
			strs += counts[j].strs
			others += counts[j].others
		}
		n += 4 * strs * others
		if strs > b.maxExact {
			n += bigStringBytes * strs
		}
		if others > b.maxOps {
			n += bigOpBytes * others
		}
		i = j
	}
	return n
}

type pathCount struct {
	path         int32
	strs, others int
}

// opCounts returns the numbers of exact strings and of other operators of
// the transition, counted once.
func (t *buildTrans) opCounts() (strs, others int) {
	if !t.counted {
		for _, o := range t.ops {
			if o.op.kind == opString {
				t.nstrs++
			} else {
				t.nothers++
			}
		}
		t.counted = true
	}
	return t.nstrs, t.nothers
}

// prepare groups each reachable transition's operators into exact strings
// (with all their next states) and the others, and merges the next states
// of an exact string into one state while the budget lasts.
func (b *builder) prepare(start *buildState) {
	b.merged = make(map[string]*buildState)
	b.ownSize = b.sizeFrom(start)
	b.budget = mergeBudget(b.ownSize, b.nrules)
	start.prepared = true
	work := []*buildState{start}
	push := func(s *buildState) {
		if !s.prepared {
			s.prepared = true
			work = append(work, s)
		}
	}
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
			_, nops := t.opCounts()
			var index map[string]int // an operator's key to its place in others
			if nops >= 2 {
				index = make(map[string]int, nops)
			}
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

// sizeFrom returns the stateSize and crossSize of the states reachable from
// start, summed.
func (b *builder) sizeFrom(start *buildState) int {
	seen := map[*buildState]bool{start: true}
	work := []*buildState{start}
	size := 0
	one := make([]*buildState, 1)
	for len(work) > 0 {
		s := work[len(work)-1]
		work = work[:len(work)-1]
		one[0] = s
		size += stateSize(s) + b.crossSize(one)
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
	if b.budget <= 0 {
		return nil
	}
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
	if size <= b.budget {
		size += b.crossSize(members)
	}
	if size > b.budget {
		b.merged[string(key)] = nil // not again: a set of many states is often tried again
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
			mt.absentNow = append(mt.absentNow, t.absentNow...)
			mt.absentLater = append(mt.absentLater, t.absentLater...)
		}
	}
	for _, mt := range m.trans {
		mt.absentNow = distinct(mt.absentNow)
		mt.absentLater = distinct(mt.absentLater)
	}
	slices.Sort(m.rules)
	m.rules = slices.Compact(m.rules)
	b.merged[string(key)] = m
	return m
}

// distinct removes repeated states from list, in place, keeping the first
// of each.
func distinct(list []*buildState) []*buildState {
	out := list[:0]
	if len(list) <= 16 {
		for _, s := range list {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	seen := make(map[*buildState]bool, len(list))
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
