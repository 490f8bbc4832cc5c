package pattern

import (
	"net/netip"
	"slices"
	"strings"
)

// machine is the automaton for a set of named patterns. Every alternative of
// every pattern is a chain of conditions from the start state; alternatives
// that begin with the same conditions share states, and at each state the
// values of one field select the next states, so the work for an event grows
// with the fields that patterns use and with the conditions that actually
// match, not with the number of patterns. A machine is immutable once built
// and safe for concurrent use.
//
// The machine is stored in a few flat arrays indexed by int32 (states by id,
// transitions, exact strings, operators), numbered depth first from the
// start state, so that a match touches few cache lines: with 10,000 rules the
// pointer-linked graph of maps this replaced spent half its time waiting for
// memory. Transitions with many values or operators keep hash indexes.
type machine struct {
	trie   *pathTrie
	npaths int
	names  []string // rule index to name

	states []state      // by id; the start state is 0
	trans  []transition // each state's transitions, by path
	exact  []exactEntry // exact string values of transitions without a map
	keys   string       // the text of the exact entries
	ops    []opEntry    // other operators of transitions without an index
	ranges []numRange   // operands of numeric opEntries
	rules  []int32      // the rules that end at each state
	nexts  []int32      // states after an absence
}

// state is a point in the machine: the conditions before it hold.
type state struct {
	trans0, trans1 int32 // machine.trans[trans0:trans1], one per path tested next
	rules0, rules1 int32 // machine.rules[rules0:rules1], rules whose alternative ends here
}

// transition tests the values at one path. The values lead on through the
// exact entries and operator entries it owns, or through big when it has
// many of them.
type transition struct {
	path           int32
	exact0, exact1 int32 // machine.exact[exact0:exact1]
	ops0, ops1     int32 // machine.ops[ops0:ops1]
	// absentNow leads on when the field is missing, for conditions that are
	// only {"exists": false}. absentLater does the same for conditions that
	// also accept values; their absence is confirmed when a rule ends. Both
	// are ranges of machine.nexts.
	absentNow0, absentNow1     int32
	absentLater0, absentLater1 int32
	big                        *bigIndex
}

// exactEntry leads from one exact string value to a state. A value that
// several conditions list has one entry per condition.
type exactEntry struct {
	koff, klen uint32 // the value: machine.keys[koff:koff+klen]
	next       int32
}

// opEntry leads from one operator other than an exact string to a state.
// The operand is in the machine: text in machine.keys[koff:koff+klen], or
// for numeric ranges machine.ranges[koff]; the other operators keep it in op.
type opEntry struct {
	kind       opKind
	koff, klen uint32
	next       int32
	op         *operator
}

// bigIndex indexes the values of a transition with many of them.
type bigIndex struct {
	strs map[string][]int32 // exact strings, when there are many
	idx  *valueIndex        // the other operators, when there are many
}

// Transitions with up to this many exact strings, or other operators, test
// them one by one; beyond, they are indexed. Variables so that tests can
// force either way.
var (
	maxLinearExact = 16
	maxLinearOps   = 8
)

// buildMachine compiles the patterns, indexed like names.
//
// Within each group of an alternative (see altBuilder.finish), conditions
// are ordered by how many patterns test their path, most first, so that the
// fields every rule tests (source, detail-type) come first: rules then share
// the states for them, and one index lookup at the start narrows the
// candidates to the rules for the event's source.
func buildMachine(names []string, patterns []*Pattern) *machine {
	b := &builder{trie: newPathTrie()}
	start := b.newState()
	uses := make(map[string]int)
	for _, p := range patterns {
		seen := make(map[string]bool)
		for _, alt := range p.alts {
			for i := range alt {
				if path := alt[i].path; !seen[path] {
					seen[path] = true
					uses[path]++
				}
			}
		}
	}
	var conds []*condition
	for r, p := range patterns {
		for _, alt := range p.alts {
			conds = conds[:0]
			for i := range alt {
				conds = append(conds, &alt[i])
			}
			slices.SortStableFunc(conds, func(x, y *condition) int {
				if gx, gy := x.group(), y.group(); gx != gy {
					return gx - gy
				}
				if ux, uy := uses[x.path], uses[y.path]; ux != uy {
					return uy - ux
				}
				return strings.Compare(x.path, y.path)
			})
			s := start
			for _, c := range conds {
				s = b.step(s, c)
			}
			if !slices.Contains(s.rules, int32(r)) {
				s.rules = append(s.rules, int32(r))
			}
		}
	}
	return b.compile(start, names)
}

