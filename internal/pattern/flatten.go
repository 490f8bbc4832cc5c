package pattern

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"unicode/utf8"

	"bridgeport/internal/jsonscan"
)

// MaxEventDepth is how deeply an event may nest objects and arrays. PutEvents
// only processes JSON nested up to 1000 levels.
const MaxEventDepth = 1000

// MaxArrayWeight bounds an event's values counted once for each array they
// sit in (bridgeport's limit). The matcher keeps, for each value a pattern
// uses, the arrays it sits in: without a bound, a megabyte of values a
// thousand arrays deep would take gigabytes. Ordinary events weigh a few
// times their number of values.
const MaxArrayWeight = 1 << 20

// EventError reports an event that is not a well-formed JSON object.
type EventError struct {
	Offset int    // byte offset of the problem
	Msg    string // what is wrong
	// Limit is set when the event is well-formed JSON but passes a limit:
	// MaxEventDepth or MaxArrayWeight.
	Limit bool
}

func (e *EventError) Error() string {
	return fmt.Sprintf("event is not valid JSON at offset %d: %s", e.Offset, e.Msg)
}

// valueKind is the JSON type of an event leaf.
type valueKind uint8

const (
	kindString valueKind = iota
	kindNumber
	kindTrue
	kindFalse
	kindNull
)

// arrayPos places a leaf in one array of the event: the array's identity
// (numbered in document order) and the element index.
type arrayPos struct {
	array int32
	index int32
}

// leaf is one scalar of the event at a path some pattern uses.
type leaf struct {
	path       int32
	kind       valueKind
	inBuf      bool  // value bytes are in flatEvent.buf (unescaped), not src
	numState   uint8 // 0 not parsed yet, 1 parsed into num, 2 not a finite number
	foldState  uint8 // 0 not folded yet, 1 folded into buf[fold0:fold1]
	ipState    uint8 // 0 not parsed yet, 1 an IPv4 address in ip4, 2 not an address, 3 an IPv6 address
	start, end int32 // value bytes: string contents without quotes, or number text
	trail0     int32 // trails[trail0:trail1] are the arrays the leaf sits in
	trail1     int32
	next       int32 // next leaf with the same path, or -1
	fold0      int32
	fold1      int32
	ip4        [4]byte
	num        float64
}

// flatEvent holds an event flattened to the leaves that patterns use. It is
// scratch space reused between matches; not safe for concurrent use.
type flatEvent struct {
	src    []byte
	pos    int
	depth  int
	buf    []byte // unescaped strings and folded values
	keyBuf []byte
	leaves []leaf
	trails []arrayPos
	stack  []arrayPos // arrays enclosing the current position
	arrays int32
	// inArrays is the number of arrays enclosing the current position,
	// skipped ones too; weight is the sum of it over the values so far.
	inArrays int
	weight   int

	head    []int32  // per path: first leaf, valid when headGen matches gen
	headGen []uint32 //
	gen     uint32

	// Paths whose values reach one element (or the top) through two ways
	// (see dealias).
	shared    []int32
	sharedGen []uint32
	winners   map[int64]int32 // dealias's scratch
}

// reset prepares f for an event over a machine with npaths paths.
func (f *flatEvent) reset(src []byte, npaths int) {
	f.src = src
	f.pos = 0
	f.depth = 0
	if cap(f.buf) < len(src) {
		// Unescaped text is never longer than its source, so appends of
		// unescaped strings never reallocate; folding may append more.
		// A quarter more, so that a pooled scratch is not grown again by
		// each event a little larger than the last.
		f.buf = make([]byte, 0, len(src)+len(src)/4+64)
	}
	f.buf = f.buf[:0]
	f.leaves = f.leaves[:0]
	f.trails = f.trails[:0]
	f.stack = f.stack[:0]
	f.arrays = 0
	f.inArrays, f.weight = 0, 0
	f.shared = f.shared[:0]
	if len(f.head) < npaths {
		f.head = make([]int32, npaths)
		f.headGen = make([]uint32, npaths)
		f.sharedGen = make([]uint32, npaths)
		f.gen = 0
	}
	f.gen++
	if f.gen == 0 { // wrapped: clear stale stamps
		clear(f.headGen)
		clear(f.sharedGen)
		f.gen = 1
	}
}

