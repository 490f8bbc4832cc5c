package pattern

// This file holds a reference matcher, used only by tests: a direct reading
// of the matching rules, with no automaton, no indexes and no shared code
// with the engine beyond the definition of the semantics. It decodes JSON
// with encoding/json, matches wildcards through regexp, and finds array-
// consistent matches by trying every combination of values. It is slow and
// meant to be obviously right.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// refNode is a decoded JSON value. Objects keep every member in order,
// duplicates included; numbers keep their text.
type refNode struct {
	kind    string // "object", "array", "string", "number", "true", "false", "null"
	text    string
	keys    []string
	members []*refNode
}

func refDecode(data []byte) (*refNode, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := refDecodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("trailing data")
	}
	return n, nil
}

func refDecodeValue(dec *json.Decoder) (*refNode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &refNode{kind: "object"}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := refDecodeValue(dec)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, kt.(string))
				n.members = append(n.members, v)
			}
			_, err := dec.Token()
			return n, err
		case '[':
			n := &refNode{kind: "array"}
			for dec.More() {
				v, err := refDecodeValue(dec)
				if err != nil {
					return nil, err
				}
				n.members = append(n.members, v)
			}
			_, err := dec.Token()
			return n, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case string:
		return &refNode{kind: "string", text: t}, nil
	case json.Number:
		return &refNode{kind: "number", text: string(t)}, nil
	case bool:
		if t {
			return &refNode{kind: "true"}, nil
		}
		return &refNode{kind: "false"}, nil
	case nil:
		return &refNode{kind: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// refLeaf is a scalar of the event with its path and the array elements it
// sits in (array id to index).
type refLeaf struct {
	path  string
	value *refNode
	trail map[int]int
	order [][2]int // the same arrays and indexes, outermost first
}

func refFlatten(root *refNode) []refLeaf {
	var leaves []refLeaf
	arrays := 0
	var walk func(n *refNode, path string, top bool, order [][2]int)
	walk = func(n *refNode, path string, top bool, order [][2]int) {
		switch n.kind {
		case "object":
			for i, k := range n.keys {
				p := k
				if !top {
					p = path + "." + k
				}
				walk(n.members[i], p, false, order)
			}
		case "array":
			id := arrays
			arrays++
			for i, m := range n.members {
				walk(m, path, top, append(order[:len(order):len(order)], [2]int{id, i}))
			}
		default:
			trail := map[int]int{}
			for _, p := range order {
				trail[p[0]] = p[1]
			}
			leaves = append(leaves, refLeaf{path: path, value: n, trail: trail, order: order})
		}
	}
	walk(root, "", true, nil)
	return refDealias(leaves)
}

// refDealias keeps, of the values of a path within one array element (or
// the top of the event), only those that reach it the way its last value
// does: directly, or through the same array below it. A value is dropped
// when, for some element it sits in, the last value of its path in that
// element came another way.
func refDealias(leaves []refLeaf) []refLeaf {
	way := func(l *refLeaf, d int) int {
		if d < len(l.order) {
			return l.order[d][0]
		}
		return -1
	}
	within := func(l *refLeaf, prefix [][2]int) bool {
		if len(l.order) < len(prefix) {
			return false
		}
		for i, p := range prefix {
			if l.order[i] != p {
				return false
			}
		}
		return true
	}
	var out []refLeaf
	for i := range leaves {
		l := &leaves[i]
		keep := true
		for d := 0; d <= len(l.order) && keep; d++ {
			for j := len(leaves) - 1; j >= 0; j-- {
				m := &leaves[j]
				if m.path == l.path && within(m, l.order[:d]) {
					keep = way(m, d) == way(l, d)
					break
				}
			}
		}
		if keep {
			out = append(out, *l)
		}
	}
	return out
}

// refCondition is what one path of one alternative requires.
type refCondition struct {
	path   string
	values []*refNode // the pattern's value list
}

// refAlternatives expands a pattern's "$or"s. Members are applied in order;
// a path set again replaces its earlier value; "$or" multiplies the
// alternatives built so far by its objects.
func refAlternatives(pattern *refNode) [][]refCondition {
	alts := []map[string][]*refNode{}
	var order []string
	var object func(n *refNode, prefix string, top bool)
	object = func(n *refNode, prefix string, top bool) {
		for i, k := range n.keys {
			v := n.members[i]
			if k == "$or" {
				base := alts
				alts = nil
				for _, choice := range v.members {
					saved := alts
					alts = nil
					for _, b := range base {
						c := map[string][]*refNode{}
						for p, x := range b {
							c[p] = x
						}
						alts = append(alts, c)
					}
					if len(alts) == 0 {
						alts = append(alts, map[string][]*refNode{})
					}
					object(choice, prefix, top)
					alts = append(saved, alts...)
				}
				continue
			}
			path := k
			if !top {
				path = prefix + "." + k
			}
			if v.kind == "object" {
				object(v, path, false)
				continue
			}
			if len(alts) == 0 {
				alts = append(alts, map[string][]*refNode{})
			}
			for _, a := range alts {
				a[path] = v.members
			}
			order = append(order, path)
		}
	}
	object(pattern, "", true)
	var out [][]refCondition
	for _, a := range alts {
		var conds []refCondition
		seen := map[string]bool{}
		for _, p := range order {
			if vals, ok := a[p]; ok && !seen[p] {
				seen[p] = true
				conds = append(conds, refCondition{path: p, values: vals})
			}
		}
		out = append(out, conds)
	}
	return out
}

// refMatch reports whether the event matches the pattern: for some
// alternative, one can pick for every condition either a value at its path
// that one of its matchers accepts, or (when it allows {"exists": false})
// nothing; so that the picked values sit in the same element of every array
// they share, and no path where nothing was picked has a value that agrees,
// in that sense, with all the picked values.
func refMatch(pattern, event []byte) (bool, error) {
	pn, err := refDecode(pattern)
	if err != nil {
		return false, err
	}
	en, err := refDecode(event)
	if err != nil {
		return false, err
	}
	if en.kind != "object" {
		return false, fmt.Errorf("event is not an object")
	}
	leaves := refFlatten(en)
	for _, alt := range refAlternatives(pn) {
		if refMatchAlternative(alt, leaves) {
			return true, nil
		}
	}
	return false, nil
}

func refAgree(a, b map[int]int) bool {
	for id, i := range a {
		if j, ok := b[id]; ok && i != j {
			return false
		}
	}
	return true
}

func refMatchAlternative(alt []refCondition, leaves []refLeaf) bool {
	picked := make([]*refLeaf, len(alt)) // nil: nothing picked
	var try func(i int) bool
	try = func(i int) bool {
		if i == len(alt) {
			for k, c := range alt {
				if picked[k] != nil {
					continue
				}
				for li := range leaves {
					l := &leaves[li]
					if l.path != c.path {
						continue
					}
					agrees := true
					for _, p := range picked {
						if p != nil && !refAgree(p.trail, l.trail) {
							agrees = false
						}
					}
					if agrees {
						return false
					}
				}
			}
			return true
		}
		c := alt[i]
		if refAllowsAbsent(c.values) {
			picked[i] = nil
			if try(i + 1) {
				return true
			}
		}
		for li := range leaves {
			l := &leaves[li]
			if l.path != c.path || !refAnyValue(c.values, l.value) {
				continue
			}
			ok := true
			for _, p := range picked[:i] {
				if p != nil && !refAgree(p.trail, l.trail) {
					ok = false
				}
			}
			if !ok {
				continue
			}
			picked[i] = l
			if try(i + 1) {
				return true
			}
			picked[i] = nil
		}
		return false
	}
	return try(0)
}

func refAllowsAbsent(values []*refNode) bool {
	for _, v := range values {
		if v.kind == "object" && v.keys[0] == "exists" && v.members[0].kind == "false" {
			return true
		}
	}
	return false
}

func refAnyValue(values []*refNode, v *refNode) bool {
	for _, m := range values {
		if refValue(m, v) {
			return true
		}
	}
	return false
}

var (
	refIPv4Shape = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$`)
	refIPv6Shape = regexp.MustCompile(`^[0-9a-fA-F:]*:[0-9a-fA-F:]*$`)
)

func refIP(s string) (netip.Addr, bool) {
	if !refIPv4Shape.MatchString(s) && !refIPv6Shape.MatchString(s) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func refFold(s string) string {
	rs := []rune(s)
	for i, r := range rs {
		rs[i] = unicode.ToLower(unicode.ToUpper(r))
	}
	return string(rs)
}

func refNumber(v *refNode) (float64, bool) {
	if v.kind != "number" {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.text, 64)
	return f, err == nil
}

func refGlob(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	var lit strings.Builder
	flush := func() {
		b.WriteString(regexp.QuoteMeta(lit.String()))
		lit.Reset()
	}
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '\\':
			i++
			lit.WriteByte(pattern[i])
		case '*':
			flush()
			b.WriteString(`.*`)
		default:
			lit.WriteByte(pattern[i])
		}
	}
	flush()
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

// refCIDR parses a cidr operand into an inclusive range, from the address
// written to the top of its network.
func refCIDR(s string) (lo, hi netip.Addr) {
	addrText, bitsText, _ := strings.Cut(s, "/")
	addr, _ := refIP(addrText)
	bits, _ := strconv.Atoi(bitsText)
	n := new(big.Int).SetBytes(addr.AsSlice())
	host := addr.BitLen() - bits
	top := new(big.Int).Or(n, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(host)), big.NewInt(1)))
	buf := make([]byte, addr.BitLen()/8)
	top.FillBytes(buf)
	hiAddr, _ := netip.AddrFromSlice(buf)
	return addr, hiAddr
}

func refInRange(a, lo, hi netip.Addr) bool {
	return a.BitLen() == lo.BitLen() && lo.Compare(a) <= 0 && a.Compare(hi) <= 0
}

// refValue reports whether one entry of a pattern's value list accepts v.
func refValue(m, v *refNode) bool {
	switch m.kind {
	case "string":
		if ip, ok := refIP(m.text); ok {
			ev, ok := refIP(v.text)
			return v.kind == "string" && ok && ev == ip
		}
		return v.kind == "string" && v.text == m.text
	case "number":
		// By its text, or by value (AWS matches 300.0 to [300]).
		if v.kind != "number" {
			return false
		}
		a, aok := refNumber(m)
		b, bok := refNumber(v)
		return v.text == m.text || (aok && bok && a == b)
	case "true", "false", "null":
		return v.kind == m.kind
	}
	op, arg := m.keys[0], m.members[0]
	str := v.kind == "string"
	switch op {
	case "exactly":
		return str && v.text == arg.text
	case "prefix":
		if arg.kind == "object" {
			return str && strings.HasPrefix(refFold(v.text), refFold(arg.members[0].text))
		}
		return str && strings.HasPrefix(v.text, arg.text)
	case "suffix":
		if arg.kind == "object" {
			return str && strings.HasSuffix(refFold(v.text), refFold(arg.members[0].text))
		}
		return str && strings.HasSuffix(v.text, arg.text)
	case "equals-ignore-case":
		return str && refFold(v.text) == refFold(arg.text)
	case "wildcard":
		return str && refGlob(arg.text).MatchString(v.text)
	case "exists":
		return arg.kind == "true"
	case "numeric":
		f, ok := refNumber(v)
		if !ok {
			return false
		}
		items := arg.members
		for i := 0; i < len(items); i += 2 {
			bound, _ := strconv.ParseFloat(items[i+1].text, 64)
			var holds bool
			switch items[i].text {
			case "=":
				holds = f == bound
			case "<":
				holds = f < bound
			case "<=":
				holds = f <= bound
			case ">":
				holds = f > bound
			case ">=":
				holds = f >= bound
			}
			if !holds {
				return false
			}
		}
		return true
	case "cidr":
		a, ok := refIP(v.text)
		if !str || !ok {
			return false
		}
		lo, hi := refCIDR(arg.text)
		return refInRange(a, lo, hi)
	case "anything-but":
		return !refExcluded(arg, v)
	}
	panic("reference: unknown operator " + op)
}

// refExcluded reports whether an anything-but operand rules v out.
func refExcluded(arg, v *refNode) bool {
	list := func(n *refNode) []*refNode {
		if n.kind == "array" {
			return n.members
		}
		return []*refNode{n}
	}
	if arg.kind != "object" {
		for _, x := range list(arg) {
			if x.kind == "string" && v.kind == "string" && x.text == v.text {
				return true
			}
			if x.kind == "number" && v.kind == "number" {
				a, _ := refNumber(x)
				b, ok := refNumber(v)
				if ok && a == b {
					return true
				}
			}
		}
		return false
	}
	if v.kind != "string" {
		return false
	}
	form := arg.keys[0]
	for _, x := range list(arg.members[0]) {
		switch form {
		case "prefix":
			if strings.HasPrefix(v.text, x.text) {
				return true
			}
		case "suffix":
			if strings.HasSuffix(v.text, x.text) {
				return true
			}
		case "equals-ignore-case":
			if refFold(v.text) == refFold(x.text) {
				return true
			}
		case "wildcard":
			if refGlob(x.text).MatchString(v.text) {
				return true
			}
		}
	}
	return false
}
