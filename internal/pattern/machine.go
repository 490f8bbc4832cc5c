package pattern

import (
	"bytes"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
)

// machine is the automaton for a set of named patterns. Every alternative of
// every pattern is a chain of conditions from the start state; alternatives
// that begin with the same conditions share states, and at each state the
// values of one field select the next states, so the work for an event grows
// with the fields that patterns use and with the conditions that actually
// match, not with the number of patterns. A machine is immutable once built
// and safe for concurrent use.
//
// The states are encoded one after the other in one byte array, code,
// numbered depth first from the start state, which is at offset 0. A state
// is referred to by its offset. Everything a state needs (the rules that end
// there, its transitions, their exact strings with the text inline, and
// their other operators with their operands inline) is contiguous, so a
// visit reads one or two cache lines, and a chain of states that one rule
// alone uses sits in consecutive lines. With 10,000 rules, an earlier layout
// of parallel arrays of states, transitions, entries and key text spent
// most of its walk waiting for memory. Transitions with many values or
// operators keep hash indexes, in bigs.
//
// A state at offset s:
//
//	id, nrules, ntrans uint32   // id numbers states from 0, for dedupe
//	rules [nrules]uint32        // rule indexes whose alternative ends here
//	ntrans transitions
//
// A transition:
//
//	path, info, end uint32  // end is the offset after the transition
//	[if info&transAbsent] nnow, nlater uint32, then nnow+nlater state offsets:
//	                        // absentNow, then absentLater (see below)
//	[if info&transBig] index into bigs uint32
//	info&transExactMask exact string entries, one per distinct text:
//	    len, count uint32, len bytes of text padded to 4, count next states
//	info&transOpsMask >> transOpsShift operator entries:
//	    next, kind | len<<8 uint32, then len bytes of operand, padded to 4
//
// The next states of an exact string are all those the transition leads to
// for that string: those of the other operators that accept it too, found
// when the machine is built. So a string value that is one of the exact
// strings is looked up once, and the other operators are tried only for the
// values that are none of them.
//
// absentNow leads on when the field is missing, for conditions that are
// only {"exists": false}. absentLater does the same for conditions that also
// accept values; their absence is confirmed when a rule ends.
//
// An operator's operand is its text for numbers, prefixes, suffixes and the
// ignore-case forms; for numeric ranges, the bounds as float64 bits and a
// word of flags; for cidr, the address length in bits and the first and last
// address in 16 bytes each; for anything-but, see butExcludes; for wildcards,
// an index into xops.
type machine struct {
	trie    *pathTrie
	npaths  int
	names   []string   // rule index to name
	pats    []*Pattern // rule index to pattern
	nstates int
	// merged is how many of the states are merged states (merge.go),
	// mergedSize the bytes they added and ownSize the bytes of the others
	// (stateSize and crossSize).
	merged, mergedSize, ownSize int

	code []byte
	bigs []bigIndex
	xops []*operator
}

const (
	transExactMask = 1<<16 - 1
	transOpsShift  = 16
	transOpsMask   = 1<<30 - 1<<16
	transAbsent    = 1 << 30
	transBig       = 1 << 31

	numLoIncl = 1
	numHiIncl = 2
)

// u32 reads the word of code at offset o.
func u32(code []byte, o uint32) uint32 {
	return binary.LittleEndian.Uint32(code[o : o+4])
}

// bigIndex indexes the values of a transition with many of them. Its next
// states are offsets in code.
type bigIndex struct {
	strs map[string][]int32 // exact strings, when there are many; as in code, with all their next states
	idx  *valueIndex        // the other operators, when there are many
}