// first returns the index of the first leaf at path, or -1.
func (f *flatEvent) first(path int32) int32 {
	if f.headGen[path] != f.gen {
		return -1
	}
	return f.head[path]
}

// value returns the bytes of a leaf's value.
func (f *flatEvent) value(l *leaf) []byte {
	if l.inBuf {
		return f.buf[l.start:l.end]
	}
	return f.src[l.start:l.end]
}

// trail returns the arrays a leaf sits in.
func (f *flatEvent) trail(l *leaf) []arrayPos {
	return f.trails[l.trail0:l.trail1]
}

// numberOf returns the leaf's numeric value, if it is a finite JSON number.
func (f *flatEvent) numberOf(l *leaf) (float64, bool) {
	if l.kind != kindNumber {
		return 0, false
	}
	if l.numState == 0 {
		v, err := strconv.ParseFloat(string(f.value(l)), 64)
		if err != nil {
			l.numState = 2
		} else {
			l.num = v
			l.numState = 1
		}
	}
	return l.num, l.numState == 1
}

// ipOf returns the leaf's value as an IP address, if it is one (see
// eventIP). An IPv4 address is parsed once per leaf.
func (f *flatEvent) ipOf(l *leaf) (netip.Addr, bool) {
	switch l.ipState {
	case 1:
		return netip.AddrFrom4(l.ip4), true
	case 2:
		return netip.Addr{}, false
	case 3:
		return eventIP(f.value(l))
	}
	if l.kind != kindString {
		l.ipState = 2
		return netip.Addr{}, false
	}
	a, ok := eventIP(f.value(l))
	switch {
	case !ok:
		l.ipState = 2
	case a.Is4():
		l.ipState, l.ip4 = 1, a.As4()
	default:
		l.ipState = 3
	}
	return a, ok
}

// folded returns the case-folded value of a string leaf.
func (f *flatEvent) folded(l *leaf) []byte {
	if l.foldState == 0 {
		start := len(f.buf)
		f.buf = appendFold(f.buf, f.value(l))
		l.fold0, l.fold1 = int32(start), int32(len(f.buf))
		l.foldState = 1
	}
	return f.buf[l.fold0:l.fold1]
}

func (f *flatEvent) fail(msg string) error {
	return &EventError{Offset: f.pos, Msg: msg}
}

func (f *flatEvent) failLimit(msg string) error {
	return &EventError{Offset: f.pos, Msg: msg, Limit: true}
}

// flatten scans the event, which must be a JSON object, and records every
// scalar whose path is in the trie rooted at root. Everything else is
// validated and skipped.
func (f *flatEvent) flatten(root *pathNode) error {
	f.skipSpace()
	if f.pos >= len(f.src) || f.src[f.pos] != '{' {
		return f.fail("the event must be a JSON object")
	}
	if err := f.object(root); err != nil {
		return err
	}
	f.skipSpace()
	if f.pos < len(f.src) {
		return f.fail("unexpected data after the top-level object")
	}
	for _, path := range f.shared {
		f.dealias(path) // rare: a repeated key or a dotted one, with arrays
	}
	return nil
}

// skipSpace moves past whitespace. Events rarely have any, so the common
// case is one inlined comparison.
func (f *flatEvent) skipSpace() {
	if f.pos < len(f.src) && f.src[f.pos] > ' ' {
		return
	}
	f.skipSpaceSlow()
}

func (f *flatEvent) skipSpaceSlow() {
	for f.pos < len(f.src) {
		switch f.src[f.pos] {
		case ' ', '\t', '\n', '\r':
			f.pos++
		default:
			return
		}
	}
}

