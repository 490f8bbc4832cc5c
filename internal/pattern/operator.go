package pattern

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
)

// opKind is the kind of one matcher in a pattern's value list.
type opKind uint8

const (
	opString           opKind = iota // exact string
	opNumber                         // exact number, compared by its text
	opTrue                           // true
	opFalse                          // false
	opNull                           // null
	opPrefix                         // {"prefix": "..."}
	opSuffix                         // {"suffix": "..."}
	opEqualsIgnoreCase               // {"equals-ignore-case": "..."}
	opPrefixIgnoreCase               // {"prefix": {"equals-ignore-case": "..."}}
	opSuffixIgnoreCase               // {"suffix": {"equals-ignore-case": "..."}}
	opWildcard                       // {"wildcard": "..."}
	opAnythingBut                    // {"anything-but": ...}
	opNumeric                        // {"numeric": [...]}
	opCIDR                           // {"cidr": "..."}
	opExists                         // {"exists": true}
	opAbsent                         // {"exists": false}
)

// operator is one matcher of a field. The ignore-case forms hold their
// operand already folded. Immutable once parsed.
type operator struct {
	kind opKind
	text string // string operand, number text, or wildcard source
	// The compiled operand of the kinds that have one; pointers, so that
	// the plain kinds, the many, stay small.
	glob *glob
	but  *anythingBut
	rng  *numRange
	cidr *ipRange
}

// key is a canonical text for the operator, equal for equal operators.
func (o *operator) key() string {
	var b strings.Builder
	b.WriteByte(byte('A' + o.kind))
	switch o.kind {
	case opAnythingBut:
		b.WriteString(o.but.key())
	case opNumeric:
		b.WriteString(o.rng.key())
	case opCIDR:
		b.WriteString(o.cidr.String())
	default:
		b.WriteString(o.text)
	}
	return b.String()
}

// butKind is what an anything-but excludes.
type butKind uint8

const (
	butValues     butKind = iota // exact strings and numbers
	butPrefix                    // strings with one of the prefixes
	butSuffix                    // strings with one of the suffixes
	butIgnoreCase                // strings equal, ignoring case, to one of strs (folded)
	butWildcard                  // strings matching one of the wildcards
)

// anythingBut matches every leaf value (strings, numbers, booleans and null)
// except those it excludes: strings, or numbers compared by value. It never
// matches a missing field.
type anythingBut struct {
	kind  butKind
	strs  []string  // sorted excluded strings, prefixes, suffixes, folded strings or wildcards
	nums  []float64 // sorted excluded numbers (butValues)
	globs []glob    // butWildcard, in the order of strs
}

func (a *anythingBut) key() string {
	var b strings.Builder
	b.WriteByte(byte('0' + a.kind))
	for _, s := range a.strs {
		b.WriteString(strconv.Quote(s))
	}
	b.WriteByte('#')
	for _, n := range a.nums {
		b.WriteString(strconv.FormatFloat(n, 'g', -1, 64))
		b.WriteByte(',')
	}
	return b.String()
}

// excludes reports whether the leaf is one of the values this anything-but
// rules out.
func (a *anythingBut) excludes(f *flatEvent, l *leaf) bool {
	switch l.kind {
	case kindNumber:
		if a.kind != butValues || len(a.nums) == 0 {
			return false
		}
		v, ok := f.numberOf(l)
		if !ok {
			return false
		}
		_, found := slices.BinarySearch(a.nums, v)
		return found
	case kindString:
	default:
		return false
	}
	v := f.value(l)
	switch a.kind {
	case butValues:
		for _, s := range a.strs {
			if s == string(v) {
				return true
			}
		}
	case butPrefix:
		for _, s := range a.strs {
			if len(v) >= len(s) && string(v[:len(s)]) == s {
				return true
			}
		}
	case butSuffix:
		for _, s := range a.strs {
			if len(v) >= len(s) && string(v[len(v)-len(s):]) == s {
				return true
			}
		}
	case butIgnoreCase:
		fv := f.folded(l)
		for _, s := range a.strs {
			if s == string(fv) {
				return true
			}
		}
	case butWildcard:
		for i := range a.globs {
			if a.globs[i].match(v) {
				return true
			}
		}
	}
	return false
}