// exactNexts groups the exact strings of a transition's operators by text,
// in the order of first use, and adds to each text the next states of the
// other operators that accept it as a value, without repeats.
func exactNexts(strs, others []buildOp) (texts []string, nexts map[string][]*buildState) {
	if len(strs) == 0 {
		return nil, nil
	}
	nexts = make(map[string][]*buildState)
	add := func(t string, s *buildState) {
		nexts[t] = append(nexts[t], s)
	}
	// Repeats are removed at the end: a text that many operators accept
	// would otherwise cost the square of their number.
	defer func() {
		for _, t := range texts {
			nexts[t] = distinct(nexts[t])
		}
	}()
	for _, o := range strs {
		if _, ok := nexts[o.op.text]; !ok {
			texts = append(texts, o.op.text)
		}
		add(o.op.text, o.next)
	}
	if len(others) == 0 {
		return texts, nexts
	}
	idx := &valueIndex{}
	for i, o := range others {
		idx.add(o.op, int32(i))
	}
	idx.finish()
	var f flatEvent
	var accepted []int32
	for _, t := range texts {
		f.src, f.buf = []byte(t), f.buf[:0]
		l := leaf{kind: kindString, end: int32(len(t))}
		accepted = idx.appendNext(accepted[:0], &f, &l)
		slices.Sort(accepted)
		for _, i := range accepted {
			add(t, others[i].next)
		}
	}
	return texts, nexts
}

// Transitions with up to this many exact strings, or other operators, test
// them one by one; beyond, they are indexed. Variables so that tests can
// force either way; atomic because a Matcher compacts in the background, and
// a test may change them while an earlier test's compaction still runs.
var maxLinearExact, maxLinearOps atomic.Int64

func init() {
	maxLinearExact.Store(16)
	maxLinearOps.Store(8)
}

// buildMachine compiles the patterns, indexed like names.
//
// Within each group of an alternative (see altBuilder.finish), conditions
// that accept most values (see condition.broad) come last; otherwise
// conditions are ordered by how many patterns test their path, most first,
// so that the fields every rule tests (source, detail-type) come first:
// rules then share the states for them, and one index lookup at the start
// narrows the candidates to the rules for the event's source. Testing the
// broad conditions last rules out a candidate sooner: with 10,000 rules, 8%
// fewer states per event on the tenant corpus, 28% fewer on the dense one.
func buildMachine(names []string, patterns []*Pattern) *machine {
	return buildMachineOn(trieWith(nil, patterns), names, patterns)
}

// buildMachineOn is buildMachine over a finished trie that has every path
// of the patterns (see trieWith), which it reads and does not change.
func buildMachineOn(trie *pathTrie, names []string, patterns []*Pattern) *machine {
	uses := make(map[string]int)
	for _, p := range patterns {
		if p.single != nil { // paths are unique within an alternative
			for _, c := range p.single {
				uses[c.path]++
			}
			continue
		}
		seen := make(map[string]bool)
		p.eachAlt(func(alt alternative) bool {
			for _, c := range alt {
				if !seen[c.path] {
					seen[c.path] = true
					uses[c.path]++
				}
			}
			return true
		})
	}
	var w words
	size, nalts := 0, 0
	for _, p := range patterns {
		size += p.size
		nalts += p.nalts
	}
	w.arena = make([]int32, 0, size)
	w.chains = make([]chain, 0, nalts)
	for r, p := range patterns {
		p.eachAlt(func(alt alternative) bool {
			conds := w.conds[:0]
			conds = append(conds, alt...)
			slices.SortFunc(conds, func(x, y *condition) int { return chainOrder(x, y, uses) })
			w.add(conds, int32(r))
			w.conds = conds
			return true
		})
	}
	b := &builder{trie: trie, nrules: len(patterns), maxExact: int(maxLinearExact.Load()), maxOps: int(maxLinearOps.Load())}
	start := b.fromDAG(w.minimize(), w.labels)
	b.prepare(start)
	m := b.compile(start, names)
	m.merged, m.mergedSize, m.ownSize = b.nmerged, b.mergedSize, b.ownSize
	m.pats = patterns
	return m
}