// value1 counts one value towards the event's weight.
func (f *flatEvent) value1() error {
	f.weight += f.inArrays
	if f.weight > MaxArrayWeight {
		return f.failLimit(fmt.Sprintf("more than %d values counted once for each array they sit in", MaxArrayWeight))
	}
	return nil
}

func (f *flatEvent) enter() error {
	f.depth++
	if f.depth > MaxEventDepth {
		return f.failLimit("nested deeper than 1000 levels")
	}
	return nil
}

// object scans an object at f.pos whose fields are looked up in node.
func (f *flatEvent) object(node *pathNode) error {
	if err := f.enter(); err != nil {
		return err
	}
	f.pos++ // '{'
	f.skipSpace()
	if f.pos < len(f.src) && f.src[f.pos] == '}' {
		f.pos++
		f.depth--
		return nil
	}
	for {
		f.skipSpace()
		if f.pos >= len(f.src) || f.src[f.pos] != '"' {
			return f.fail("expected a field name")
		}
		key, err := f.key()
		if err != nil {
			return err
		}
		f.skipSpace()
		if f.pos >= len(f.src) || f.src[f.pos] != ':' {
			return f.fail("expected ':' after a field name")
		}
		f.pos++
		f.skipSpace()
		child := node.child(key)
		if child == nil {
			if err := f.skip(); err != nil {
				return err
			}
		} else if err := f.scanValue(child); err != nil {
			return err
		}
		f.skipSpace()
		if f.pos >= len(f.src) {
			return f.fail("unexpected end of input in an object")
		}
		switch f.src[f.pos] {
		case ',':
			f.pos++
		case '}':
			f.pos++
			f.depth--
			return nil
		default:
			return f.fail("expected ',' or '}' in an object")
		}
	}
}

// key scans a field name and returns it unescaped. The result is valid until
// the next call.
func (f *flatEvent) key() ([]byte, error) {
	start, end, escaped, err := f.str()
	if err != nil {
		return nil, err
	}
	if !escaped {
		return f.src[start:end], nil
	}
	f.keyBuf = appendUnescaped(f.keyBuf[:0], f.src[start:end])
	return f.keyBuf, nil
}

// scanValue scans any value at a path of the trie.
func (f *flatEvent) scanValue(node *pathNode) error {
	if f.pos >= len(f.src) {
		return f.fail("unexpected end of input, expected a value")
	}
	switch c := f.src[f.pos]; c {
	case '{':
		if len(node.keys) == 0 {
			return f.skipObject() // an object where only a leaf is used
		}
		return f.object(node)
	case '[':
		return f.array(node)
	case '"':
		start, end, escaped, err := f.str()
		if err != nil {
			return err
		}
		if err := f.value1(); err != nil {
			return err
		}
		if node.leaf < 0 {
			return nil
		}
		if escaped {
			b := len(f.buf)
			f.buf = appendUnescaped(f.buf, f.src[start:end])
			f.add(node.leaf, kindString, b, len(f.buf), true)
		} else {
			f.add(node.leaf, kindString, start, end, false)
		}
		return nil
	case 't', 'f', 'n':
		kind, err := f.literal()
		if err != nil {
			return err
		}
		if err := f.value1(); err != nil {
			return err
		}
		if node.leaf >= 0 {
			f.add(node.leaf, kind, 0, 0, false)
		}
		return nil
	default:
		start := f.pos
		if err := f.number(); err != nil {
			return err
		}
		if err := f.value1(); err != nil {
			return err
		}
		if node.leaf >= 0 {
			f.add(node.leaf, kindNumber, start, f.pos, false)
		}
		return nil
	}
}