// builder grows the machine as a graph of build states, then lays it out.
type builder struct {
	trie    *pathTrie
	nstates int
}

type buildState struct {
	id    int32 // final id, set by compile
	trans []*buildTrans
	rules []int32
}

type buildTrans struct {
	path        int32
	children    map[string]*buildState // condition key to next state
	ops         []buildOp              // in the order added
	absentNow   []*buildState
	absentLater []*buildState
}

type buildOp struct {
	op   *operator
	next *buildState
}

func (b *builder) newState() *buildState {
	b.nstates++
	return &buildState{id: -1}
}

// step returns the state after condition c from s, creating it if needed.
func (b *builder) step(s *buildState, c *condition) *buildState {
	path := b.trie.id(c.path)
	var t *buildTrans
	for _, x := range s.trans {
		if x.path == path {
			t = x
			break
		}
	}
	if t == nil {
		t = &buildTrans{path: path, children: make(map[string]*buildState)}
		s.trans = append(s.trans, t)
	}
	if next, ok := t.children[c.key]; ok {
		return next
	}
	next := b.newState()
	t.children[c.key] = next
	for i := range c.ops {
		op := &c.ops[i]
		if op.kind == opAbsent {
			if c.absentOnly() {
				t.absentNow = append(t.absentNow, next)
			} else {
				t.absentLater = append(t.absentLater, next)
			}
			continue
		}
		t.ops = append(t.ops, buildOp{op: op, next: next})
	}
	return next
}

