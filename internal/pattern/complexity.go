package pattern

import (
	"slices"
)

// maxComplexityStates bounds the work of measuring complexity: a field whose
// wildcards need more distinct matching states than this counts as too
// complex.
const maxComplexityStates = 4096

// patternComplexity returns the largest complexity of the wildcard operators
// on any one field of the pattern, capped at limit.
func patternComplexity(p *Pattern, limit int) int {
	byPath := make(map[string][]string)
	p.eachAlt(func(alt alternative) bool {
		for _, c := range alt {
			for _, op := range c.ops {
				if op.kind == opWildcard && !slices.Contains(byPath[c.path], op.text) {
					byPath[c.path] = append(byPath[c.path], op.text)
				}
			}
		}
		return true
	})
	worst := 0
	for _, srcs := range byPath {
		globs := make([]glob, len(srcs))
		for i, s := range srcs {
			globs[i] = compileGlob(s)
		}
		worst = max(worst, globComplexity(globs, limit))
		if worst >= limit {
			return limit
		}
	}
	return worst
}

// globToken is a literal byte or a star.
type globToken struct {
	star bool
	b    byte
}

func (g *glob) tokens() []globToken {
	var t []globToken
	for i, part := range g.parts {
		if i > 0 {
			t = append(t, globToken{star: true})
		}
		for j := 0; j < len(part); j++ {
			t = append(t, globToken{b: part[j]})
		}
	}
	return t
}

// globComplexity measures a set of wildcard patterns that test the same
// field: the largest number of (pattern, position) states that a single
// input can keep active at once when the patterns are run as one
// nondeterministic automaton over bytes. A leading star and the position
// after it are both active, so "*.png" has complexity 3 (after "."), and each
// further star or repeated sequence after a star adds more. The result is
// capped at limit.
func globComplexity(globs []glob, limit int) int {
	type state struct{ g, pos int32 }
	toks := make([][]globToken, len(globs))
	var used [256]bool
	for i := range globs {
		toks[i] = globs[i].tokens()
		for _, t := range toks[i] {
			if !t.star {
				used[t.b] = true
			}
		}
	}
	alphabet := []byte{}
	other := -1
	for b := range 256 {
		if used[b] {
			alphabet = append(alphabet, byte(b))
		} else if other < 0 {
			other = b
		}
	}
	if other >= 0 {
		alphabet = append(alphabet, byte(other))
	}
	closure := func(set []state) []state {
		for i := 0; i < len(set); i++ {
			s := set[i]
			t := toks[s.g]
			if int(s.pos) < len(t) && t[s.pos].star {
				next := state{s.g, s.pos + 1}
				if !slices.Contains(set, next) {
					set = append(set, next)
				}
			}
		}
		slices.SortFunc(set, func(a, b state) int {
			if a.g != b.g {
				return int(a.g - b.g)
			}
			return int(a.pos - b.pos)
		})
		return slices.Compact(set)
	}
	keyOf := func(set []state) string {
		b := make([]byte, 0, len(set)*8)
		for _, s := range set {
			b = append(b, byte(s.g>>24), byte(s.g>>16), byte(s.g>>8), byte(s.g), byte(s.pos>>24), byte(s.pos>>16), byte(s.pos>>8), byte(s.pos))
		}
		return string(b)
	}
	var start []state
	for g := range globs {
		start = append(start, state{int32(g), 0})
	}
	start = closure(start)
	seen := map[string]bool{keyOf(start): true}
	queue := [][]state{start}
	worst := 0
	for len(queue) > 0 {
		set := queue[0]
		queue = queue[1:]
		worst = max(worst, len(set))
		if worst >= limit {
			return limit
		}
		for _, b := range alphabet {
			var next []state
			for _, s := range set {
				t := toks[s.g]
				if int(s.pos) >= len(t) {
					continue
				}
				switch {
				case t[s.pos].star:
					next = append(next, s)
				case t[s.pos].b == b:
					next = append(next, state{s.g, s.pos + 1})
				}
			}
			if len(next) == 0 {
				continue
			}
			next = closure(next)
			k := keyOf(next)
			if seen[k] {
				continue
			}
			if len(seen) >= maxComplexityStates {
				return limit
			}
			seen[k] = true
			queue = append(queue, next)
		}
	}
	return worst
}
