package pattern

import (
	"net/netip"
	"slices"
	"strings"
)

// machine is the automaton for a set of named patterns. Every alternative of
// every pattern is a chain of conditions from the start state; alternatives
// that begin with the same conditions share states, and at each state the
// values of one field select the next states through an index, so the work
// for an event grows with the fields that patterns use and with the
// conditions that actually match, not with the number of patterns. A machine
// is immutable once built and safe for concurrent use.
type machine struct {
	trie    *pathTrie
	npaths  int
	nstates int
	start   *state
	names   []string // rule index to name
}

// state is a point in the machine: the conditions before it hold.
type state struct {
	id    int32
	trans []*transition // one per path tested next
	rules []int32       // rules whose alternative ends here
}

// transition tests the values at one path.
type transition struct {
	path int32
	idx  valueIndex
	// absentNow leads on when the field is missing, for conditions that are
	// only {"exists": false}. absentLater does the same for conditions that
	// also accept values; their absence is confirmed when a rule ends.
	absentNow   []*state
	absentLater []*state

	children map[string]*state // build time: condition key to next state
}

// buildMachine compiles the patterns, indexed like names.
//
// Within each group of an alternative (see altBuilder.finish), conditions
// are ordered by how many patterns test their path, most first, so that the
// fields every rule tests (source, detail-type) come first: rules then share
// the states for them, and one index lookup at the start narrows the
// candidates to the rules for the event's source.
func buildMachine(names []string, patterns []*Pattern) *machine {
	m := &machine{trie: newPathTrie(), names: names}
	m.start = m.newState()
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
			s := m.start
			for _, c := range conds {
				s = m.step(s, c)
			}
			if !slices.Contains(s.rules, int32(r)) {
				s.rules = append(s.rules, int32(r))
			}
		}
	}
	m.npaths = len(m.trie.ids)
	m.finish(m.start)
	return m
}

func (m *machine) newState() *state {
	s := &state{id: int32(m.nstates)}
	m.nstates++
	return s
}

// step returns the state after condition c from s, creating it if needed.
func (m *machine) step(s *state, c *condition) *state {
	path := m.trie.id(c.path)
	var t *transition
	for _, x := range s.trans {
		if x.path == path {
			t = x
			break
		}
	}
	if t == nil {
		t = &transition{path: path, children: make(map[string]*state)}
		s.trans = append(s.trans, t)
	}
	if next, ok := t.children[c.key]; ok {
		return next
	}
	next := m.newState()
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
		t.idx.add(op, next)
	}
	return next
}

// finish sorts the indexes and drops build-time maps, depth first.
func (m *machine) finish(s *state) {
	slices.SortFunc(s.trans, func(a, b *transition) int { return int(a.path - b.path) })
	for _, t := range s.trans {
		t.idx.finish()
		for _, next := range t.children {
			m.finish(next)
		}
		t.children = nil
	}
}

// valueIndex finds the next states for a value at one path.
type valueIndex struct {
	strs, nums          map[string][]*state // exact strings; exact numbers by text
	trues, falses, nuls []*state
	prefix, suffix      affixIndex
	prefixIC, suffixIC  affixIndex // on folded text
	ignoreCase          map[string][]*state
	globs               []globEntry
	buts                []butEntry
	ranges              []rangeEntry // sorted by lower bound
	cidrs               cidrIndex
	exists              []*state
	any                 bool // some operator applies to strings beyond exact ones
}

type globEntry struct {
	glob glob
	next *state
}

type butEntry struct {
	but  *anythingBut
	next *state
}

type rangeEntry struct {
	rng  numRange
	next *state
}

func (x *valueIndex) add(op *operator, next *state) {
	addTo := func(m *map[string][]*state, k string) {
		if *m == nil {
			*m = make(map[string][]*state)
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
	m    map[string][]*state
	lens []int
}

func (a *affixIndex) add(s string, next *state) {
	if a.m == nil {
		a.m = make(map[string][]*state)
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
	nets  map[netip.Prefix][]*state
	bits  []int // distinct prefix lengths in nets, by family: IPv4 then IPv6
	bits6 []int
	other []cidrEntry
}

type cidrEntry struct {
	r    ipRange
	next *state
}

func (c *cidrIndex) add(r ipRange, next *state) {
	p, ok := r.prefix()
	if !ok {
		c.other = append(c.other, cidrEntry{r: r, next: next})
		return
	}
	if c.nets == nil {
		c.nets = make(map[netip.Prefix][]*state)
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

func (c *cidrIndex) appendNext(dst []*state, a netip.Addr) []*state {
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
func (x *valueIndex) appendNext(dst []*state, f *flatEvent, l *leaf) []*state {
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
func (x *valueIndex) appendString(dst []*state, f *flatEvent, l *leaf, v []byte) []*state {
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