// chainOrder orders the conditions of an alternative into its chain.
//
// Conditions that every alternative of the pattern has come first: those
// that need a value, then those that also accept a missing field, then
// those that only accept one (see condition.group); within each group,
// conditions that accept most values (see condition.broad) come last;
// otherwise conditions are ordered by how many patterns test their path,
// most first, so that the fields every rule tests (source, detail-type)
// come first: rules then share the states for them, and one index lookup
// at the start narrows the candidates to the rules for the event's source.
// Testing the broad conditions last rules out a candidate sooner: with
// 10,000 rules, 8% fewer states per event on the tenant corpus, 28% fewer
// on the dense one.
//
// The conditions that only some alternatives have ("$or") follow in the
// order of the pattern's text, so that each "$or"'s choices sit together
// in the chain and the alternatives share every state after them (see
// dag.go): ordered otherwise, nine "$or"s could take hundreds of states.
func chainOrder(x, y *condition, uses map[string]int) int {
	if x.common != y.common {
		if x.common {
			return -1
		}
		return 1
	}
	if !x.common {
		return int(x.seq - y.seq)
	}
	if gx, gy := x.group(), y.group(); gx != gy {
		return gx - gy
	}
	if bx, by := x.broad(), y.broad(); bx != by {
		if bx {
			return 1
		}
		return -1
	}
	if ux, uy := uses[x.path], uses[y.path]; ux != uy {
		return uy - ux
	}
	return strings.Compare(x.path, y.path)
}

// broad reports whether the condition has an operator that accepts most
// values: anything-but, a numeric range or exists.
func (c *condition) broad() bool {
	for i := range c.ops {
		switch c.ops[i].kind {
		case opAnythingBut, opNumeric, opExists:
			return true
		}
	}
	return false
}

// builder grows the machine as a graph of build states, then lays it out.
type builder struct {
	trie    *pathTrie
	nstates int
	nrules  int // the machine's rules, for mergeBudget
	// maxExact and maxOps are maxLinearExact and maxLinearOps, read once.
	maxExact, maxOps int
	budget           int                    // what merged states may still add (see merge.go)
	merged           map[string]*buildState // merged states by their members, while preparing
	key              []byte                 // merge's scratch
	counts           []pathCount            // crossSize's scratch
	nmerged          int                    // merged states made
	mergedSize       int                    // their stateSize and crossSize, summed
	ownSize          int                    // the stateSize and crossSize of the states built from the rules, summed
}

type buildState struct {
	id    int32 // final id, set by compile
	seq   int32 // creation order, for merge's keys
	size  int   // stateSize, once measured
	trans []*buildTrans
	rules []int32
	// prepared is set once prepare has queued the state.
	prepared bool
}

type buildTrans struct {
	path        int32
	ops         []buildOp // in the order added
	absentNow   []*buildState
	absentLater []*buildState

	// Set by prepare: the exact strings in order of first use with all
	// their next states, and the other operators.
	texts  []string
	nexts  map[string][]*buildState
	others []buildOp

	// opCounts' counts of ops, once counted.
	nstrs, nothers int
	counted        bool
}

type buildOp struct {
	op   *operator
	next *buildState
}

func (b *builder) newState() *buildState {
	b.nstates++
	return &buildState{id: -1, seq: int32(b.nstates)}
}

// fromDAG turns the minimal automaton into build states, grouping the
// conditions of each state's transitions by path.
func (b *builder) fromDAG(root *dstate, labels []label) *buildState {
	var conv func(d *dstate) *buildState
	conv = func(d *dstate) *buildState {
		if d.built != nil {
			return d.built
		}
		s := b.newState()
		d.built = s
		s.rules = d.rules
		for i, l := range d.labels {
			c, later := labels[l].cond, labels[l].later
			next := conv(d.kids[i])
			path, ok := b.trie.ids[c.path]
			if !ok {
				panic("pattern: a path missing from the machine's trie: " + c.path)
			}
			var t *buildTrans
			for _, x := range s.trans {
				if x.path == path {
					t = x
					break
				}
			}
			if t == nil {
				t = &buildTrans{path: path}
				s.trans = append(s.trans, t)
			}
			for i := range c.ops {
				op := &c.ops[i]
				if op.kind == opAbsent {
					if c.absentOnly() && !later {
						t.absentNow = append(t.absentNow, next)
					} else {
						t.absentLater = append(t.absentLater, next)
					}
					continue
				}
				t.ops = append(t.ops, buildOp{op: op, next: next})
			}
		}
		return s
	}
	return conv(root)
}