// array scans an array whose elements sit at node's path.
func (f *flatEvent) array(node *pathNode) error {
	if err := f.enter(); err != nil {
		return err
	}
	f.inArrays++
	defer func() { f.inArrays-- }()
	id := f.arrays
	f.arrays++
	f.pos++ // '['
	f.skipSpace()
	if f.pos < len(f.src) && f.src[f.pos] == ']' {
		f.pos++
		f.depth--
		return nil
	}
	for i := int32(0); ; i++ {
		f.skipSpace()
		f.stack = append(f.stack, arrayPos{array: id, index: i})
		if err := f.scanValue(node); err != nil {
			return err
		}
		f.stack = f.stack[:len(f.stack)-1]
		f.skipSpace()
		if f.pos >= len(f.src) {
			return f.fail("unexpected end of input in an array")
		}
		switch f.src[f.pos] {
		case ',':
			f.pos++
		case ']':
			f.pos++
			f.depth--
			return nil
		default:
			return f.fail("expected ',' or ']' in an array")
		}
	}
}

// add records a leaf at path.
func (f *flatEvent) add(path int32, kind valueKind, start, end int, inBuf bool) {
	t0 := int32(len(f.trails))
	f.trails = append(f.trails, f.stack...)
	next := int32(-1)
	if f.headGen[path] == f.gen {
		next = f.head[path]
		if f.sharedGen[path] != f.gen && twoWays(f.trail(&f.leaves[next]), f.stack) {
			f.sharedGen[path] = f.gen
			f.shared = append(f.shared, path)
		}
	}
	f.headGen[path] = f.gen
	f.head[path] = int32(len(f.leaves))
	f.leaves = append(f.leaves, leaf{
		path:   path,
		kind:   kind,
		inBuf:  inBuf,
		start:  int32(start),
		end:    int32(end),
		trail0: t0,
		trail1: int32(len(f.trails)),
		next:   next,
	})
}

// skip validates and skips any value.
func (f *flatEvent) skip() error {
	if f.pos >= len(f.src) {
		return f.fail("unexpected end of input, expected a value")
	}
	switch f.src[f.pos] {
	case '{':
		return f.skipObject()
	case '[':
		return f.skipArray()
	case '"':
		if _, _, _, err := f.str(); err != nil {
			return err
		}
	case 't', 'f', 'n':
		if _, err := f.literal(); err != nil {
			return err
		}
	default:
		if err := f.number(); err != nil {
			return err
		}
	}
	return f.value1()
}

func (f *flatEvent) skipObject() error {
	if err := f.enter(); err != nil {
		return err
	}
	f.pos++ // '{'
	f.skipSpace()
	if f.pos < len(f.src) && f.src[f.pos] == '}' {
		f.pos++
		f.depth--
		return nil
	}
	for {
		f.skipSpace()
		if f.pos >= len(f.src) || f.src[f.pos] != '"' {
			return f.fail("expected a field name")
		}
		if _, _, _, err := f.str(); err != nil {
			return err
		}
		f.skipSpace()
		if f.pos >= len(f.src) || f.src[f.pos] != ':' {
			return f.fail("expected ':' after a field name")
		}
		f.pos++
		f.skipSpace()
		if err := f.skip(); err != nil {
			return err
		}
		f.skipSpace()
		if f.pos >= len(f.src) {
			return f.fail("unexpected end of input in an object")
		}
		switch f.src[f.pos] {
		case ',':
			f.pos++
		case '}':
			f.pos++
			f.depth--
			return nil
		default:
			return f.fail("expected ',' or '}' in an object")
		}
	}
}

func (f *flatEvent) skipArray() error {
	if err := f.enter(); err != nil {
		return err
	}
	f.inArrays++
	defer func() { f.inArrays-- }()
	f.pos++ // '['
	f.skipSpace()
	if f.pos < len(f.src) && f.src[f.pos] == ']' {
		f.pos++
		f.depth--
		return nil
	}
	for {
		f.skipSpace()
		if err := f.skip(); err != nil {
			return err
		}
		f.skipSpace()
		if f.pos >= len(f.src) {
			return f.fail("unexpected end of input in an array")
		}
		switch f.src[f.pos] {
		case ',':
			f.pos++
		case ']':
			f.pos++
			f.depth--
			return nil
		default:
			return f.fail("expected ',' or ']' in an array")
		}
	}
}