// numRange is the set of numbers a numeric matcher accepts.
type numRange struct {
	lo, hi         float64 // -Inf and +Inf when open
	loIncl, hiIncl bool
}

func (r numRange) contains(v float64) bool {
	if v < r.lo || (v == r.lo && !r.loIncl) {
		return false
	}
	if v > r.hi || (v == r.hi && !r.hiIncl) {
		return false
	}
	return true
}

func (r numRange) key() string {
	var b []byte
	if r.loIncl {
		b = append(b, '[')
	} else {
		b = append(b, '(')
	}
	b = strconv.AppendFloat(b, r.lo, 'g', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, r.hi, 'g', -1, 64)
	if r.hiIncl {
		b = append(b, ']')
	} else {
		b = append(b, ')')
	}
	return string(b)
}

var fullRange = numRange{lo: math.Inf(-1), hi: math.Inf(1)}

// glob is a compiled wildcard pattern: literal parts separated by '*'. A
// pattern without '*' has one part and matches only itself.
type glob struct {
	parts  []string
	bparts [][]byte // parts as bytes, for searching without conversions
}

// compileGlob splits a validated wildcard pattern at its unescaped stars and
// resolves the escapes \* and \\.
func compileGlob(src string) glob {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case '\\':
			i++
			cur.WriteByte(src[i])
		case '*':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	parts = append(parts, cur.String())
	g := glob{parts: parts}
	for _, p := range parts {
		g.bparts = append(g.bparts, []byte(p))
	}
	return g
}

// match reports whether v matches. The first part anchors at the start and
// the last at the end; each middle part is taken at its leftmost occurrence,
// which is optimal for patterns whose only metacharacter is '*'.
func (g *glob) match(v []byte) bool {
	parts := g.parts
	if len(parts) == 1 {
		return string(v) == parts[0]
	}
	first, last := parts[0], parts[len(parts)-1]
	if len(v) < len(first)+len(last) || string(v[:len(first)]) != first || string(v[len(v)-len(last):]) != last {
		return false
	}
	rest := v[len(first) : len(v)-len(last)]
	for _, p := range g.bparts[1 : len(parts)-1] {
		i := bytes.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return true
}

// sortedUnique sorts strs and removes duplicates.
func sortedUnique(strs []string) []string {
	slices.Sort(strs)
	return slices.Compact(strs)
}

// accepts reports whether the operator accepts the leaf, as the machine's
// entries for it would lead on (machine.matches and valueIndex). Used where
// conditions are tested one by one (see bounded.go).
func (o *operator) accepts(f *flatEvent, l *leaf) bool {
	switch o.kind {
	case opString:
		return l.kind == kindString && string(f.value(l)) == o.text
	case opNumber:
		return l.kind == kindNumber && string(f.value(l)) == o.text
	case opTrue:
		return l.kind == kindTrue
	case opFalse:
		return l.kind == kindFalse
	case opNull:
		return l.kind == kindNull
	case opExists:
		return true
	case opAbsent:
		return false
	case opAnythingBut:
		return !o.but.excludes(f, l)
	case opNumeric:
		v, ok := f.numberOf(l)
		return ok && o.rng.contains(v)
	}
	if l.kind != kindString {
		return false
	}
	v := f.value(l)
	switch o.kind {
	case opPrefix:
		return bytes.HasPrefix(v, []byte(o.text))
	case opSuffix:
		return bytes.HasSuffix(v, []byte(o.text))
	case opEqualsIgnoreCase:
		return string(f.folded(l)) == o.text
	case opPrefixIgnoreCase:
		return bytes.HasPrefix(f.folded(l), []byte(o.text))
	case opSuffixIgnoreCase:
		return bytes.HasSuffix(f.folded(l), []byte(o.text))
	case opWildcard:
		return o.glob.match(v)
	case opCIDR:
		a, ok := f.ipOf(l)
		return ok && o.cidr.contains(a)
	}
	return false
}