// compile numbers the states depth first from start and encodes them.
func (b *builder) compile(start *buildState, names []string) *machine {
	m := &machine{trie: b.trie, npaths: len(b.trie.ids), names: names}
	order := make([]*buildState, 0, b.nstates)
	var number func(s *buildState)
	number = func(s *buildState) {
		s.id = int32(len(order))
		order = append(order, s)
		slices.SortFunc(s.trans, func(a, b *buildTrans) int { return int(a.path - b.path) })
		for _, t := range s.trans {
			for _, text := range t.texts {
				for _, n := range t.nexts[text] {
					if n.id < 0 {
						number(n)
					}
				}
			}
			for _, o := range t.others {
				if o.next.id < 0 {
					number(o.next)
				}
			}
			for _, n := range t.absentNow {
				if n.id < 0 {
					number(n)
				}
			}
			for _, n := range t.absentLater {
				if n.id < 0 {
					number(n)
				}
			}
		}
	}
	number(start)
	m.nstates = len(order)

	// Encode the states in order, leaving references to states to fix once
	// every state has its offset.
	offset := make([]uint32, len(order))
	type fixup struct {
		at uint32
		to *buildState
	}
	var fixups []fixup
	type bigFixup struct {
		big   *bigIndex
		texts []string
		nexts map[string][]*buildState
		other []buildOp
	}
	var bigFixups []bigFixup
	code := make([]byte, 0, 64*len(order))
	word := func(v uint32) { code = binary.LittleEndian.AppendUint32(code, v) }
	ref := func(s *buildState) {
		fixups = append(fixups, fixup{at: uint32(len(code)), to: s})
		word(0)
	}
	text := func(s string) {
		code = append(code, s...)
		for len(code)%4 != 0 {
			code = append(code, 0)
		}
	}
	for _, s := range order {
		offset[s.id] = uint32(len(code))
		word(uint32(s.id))
		word(uint32(len(s.rules)))
		word(uint32(len(s.trans)))
		for _, r := range s.rules {
			word(uint32(r))
		}
		for _, bt := range s.trans {
			texts, nexts, others := bt.texts, bt.nexts, bt.others
			bigStrs := len(texts) > min(b.maxExact, transExactMask)
			bigOps := len(others) > min(b.maxOps, transOpsMask>>transOpsShift)
			var info uint32
			if len(bt.absentNow)+len(bt.absentLater) > 0 {
				info |= transAbsent
			}
			if bigStrs || bigOps {
				info |= transBig
			}
			if !bigStrs {
				info |= uint32(len(texts))
			}
			if !bigOps {
				info |= uint32(len(others)) << transOpsShift
			}
			head := uint32(len(code))
			word(uint32(bt.path))
			word(info)
			word(0) // end, set below
			if info&transAbsent != 0 {
				word(uint32(len(bt.absentNow)))
				word(uint32(len(bt.absentLater)))
				for _, n := range bt.absentNow {
					ref(n)
				}
				for _, n := range bt.absentLater {
					ref(n)
				}
			}
			if info&transBig != 0 {
				word(uint32(len(m.bigs) + len(bigFixups)))
				bf := bigFixup{big: &bigIndex{}}
				if bigStrs {
					bf.texts, bf.nexts = texts, nexts
				}
				if bigOps {
					bf.other = others
				}
				bigFixups = append(bigFixups, bf)
			}
			if !bigStrs {
				for _, t := range texts {
					word(uint32(len(t)))
					word(uint32(len(nexts[t])))
					text(t)
					for _, n := range nexts[t] {
						ref(n)
					}
				}
			}
			if !bigOps {
				for _, o := range others {
					ref(o.next)
					op := o.op
					kindAt := len(code)
					word(uint32(op.kind))
					n0 := len(code)
					switch op.kind {
					case opNumeric:
						code = binary.LittleEndian.AppendUint64(code, math.Float64bits(op.rng.lo))
						code = binary.LittleEndian.AppendUint64(code, math.Float64bits(op.rng.hi))
						var flags uint32
						if op.rng.loIncl {
							flags |= numLoIncl
						}
						if op.rng.hiIncl {
							flags |= numHiIncl
						}
						word(flags)
					case opNumber, opPrefix, opSuffix, opEqualsIgnoreCase, opPrefixIgnoreCase, opSuffixIgnoreCase:
						code = append(code, op.text...)
					case opAnythingBut:
						a := op.but
						word(uint32(a.kind) | uint32(len(a.strs))<<8)
						word(uint32(len(a.nums)))
						if a.kind == butWildcard {
							word(uint32(len(m.xops)))
							m.xops = append(m.xops, op)
							break
						}
						for _, s := range a.strs {
							word(uint32(len(s)))
							text(s)
						}
						for _, x := range a.nums {
							code = binary.LittleEndian.AppendUint64(code, math.Float64bits(x))
						}
					case opCIDR:
						word(uint32(op.cidr.lo.BitLen()))
						lo, hi := op.cidr.lo.As16(), op.cidr.hi.As16()
						code = append(code, lo[:]...)
						code = append(code, hi[:]...)
					case opWildcard:
						word(uint32(len(m.xops)))
						m.xops = append(m.xops, op)
					}
					n := len(code) - n0
					binary.LittleEndian.PutUint32(code[kindAt:], uint32(op.kind)|uint32(n)<<8)
					text("")
				}
			}
			binary.LittleEndian.PutUint32(code[head+8:], uint32(len(code)))
		}
	}
	for _, f := range fixups {
		binary.LittleEndian.PutUint32(code[f.at:], offset[f.to.id])
	}
	for _, bf := range bigFixups {
		if bf.texts != nil {
			bf.big.strs = make(map[string][]int32, len(bf.texts))
			for _, t := range bf.texts {
				list := make([]int32, len(bf.nexts[t]))
				for i, n := range bf.nexts[t] {
					list[i] = int32(offset[n.id])
				}
				bf.big.strs[t] = list
			}
		}
		if bf.other != nil {
			bf.big.idx = &valueIndex{}
			for _, o := range bf.other {
				bf.big.idx.add(o.op, int32(offset[o.next.id]))
			}
			bf.big.idx.finish()
		}
		m.bigs = append(m.bigs, *bf.big)
	}
	m.code = slices.Clip(code)
	return m
}