func (f *flatEvent) literal() (valueKind, error) {
	rest := f.src[f.pos:]
	switch {
	case bytes.HasPrefix(rest, litTrue):
		f.pos += 4
		return kindTrue, nil
	case bytes.HasPrefix(rest, litFalse):
		f.pos += 5
		return kindFalse, nil
	case bytes.HasPrefix(rest, litNull):
		f.pos += 4
		return kindNull, nil
	}
	return 0, f.fail("invalid literal")
}

var (
	litTrue  = []byte("true")
	litFalse = []byte("false")
	litNull  = []byte("null")
)

// number validates a JSON number at f.pos and moves past it.
func (f *flatEvent) number() error {
	s, i := f.src, f.pos
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		f.pos = i
		return f.fail("invalid value")
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			f.pos = i
			return f.fail("invalid number: no digit after '.'")
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
			f.pos = i
			return f.fail("invalid number: no digit in the exponent")
		}
	}
	f.pos = i
	return nil
}

// str scans a string at f.pos (on its opening quote). It returns the range of
// its raw contents and whether they contain escapes.
func (f *flatEvent) str() (start, end int, escaped bool, err error) {
	s := f.src
	i := f.pos + 1
	start = i
	for {
		i = jsonscan.Plain(s, i)
		if i >= len(s) {
			f.pos = i
			return 0, 0, false, f.fail("unterminated string")
		}
		switch c := s[i]; {
		case c == '"':
			f.pos = i + 1
			return start, i, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(s) {
				f.pos = i
				return 0, 0, false, f.fail("unterminated string")
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s) || !isHex4(s[i+2:i+6]) {
					f.pos = i
					return 0, 0, false, f.fail("invalid \\u escape")
				}
				i += 6
			default:
				f.pos = i
				return 0, 0, false, f.fail("invalid escape")
			}
		default:
			f.pos = i
			return 0, 0, false, f.fail("control character in a string")
		}
	}
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func hexVal(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c <= '9':
			r |= rune(c - '0')
		case c >= 'a':
			r |= rune(c-'a') + 10
		default:
			r |= rune(c-'A') + 10
		}
	}
	return r
}

// appendUnescaped appends the decoded form of validated raw string contents.
// Lone surrogates decode to U+FFFD, as in encoding/json.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := bytes.IndexByte(raw[i:], '\\')
			if j < 0 {
				return append(dst, raw[i:]...)
			}
			dst = append(dst, raw[i:i+j]...)
			i += j
			continue
		}
		switch e := raw[i+1]; e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hexVal(raw[i+2 : i+6])
			i += 6
			if r >= 0xD800 && r < 0xDC00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
				if r2 := hexVal(raw[i+2 : i+6]); r2 >= 0xDC00 && r2 < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					i += 6
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
		i += 2
	}
	return dst
}

// CheckEvent reports whether event is a JSON object that matching accepts:
// well-formed, at most MaxEventDepth levels deep. The error is an
// *EventError.
func CheckEvent(event []byte) error {
	f := checkScratch.Get().(*flatEvent)
	f.reset(event, 0)
	err := f.flatten(emptyNode)
	f.src = nil
	if cap(f.buf) <= maxPooledCheck {
		checkScratch.Put(f)
	}
	return err
}

// checkScratch pools CheckEvent's scratch: PutEvents checks each entry,
// and a fresh one is an event's size in garbage. A scratch grown past
// maxPooledCheck by a large event is left to the collector.
var checkScratch = sync.Pool{New: func() any { return new(flatEvent) }}

const maxPooledCheck = 64 << 10
