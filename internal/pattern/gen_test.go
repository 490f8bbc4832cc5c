package pattern

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// chooser supplies the choices that drive the generators: a seeded random
// source in ordinary tests, the fuzzer's bytes in fuzz tests.
type chooser interface {
	intn(n int) int
}

type randChooser struct{ r *rand.Rand }

func (c randChooser) intn(n int) int { return c.r.IntN(n) }

// byteChooser takes choices from fuzz input; once it runs out, every choice
// is 0, which always leads to a small value.
type byteChooser struct {
	b []byte
	i int
}

func (c *byteChooser) intn(n int) int {
	if c.i >= len(c.b) || n <= 1 {
		return 0
	}
	v := int(c.b[c.i])
	c.i++
	return v % n
}

// A small vocabulary, so that generated patterns and events meet often.
var (
	genKeys    = []string{"a", "b", "c", "a.b", "d"}
	genStrings = []string{"", "x", "X", "xy", "yx", "xay", "a*b", "ab", "σ", "Σ", "ς", "ß", "é", "10.0.0.1", "10.0.0.7", "10.0.1.0", "2001:db8::1", "2001:0db8::1", "null", "1"}
	genNumbers = []string{"0", "1", "1.0", "-1", "2.5", "1e2", "100", "7", "-0.5"}
	genAffixes = []string{"", "x", "X", "y", "xa", "a", "σ", "1", "10.0."}
	genGlobs   = []string{"*", "x*", "*y", "x*y", "*a*", "a\\*b", "*x*y*", "Σ*", "10.*"}
	genCIDRs   = []string{"10.0.0.0/24", "10.0.0.0/8", "10.0.0.5/30", "2001:db8::/32", "0.0.0.0/0"}
)

func pick(c chooser, list []string) string { return list[c.intn(len(list))] }

func quote(s string) string { return strconv.Quote(s) }

// genEvent writes a random event object.
func genEvent(c chooser) string {
	var b strings.Builder
	genObject(c, &b, 0)
	return b.String()
}

func genObject(c chooser, b *strings.Builder, depth int) {
	b.WriteByte('{')
	n := c.intn(4)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(quote(pick(c, genKeys)))
		b.WriteByte(':')
		genValue(c, b, depth+1)
	}
	b.WriteByte('}')
}

func genValue(c chooser, b *strings.Builder, depth int) {
	max := 7
	if depth >= 3 {
		max = 5 // scalars only
	}
	switch c.intn(max) {
	case 0:
		b.WriteString(quote(pick(c, genStrings)))
	case 1:
		b.WriteString(pick(c, genNumbers))
	case 2:
		b.WriteString([]string{"null", "true", "false"}[c.intn(3)])
	case 3:
		b.WriteString(quote(pick(c, genStrings)))
	case 4:
		b.WriteString(pick(c, genNumbers))
	case 5:
		b.WriteByte('[')
		n := c.intn(4)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			genValue(c, b, depth+1)
		}
		b.WriteByte(']')
	default:
		genObject(c, b, depth)
	}
}

// genPattern writes a random, usually valid, pattern.
func genPattern(c chooser) string {
	var b strings.Builder
	genPatternObject(c, &b, 0)
	return b.String()
}

func genPatternObject(c chooser, b *strings.Builder, depth int) {
	b.WriteByte('{')
	n := 1 + c.intn(3)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if depth < 2 && c.intn(6) == 0 {
			b.WriteString(`"$or":[`)
			alts := 2 + c.intn(2)
			for j := range alts {
				if j > 0 {
					b.WriteByte(',')
				}
				genPatternObject(c, b, depth+1)
			}
			b.WriteByte(']')
			continue
		}
		b.WriteString(quote(pick(c, genKeys)))
		b.WriteByte(':')
		if depth < 2 && c.intn(4) == 0 {
			genPatternObject(c, b, depth+1)
			continue
		}
		b.WriteByte('[')
		m := 1 + c.intn(3)
		for j := range m {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(genMatcher(c))
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
}

func genMatcher(c chooser) string {
	switch c.intn(17) {
	case 0:
		return quote(pick(c, genStrings))
	case 1:
		return pick(c, genNumbers)
	case 2:
		return []string{"null", "true", "false"}[c.intn(3)]
	case 3:
		return fmt.Sprintf(`{"prefix":%s}`, quote(pick(c, genAffixes)))
	case 4:
		return fmt.Sprintf(`{"suffix":%s}`, quote(pick(c, genAffixes)))
	case 5:
		return fmt.Sprintf(`{"equals-ignore-case":%s}`, quote(pick(c, genStrings)))
	case 6:
		op := []string{"prefix", "suffix"}[c.intn(2)]
		return fmt.Sprintf(`{%q:{"equals-ignore-case":%s}}`, op, quote(pick(c, genAffixes)))
	case 7:
		return fmt.Sprintf(`{"wildcard":%s}`, quote(pick(c, genGlobs)))
	case 8:
		switch c.intn(3) {
		case 0:
			return fmt.Sprintf(`{"anything-but":%s}`, quote(pick(c, genStrings)))
		case 1:
			return fmt.Sprintf(`{"anything-but":[%s,%s]}`, pick(c, genNumbers), pick(c, genNumbers))
		default:
			return fmt.Sprintf(`{"anything-but":[%s,%s]}`, quote(pick(c, genStrings)), quote(pick(c, genStrings)))
		}
	case 9:
		form := []string{"prefix", "suffix", "equals-ignore-case", "wildcard"}[c.intn(4)]
		vals := genAffixes[1:]
		if form == "wildcard" {
			vals = genGlobs
		}
		if c.intn(2) == 0 {
			return fmt.Sprintf(`{"anything-but":{%q:%s}}`, form, quote(pick(c, vals)))
		}
		return fmt.Sprintf(`{"anything-but":{%q:[%s,%s]}}`, form, quote(pick(c, vals)), quote(pick(c, vals)))
	case 10, 11:
		lo, hi := c.intn(5)-2, c.intn(5)-2
		switch c.intn(4) {
		case 0:
			return fmt.Sprintf(`{"numeric":[%q,%d]}`, []string{"<", "<=", ">", ">="}[c.intn(4)], lo)
		case 1:
			return fmt.Sprintf(`{"numeric":["=",%s]}`, pick(c, genNumbers))
		default:
			if hi <= lo {
				hi = lo + 1 + c.intn(2)
			}
			return fmt.Sprintf(`{"numeric":[%q,%d,%q,%d]}`, []string{">", ">="}[c.intn(2)], lo, []string{"<", "<="}[c.intn(2)], hi)
		}
	case 12:
		return fmt.Sprintf(`{"cidr":%s}`, quote(pick(c, genCIDRs)))
	case 13:
		return fmt.Sprintf(`{"exists":%v}`, c.intn(2) == 0)
	case 14:
		return `{"exists":false}`
	case 15:
		return fmt.Sprintf(`{"exactly":%s}`, quote(pick(c, genStrings)))
	default:
		return quote(pick(c, genStrings))
	}
}