// appendNext appends the states that the leaf leads to from the transition
// whose info word is info and whose entries start at p.
func (m *machine) appendNext(dst []int32, p, info uint32, big *bigIndex, f *flatEvent, l *leaf) []int32 {
	code := m.code
	n := info & transExactMask
	if l.kind == kindString {
		v := f.value(l)
		for ; n > 0; n-- {
			klen, count := u32(code, p), u32(code, p+4)
			q := p + 8 + (klen+3)&^3
			if int(klen) == len(v) && string(code[p+8:p+8+klen]) == string(v) {
				for i := range count {
					dst = append(dst, int32(u32(code, q+4*i)))
				}
				return dst // with the other operators' next states
			}
			p = q + 4*count
		}
		if big != nil && big.strs != nil {
			if list, ok := big.strs[string(v)]; ok {
				return append(dst, list...)
			}
		}
	} else {
		for ; n > 0; n-- {
			klen, count := u32(code, p), u32(code, p+4)
			p += 8 + (klen+3)&^3 + 4*count
		}
	}
	for n := (info & transOpsMask) >> transOpsShift; n > 0; n-- {
		next := u32(code, p)
		kl := u32(code, p+4)
		p += 8
		if m.matches(opKind(kl), p, kl>>8, f, l) {
			dst = append(dst, int32(next))
		}
		p += (kl>>8 + 3) &^ 3
	}
	if big != nil && big.idx != nil {
		dst = big.idx.appendNext(dst, f, l)
	}
	return dst
}

