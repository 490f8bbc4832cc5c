package pattern

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jkind is the kind of a parsed pattern JSON value.
type jkind uint8

const (
	jNull jkind = iota
	jTrue
	jFalse
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	switch k {
	case jNull:
		return "null"
	case jTrue, jFalse:
		return "boolean"
	case jNumber:
		return "number"
	case jString:
		return "string"
	case jArray:
		return "array"
	default:
		return "object"
	}
}

// jvalue is a JSON value of a pattern. Numbers keep their source text, because
// exact matching compares numbers by text. Object members keep their source
// order, duplicates included; the pattern parser applies "last one wins".
type jvalue struct {
	kind jkind
	text string // string contents (unescaped) or number text
	arr  []*jvalue
	obj  []jmember
	pos  int // offset just past the value's first token
	end  int // offset just past the value's last token
}

type jmember struct {
	key    string
	keyEnd int // offset just past the key
	val    *jvalue
}

// maxPatternDepth bounds nesting in a pattern; it only exists so that a
// hostile pattern cannot exhaust the stack. Pattern length limits make it
// unreachable in practice.
const maxPatternDepth = 1000

// jparser parses pattern text. Its error messages follow the Jackson parser
// that EventBridge uses, so that users see the reasons AWS would give.
type jparser struct {
	src   string
	pos   int
	depth int
}

// parseJSON parses src as one JSON value followed only by whitespace.
func parseJSON(src string) (*jvalue, error) {
	p := &jparser{src: src}
	p.skipSpace()
	if p.pos >= len(p.src) {
		return nil, p.errorf("No content to map due to end-of-input")
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return nil, p.errorf("Unexpected character (%s): expected end-of-input", p.charDesc())
	}
	return v, nil
}

func (p *jparser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// errorf reports a syntax error at the current position.
func (p *jparser) errorf(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...) + location(p.src, p.pos)}
}

// location renders a position in src as Jackson, the parser behind
// EventBridge's messages, appends it to a reason: the source (up to 500
// characters), the line and the column.
func location(src string, offset int) string {
	line, col := 1, 1
	for _, r := range src[:min(offset, len(src))] {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	const maxShown = 500
	shown := src + "\""
	if n := utf8.RuneCountInString(src); n > maxShown {
		cut := 0
		for range maxShown {
			_, size := utf8.DecodeRuneInString(src[cut:])
			cut += size
		}
		shown = fmt.Sprintf("%s\"[truncated %d chars]", src[:cut], n-maxShown)
	}
	return fmt.Sprintf("\n at [Source: (String)\"%s; line: %d, column: %d]", shown, line, col)
}

// charDesc describes the character at the current position as Jackson does:
// 'x' (code 120).
func (p *jparser) charDesc() string {
	r, _ := utf8.DecodeRuneInString(p.src[p.pos:])
	if r < 0x20 {
		return fmt.Sprintf("CTRL-CHAR, code %d", r)
	}
	return fmt.Sprintf("'%c' (code %d)", r, r)
}

func (p *jparser) value() (*jvalue, error) {
	if p.pos >= len(p.src) {
		return nil, p.errorf("Unexpected end-of-input: expected a value")
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return &jvalue{kind: jString, text: s, pos: p.pos, end: p.pos}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == ']' || c == '}' || c == ',' || c == ':':
		return nil, p.errorf("Unexpected character (%s): expected a value", p.charDesc())
	default:
		return p.literal()
	}
}

// literal parses true, false and null, and reports any other bare word as
// Jackson's "Unrecognized token".
func (p *jparser) literal() (*jvalue, error) {
	start := p.pos
	end := start
	for end < len(p.src) {
		r, size := utf8.DecodeRuneInString(p.src[end:])
		if !isTokenRune(r) {
			break
		}
		end += size
	}
	if end == start {
		return nil, p.errorf("Unexpected character (%s): expected a valid value (JSON String, Number, Array, Object or token 'null', 'true' or 'false')", p.charDesc())
	}
	word := p.src[start:end]
	var v *jvalue
	switch word {
	case "true":
		v = &jvalue{kind: jTrue}
	case "false":
		v = &jvalue{kind: jFalse}
	case "null":
		v = &jvalue{kind: jNull}
	default:
		p.pos = end
		return nil, p.errorf("Unrecognized token '%s': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')", word)
	}
	p.pos = end
	v.pos, v.end = end, end
	return v, nil
}

func isTokenRune(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '{', '}', '[', ']', ',', ':', '"':
		return false
	}
	return r != utf8.RuneError
}