// compile numbers the states depth first from start and lays the machine
// out in its arrays.
func (b *builder) compile(start *buildState, names []string) *machine {
	b.trie.root.finish()
	m := &machine{trie: b.trie, npaths: len(b.trie.ids), names: names}
	m.states = make([]state, 0, b.nstates)
	order := make([]*buildState, 0, b.nstates)
	var number func(s *buildState)
	number = func(s *buildState) {
		s.id = int32(len(order))
		order = append(order, s)
		slices.SortFunc(s.trans, func(a, b *buildTrans) int { return int(a.path - b.path) })
		for _, t := range s.trans {
			for _, o := range t.ops {
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
	var keys strings.Builder
	ids := func(list []*buildState) (int32, int32) {
		i0 := int32(len(m.nexts))
		for _, n := range list {
			m.nexts = append(m.nexts, n.id)
		}
		return i0, int32(len(m.nexts))
	}
	for _, s := range order {
		st := state{trans0: int32(len(m.trans)), rules0: int32(len(m.rules))}
		m.rules = append(m.rules, s.rules...)
		st.rules1 = int32(len(m.rules))
		for _, bt := range s.trans {
			t := transition{path: bt.path}
			var strs, others []buildOp
			for _, o := range bt.ops {
				if o.op.kind == opString {
					strs = append(strs, o)
				} else {
					others = append(others, o)
				}
			}
			if len(strs) > maxLinearExact || len(others) > maxLinearOps {
				t.big = &bigIndex{}
			}
			t.exact0 = int32(len(m.exact))
			if len(strs) > maxLinearExact {
				t.big.strs = make(map[string][]int32, len(strs))
				for _, o := range strs {
					t.big.strs[o.op.text] = append(t.big.strs[o.op.text], o.next.id)
				}
			} else {
				for _, o := range strs {
					m.exact = append(m.exact, exactEntry{koff: uint32(keys.Len()), klen: uint32(len(o.op.text)), next: o.next.id})
					keys.WriteString(o.op.text)
				}
			}
			t.exact1 = int32(len(m.exact))
			t.ops0 = int32(len(m.ops))
			if len(others) > maxLinearOps {
				t.big.idx = &valueIndex{}
				for _, o := range others {
					t.big.idx.add(o.op, o.next.id)
				}
				t.big.idx.finish()
			} else {
				for _, o := range others {
					e := opEntry{kind: o.op.kind, next: o.next.id, op: o.op}
					switch o.op.kind {
					case opNumeric:
						e.koff = uint32(len(m.ranges))
						m.ranges = append(m.ranges, o.op.rng)
					case opNumber, opPrefix, opSuffix, opEqualsIgnoreCase, opPrefixIgnoreCase, opSuffixIgnoreCase:
						e.koff, e.klen = uint32(keys.Len()), uint32(len(o.op.text))
						keys.WriteString(o.op.text)
					}
					m.ops = append(m.ops, e)
				}
			}
			t.ops1 = int32(len(m.ops))
			t.absentNow0, t.absentNow1 = ids(bt.absentNow)
			t.absentLater0, t.absentLater1 = ids(bt.absentLater)
			m.trans = append(m.trans, t)
		}
		st.trans1 = int32(len(m.trans))
		m.states = append(m.states, st)
	}
	m.keys = keys.String()
	return m
}

// appendNext appends the states that the leaf leads to from t.
func (m *machine) appendNext(dst []int32, t *transition, f *flatEvent, l *leaf) []int32 {
	if l.kind == kindString && t.exact1 > t.exact0 {
		v := f.value(l)
		for _, e := range m.exact[t.exact0:t.exact1] {
			if int(e.klen) == len(v) && m.keys[e.koff:e.koff+e.klen] == string(v) {
				dst = append(dst, e.next)
			}
		}
	}
	for i := t.ops0; i < t.ops1; i++ {
		if e := &m.ops[i]; m.matches(e, f, l) {
			dst = append(dst, e.next)
		}
	}
	if t.big != nil {
		if t.big.strs != nil && l.kind == kindString {
			dst = append(dst, t.big.strs[string(f.value(l))]...)
		}
		if t.big.idx != nil {
			dst = t.big.idx.appendNext(dst, f, l)
		}
	}
	return dst
}

// matches reports whether the operator of e accepts the leaf, as the
// operator's entries in a valueIndex would lead on.
func (m *machine) matches(e *opEntry, f *flatEvent, l *leaf) bool {
	switch e.kind {
	case opAnythingBut:
		return !e.op.but.excludes(f, l)
	case opExists:
		return true
	case opTrue:
		return l.kind == kindTrue
	case opFalse:
		return l.kind == kindFalse
	case opNull:
		return l.kind == kindNull
	case opNumber:
		return l.kind == kindNumber && string(f.value(l)) == m.keys[e.koff:e.koff+e.klen]
	case opNumeric:
		n, ok := f.numberOf(l)
		return ok && m.ranges[e.koff].contains(n)
	}
	if l.kind != kindString {
		return false
	}
	var v []byte
	switch e.kind {
	case opPrefix, opSuffix:
		v = f.value(l)
	case opEqualsIgnoreCase, opPrefixIgnoreCase, opSuffixIgnoreCase:
		v = f.folded(l)
	case opWildcard:
		return e.op.glob.match(f.value(l))
	case opCIDR:
		a, ok := eventIP(f.value(l))
		return ok && e.op.cidr.contains(a)
	default:
		return false
	}
	text := m.keys[e.koff : e.koff+e.klen]
	if len(v) < len(text) {
		return false
	}
	switch e.kind {
	case opPrefix, opPrefixIgnoreCase:
		return string(v[:len(text)]) == text
	case opSuffix, opSuffixIgnoreCase:
		return string(v[len(v)-len(text):]) == text
	default: // opEqualsIgnoreCase
		return string(v) == text
	}
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
		x.globs = append(x.globs, globEntry{glob: op.glob, next: next})
	case opAnythingBut:
		x.buts = append(x.buts, butEntry{but: op.but, next: next})
	case opNumeric:
		x.ranges = append(x.ranges, rangeEntry{rng: op.rng, next: next})
	case opCIDR:
		x.cidrs.add(op.cidr, next)
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
		if a, ok := eventIP(v); ok {
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