// matches reports whether an operator of the given kind, with its operand
// at code[p:p+n], accepts the leaf, as the operator's entries in a
// valueIndex would lead on.
func (m *machine) matches(kind opKind, p, n uint32, f *flatEvent, l *leaf) bool {
	switch kind {
	case opAnythingBut:
		return !m.butExcludes(p, f, l)
	case opExists:
		return true
	case opTrue:
		return l.kind == kindTrue
	case opFalse:
		return l.kind == kindFalse
	case opNull:
		return l.kind == kindNull
	case opNumber:
		return l.kind == kindNumber && string(f.value(l)) == string(m.code[p:p+n])
	case opNumeric:
		v, ok := f.numberOf(l)
		if !ok {
			return false
		}
		flags := u32(m.code, p+16)
		r := numRange{
			lo:     math.Float64frombits(binary.LittleEndian.Uint64(m.code[p : p+8])),
			hi:     math.Float64frombits(binary.LittleEndian.Uint64(m.code[p+8 : p+16])),
			loIncl: flags&numLoIncl != 0,
			hiIncl: flags&numHiIncl != 0,
		}
		return r.contains(v)
	}
	if l.kind != kindString {
		return false
	}
	var v []byte
	switch kind {
	case opPrefix, opSuffix:
		v = f.value(l)
	case opEqualsIgnoreCase, opPrefixIgnoreCase, opSuffixIgnoreCase:
		v = f.folded(l)
	case opWildcard:
		return m.xops[u32(m.code, p)].glob.match(f.value(l))
	case opCIDR:
		a, ok := f.ipOf(l)
		if !ok || uint32(a.BitLen()) != u32(m.code, p) {
			return false
		}
		b := a.As16()
		return bytes.Compare(m.code[p+4:p+20], b[:]) <= 0 && bytes.Compare(b[:], m.code[p+20:p+36]) <= 0
	default:
		return false
	}
	text := m.code[p : p+n]
	if len(v) < len(text) {
		return false
	}
	switch kind {
	case opPrefix, opPrefixIgnoreCase:
		return string(v[:len(text)]) == string(text)
	case opSuffix, opSuffixIgnoreCase:
		return string(v[len(v)-len(text):]) == string(text)
	default: // opEqualsIgnoreCase
		return string(v) == string(text)
	}
}

// butExcludes is anythingBut.excludes for an anything-but operand encoded at
// code[p:]: its kind and the number of strings, the number of numbers, then
// the strings (length and text) and the numbers (float64 bits), or for
// wildcards an index into xops.
func (m *machine) butExcludes(p uint32, f *flatEvent, l *leaf) bool {
	code := m.code
	w := u32(code, p)
	kind, nstrs, nnums := butKind(w), w>>8, u32(code, p+4)
	p += 8
	if kind == butWildcard {
		return m.xops[u32(code, p)].but.excludes(f, l)
	}
	switch l.kind {
	case kindNumber:
		if kind != butValues || nnums == 0 {
			return false
		}
		v, ok := f.numberOf(l)
		if !ok {
			return false
		}
		for ; nstrs > 0; nstrs-- {
			p += 4 + (u32(code, p)+3)&^3
		}
		for ; nnums > 0; nnums-- {
			if math.Float64frombits(binary.LittleEndian.Uint64(code[p:p+8])) == v {
				return true
			}
			p += 8
		}
		return false
	case kindString:
	default:
		return false
	}
	var v []byte
	if kind == butIgnoreCase {
		v = f.folded(l)
	} else {
		v = f.value(l)
	}
	for ; nstrs > 0; nstrs-- {
		n := u32(code, p)
		s := code[p+4 : p+4+n]
		p += 4 + (n+3)&^3
		if int(n) > len(v) {
			continue
		}
		switch kind {
		case butValues, butIgnoreCase:
			if int(n) == len(v) && string(s) == string(v) {
				return true
			}
		case butPrefix:
			if string(v[:n]) == string(s) {
				return true
			}
		case butSuffix:
			if string(v[len(v)-int(n):]) == string(s) {
				return true
			}
		}
	}
	return false
}

// valueIndex finds the next states for a value at one path.
type valueIndex struct {
	strs, nums          map[string][]int32 // exact strings; exact numbers by text
	trues, falses, nuls []int32
	prefix, suffix      affixIndex
	prefixIC, suffixIC  affixIndex // on folded text
	ignoreCase          map[string][]int32
	globs               []globEntry
	buts                []butEntry
	ranges              []rangeEntry // sorted by lower bound
	cidrs               cidrIndex
	exists              []int32
	any                 bool // some operator applies to strings beyond exact ones
}