func (p *jparser) number() (*jvalue, error) {
	start := p.pos
	s := p.src
	i := p.pos
	if s[i] == '-' {
		i++
	}
	if i >= len(s) || s[i] < '0' || s[i] > '9' {
		p.pos = i
		if i >= len(s) {
			return nil, p.errorf("Unexpected end-of-input in numeric value")
		}
		return nil, p.errorf("Unexpected character (%s) in numeric value: expected digit (0-9) to follow minus sign, for valid numeric value", p.charDesc())
	}
	if s[i] == '0' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
		p.pos = i
		return nil, p.errorf("Invalid numeric value: Leading zeroes not allowed")
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			p.pos = i
			if i >= len(s) {
				return nil, p.errorf("Unexpected end-of-input in numeric value")
			}
			return nil, p.errorf("Unexpected character (%s) in numeric value: Decimal point not followed by a digit", p.charDesc())
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			p.pos = i
			if i >= len(s) {
				return nil, p.errorf("Unexpected end-of-input in numeric value")
			}
			return nil, p.errorf("Unexpected character (%s) in numeric value: Exponent indicator not followed by a digit", p.charDesc())
		}
	}
	if i < len(s) {
		if r, _ := utf8.DecodeRuneInString(s[i:]); isTokenRune(r) {
			p.pos = i
			return nil, p.errorf("Unexpected character (%s) in numeric value: expected digit, '.', 'e' or 'E'", p.charDesc())
		}
	}
	p.pos = i
	return &jvalue{kind: jNumber, text: s[start:i], pos: i, end: i}, nil
}

// str parses a string starting at the opening quote and returns its contents.
func (p *jparser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	var b strings.Builder
	escaped := false
	for {
		if p.pos >= len(p.src) {
			return "", p.errorf("Unexpected end-of-input: was expecting closing quote for a string value")
		}
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			if !escaped {
				return p.src[start : p.pos-1], nil
			}
			return b.String(), nil
		case c < 0x20:
			return "", p.errorf("Illegal unquoted character ((CTRL-CHAR, code %d)): has to be escaped using backslash to be included in string value", c)
		case c == '\\':
			if !escaped {
				escaped = true
				b.WriteString(p.src[start:p.pos])
			}
			p.pos++
			if p.pos >= len(p.src) {
				return "", p.errorf("Unexpected end-of-input in character escape sequence")
			}
			e := p.src[p.pos]
			p.pos++
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, err := p.hex4()
				if err != nil {
					return "", err
				}
				if r >= 0xD800 && r < 0xDC00 && p.pos+6 <= len(p.src) && p.src[p.pos] == '\\' && p.src[p.pos+1] == 'u' {
					save := p.pos
					p.pos += 2
					r2, err := p.hex4()
					if err == nil && r2 >= 0xDC00 && r2 < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					} else {
						p.pos = save
					}
				}
				if r >= 0xD800 && r < 0xE000 {
					r = utf8.RuneError
				}
				b.WriteRune(r)
			default:
				p.pos--
				return "", p.errorf("Unrecognized character escape %s", p.charDesc())
			}
		default:
			if escaped {
				b.WriteByte(c)
			}
			p.pos++
		}
	}
}

func (p *jparser) hex4() (rune, error) {
	if p.pos+4 > len(p.src) {
		p.pos = len(p.src)
		return 0, p.errorf("Unexpected end-of-input in character escape sequence")
	}
	v, err := strconv.ParseUint(p.src[p.pos:p.pos+4], 16, 32)
	if err != nil {
		return 0, p.errorf("Unexpected character (%s): expected a hex-digit for character escape sequence", p.charDesc())
	}
	p.pos += 4
	return rune(v), nil
}

func (p *jparser) enter() error {
	p.depth++
	if p.depth > maxPatternDepth {
		return p.errorf("Document nesting depth (%d) exceeds the maximum allowed (%d)", p.depth, maxPatternDepth)
	}
	return nil
}

func (p *jparser) object() (*jvalue, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.pos++ // '{'
	v := &jvalue{kind: jObject, pos: p.pos}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		v.end = p.pos
		return v, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, p.errorf("Unexpected end-of-input: expected close marker for Object")
		}
		if p.src[p.pos] != '"' {
			return nil, p.errorf("Unexpected character (%s): was expecting double-quote to start field name", p.charDesc())
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		keyEnd := p.pos
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, p.errorf("Unexpected end-of-input: expected close marker for Object")
		}
		if p.src[p.pos] != ':' {
			return nil, p.errorf("Unexpected character (%s): was expecting a colon to separate field name and value", p.charDesc())
		}
		p.pos++
		p.skipSpace()
		val, err := p.value()
		if err != nil {
			return nil, err
		}
		v.obj = append(v.obj, jmember{key: key, keyEnd: keyEnd, val: val})
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, p.errorf("Unexpected end-of-input: expected close marker for Object")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			v.end = p.pos
			return v, nil
		default:
			return nil, p.errorf("Unexpected character (%s): was expecting comma to separate Object entries", p.charDesc())
		}
	}
}

func (p *jparser) array() (*jvalue, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.pos++ // '['
	v := &jvalue{kind: jArray, pos: p.pos}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		v.end = p.pos
		return v, nil
	}
	for {
		p.skipSpace()
		elem, err := p.value()
		if err != nil {
			return nil, err
		}
		v.arr = append(v.arr, elem)
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, p.errorf("Unexpected end-of-input: expected close marker for Array")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			v.end = p.pos
			return v, nil
		default:
			return nil, p.errorf("Unexpected character (%s): was expecting comma to separate Array entries", p.charDesc())
		}
	}
}