type globEntry struct {
	glob glob
	next int32
}

type butEntry struct {
	but  *anythingBut
	next int32
}

type rangeEntry struct {
	rng  numRange
	next int32
}

func (x *valueIndex) add(op *operator, next int32) {
	addTo := func(m *map[string][]int32, k string) {
		if *m == nil {
			*m = make(map[string][]int32)
		}
		(*m)[k] = append((*m)[k], next)
	}
	switch op.kind {
	case opString:
		addTo(&x.strs, op.text)
	case opNumber:
		addTo(&x.nums, op.text)
	case opTrue:
		x.trues = append(x.trues, next)
	case opFalse:
		x.falses = append(x.falses, next)
	case opNull:
		x.nuls = append(x.nuls, next)
	case opPrefix:
		x.prefix.add(op.text, next)
	case opSuffix:
		x.suffix.add(op.text, next)
	case opPrefixIgnoreCase:
		x.prefixIC.add(op.text, next)
	case opSuffixIgnoreCase:
		x.suffixIC.add(op.text, next)
	case opEqualsIgnoreCase:
		addTo(&x.ignoreCase, op.text)
	case opWildcard:
		x.globs = append(x.globs, globEntry{glob: *op.glob, next: next})
	case opAnythingBut:
		x.buts = append(x.buts, butEntry{but: op.but, next: next})
	case opNumeric:
		x.ranges = append(x.ranges, rangeEntry{rng: *op.rng, next: next})
	case opCIDR:
		x.cidrs.add(*op.cidr, next)
	case opExists:
		x.exists = append(x.exists, next)
	}
}

func (x *valueIndex) finish() {
	slices.SortStableFunc(x.ranges, func(a, b rangeEntry) int {
		switch {
		case a.rng.lo < b.rng.lo:
			return -1
		case a.rng.lo > b.rng.lo:
			return 1
		}
		return 0
	})
	x.prefix.finish()
	x.suffix.finish()
	x.prefixIC.finish()
	x.suffixIC.finish()
	x.cidrs.finish()
	x.any = len(x.prefix.lens)+len(x.suffix.lens)+len(x.prefixIC.lens)+len(x.suffixIC.lens)+
		len(x.ignoreCase)+len(x.globs)+x.cidrs.size() > 0
}

// affixIndex holds prefixes (or suffixes) by their text, with the distinct
// lengths to try.
type affixIndex struct {
	m    map[string][]int32
	lens []int
}

func (a *affixIndex) add(s string, next int32) {
	if a.m == nil {
		a.m = make(map[string][]int32)
	}
	a.m[s] = append(a.m[s], next)
	if !slices.Contains(a.lens, len(s)) {
		a.lens = append(a.lens, len(s))
	}
}

func (a *affixIndex) finish() { slices.Sort(a.lens) }

// cidrIndex holds address ranges: those that are whole networks by prefix
// length, the rest in a list.
type cidrIndex struct {
	nets  map[netip.Prefix][]int32
	bits  []int // distinct prefix lengths in nets, by family: IPv4 then IPv6
	bits6 []int
	other []cidrEntry
}

type cidrEntry struct {
	r    ipRange
	next int32
}

func (c *cidrIndex) add(r ipRange, next int32) {
	p, ok := r.prefix()
	if !ok {
		c.other = append(c.other, cidrEntry{r: r, next: next})
		return
	}
	if c.nets == nil {
		c.nets = make(map[netip.Prefix][]int32)
	}
	c.nets[p] = append(c.nets[p], next)
	if p.Addr().Is4() {
		if !slices.Contains(c.bits, p.Bits()) {
			c.bits = append(c.bits, p.Bits())
		}
	} else if !slices.Contains(c.bits6, p.Bits()) {
		c.bits6 = append(c.bits6, p.Bits())
	}
}

func (c *cidrIndex) finish() {
	slices.Sort(c.bits)
	slices.Sort(c.bits6)
}

func (c *cidrIndex) size() int { return len(c.nets) + len(c.other) }

func (c *cidrIndex) appendNext(dst []int32, a netip.Addr) []int32 {
	bits := c.bits
	if a.Is6() {
		bits = c.bits6
	}
	for _, n := range bits {
		p, err := a.Prefix(n)
		if err == nil {
			dst = append(dst, c.nets[p]...)
		}
	}
	for i := range c.other {
		if c.other[i].r.contains(a) {
			dst = append(dst, c.other[i].next)
		}
	}
	return dst
}

// appendNext appends the states that the leaf leads to.
func (x *valueIndex) appendNext(dst []int32, f *flatEvent, l *leaf) []int32 {
	switch l.kind {
	case kindString:
		v := f.value(l)
		if len(x.strs) > 0 {
			dst = append(dst, x.strs[string(v)]...)
		}
		if x.any {
			dst = x.appendString(dst, f, l, v)
		}
	case kindNumber:
		if len(x.nums) > 0 {
			dst = append(dst, x.nums[string(f.value(l))]...)
		}
		if len(x.ranges) > 0 {
			if n, ok := f.numberOf(l); ok {
				for i := range x.ranges {
					e := &x.ranges[i]
					if e.rng.lo > n {
						break
					}
					if e.rng.contains(n) {
						dst = append(dst, e.next)
					}
				}
			}
		}
	case kindTrue:
		dst = append(dst, x.trues...)
	case kindFalse:
		dst = append(dst, x.falses...)
	case kindNull:
		dst = append(dst, x.nuls...)
	}
	for i := range x.buts {
		if !x.buts[i].but.excludes(f, l) {
			dst = append(dst, x.buts[i].next)
		}
	}
	return append(dst, x.exists...)
}

// appendString handles the string operators other than exact matching.
func (x *valueIndex) appendString(dst []int32, f *flatEvent, l *leaf, v []byte) []int32 {
	for _, n := range x.prefix.lens {
		if n > len(v) {
			break
		}
		dst = append(dst, x.prefix.m[string(v[:n])]...)
	}
	for _, n := range x.suffix.lens {
		if n > len(v) {
			break
		}
		dst = append(dst, x.suffix.m[string(v[len(v)-n:])]...)
	}
	if len(x.ignoreCase) > 0 || len(x.prefixIC.lens) > 0 || len(x.suffixIC.lens) > 0 {
		fv := f.folded(l)
		if len(x.ignoreCase) > 0 {
			dst = append(dst, x.ignoreCase[string(fv)]...)
		}
		for _, n := range x.prefixIC.lens {
			if n > len(fv) {
				break
			}
			dst = append(dst, x.prefixIC.m[string(fv[:n])]...)
		}
		for _, n := range x.suffixIC.lens {
			if n > len(fv) {
				break
			}
			dst = append(dst, x.suffixIC.m[string(fv[len(fv)-n:])]...)
		}
	}
	for i := range x.globs {
		if x.globs[i].glob.match(v) {
			dst = append(dst, x.globs[i].next)
		}
	}
	if x.cidrs.size() > 0 {
		if a, ok := f.ipOf(l); ok {
			dst = x.cidrs.appendNext(dst, a)
		}
	}
	return dst
}

// eventIP parses an event string as an IP address, if it has the shape of
// one. IPv4 addresses parse without allocating.
func eventIP(v []byte) (netip.Addr, bool) {
	if !looksLikeIP(v) {
		return netip.Addr{}, false
	}
	if isDigitsAndDots(v) {
		return parseIPv4(v)
	}
	a, err := netip.ParseAddr(string(v))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseIPv4 parses a dotted quad of decimal numbers 0-255 without leading
// zeros.
func parseIPv4(v []byte) (netip.Addr, bool) {
	var out [4]byte
	part, n, digits := 0, 0, 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == '.' {
			if digits == 0 || part > 3 {
				return netip.Addr{}, false
			}
			out[part] = byte(n)
			part++
			n, digits = 0, 0
			continue
		}
		if digits > 0 && n == 0 {
			return netip.Addr{}, false // leading zero
		}
		n = n*10 + int(v[i]-'0')
		digits++
		if n > 255 {
			return netip.Addr{}, false
		}
	}
	if part != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(out), true
}
