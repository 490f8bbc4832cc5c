package pattern

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Limits bound what Compile accepts. The zero value of a field means its
// default.
type Limits struct {
	// MaxLength is the longest pattern accepted, in characters. EventBridge's
	// API allows 4,096; its default service quota is 2,048 (DefaultMaxLength).
	MaxLength int
	// MaxCombinations bounds the number of alternatives that "$or" expands a
	// pattern into (AWS: 1,000).
	MaxCombinations int
	// MaxComplexity bounds how many wildcard states one value can keep alive
	// at once (see Pattern.Complexity).
	MaxComplexity int
	// MaxConditions bounds the conditions of all the alternatives "$or"
	// expands a pattern into, together (bridgeport's limit: each rule
	// change expands every pattern of its bus).
	MaxConditions int
	// MaxStates bounds the states of the matching automaton a pattern
	// needs (bridgeport's limit: it bounds the memory of a rule).
	MaxStates int
}

// Defaults for Limits.
const (
	DefaultMaxLength       = 2048
	APIMaxLength           = 4096
	DefaultMaxCombinations = 1000
	DefaultMaxComplexity   = 10
	DefaultMaxConditions   = 10000
	DefaultMaxStates       = 1000
)

func (l Limits) withDefaults() Limits {
	if l.MaxLength <= 0 {
		l.MaxLength = DefaultMaxLength
	}
	if l.MaxCombinations <= 0 {
		l.MaxCombinations = DefaultMaxCombinations
	}
	if l.MaxComplexity <= 0 {
		l.MaxComplexity = DefaultMaxComplexity
	}
	if l.MaxConditions <= 0 {
		l.MaxConditions = DefaultMaxConditions
	}
	if l.MaxStates <= 0 {
		l.MaxStates = DefaultMaxStates
	}
	return l
}

// Pattern is a parsed and validated event pattern. It is immutable and safe
// for concurrent use.
//
// It keeps the pattern as written, with its "$or"s unexpanded (items), and
// expands the alternatives when they are needed (eachAlt): a pattern whose
// "$or"s make a thousand alternatives costs the memory of its text, not of
// a thousand copies of its conditions.
type Pattern struct {
	src        string
	items      []item
	single     alternative // without "$or": the one alternative
	nalts      int         // the alternatives "$or" expands it into
	size       int         // the conditions of all the alternatives
	wildcards  bool
	complexity int

	once sync.Once // builds m on first Match
	m    *machine
}

// item is a member of a pattern object, in document order: a field's
// condition, or a "$or" with the members of each of its objects. Members of
// nested objects are items of the enclosing object, with their full path.
type item struct {
	cond *condition
	or   [][]item
}

// alternative is one way for a pattern to match: every condition holds.
type alternative []*condition

// condition tests the values at one path; any of its operators may match.
// Immutable; the alternatives of a pattern share their conditions.
type condition struct {
	path string
	ops  []operator // sorted by key, without duplicates
	key  string     // path and operators, canonical: equal for equal conditions
	seq  int32      // its place in the pattern, in document order
	// common is set when every alternative of the pattern has the
	// condition (always, without "$or").
	common bool
}

func newCondition(path string, ops []operator) *condition {
	ops = slices.Clone(ops)
	slices.SortFunc(ops, func(x, y operator) int { return strings.Compare(x.key(), y.key()) })
	ops = slices.CompactFunc(ops, func(x, y operator) bool { return x.key() == y.key() })
	var key strings.Builder
	key.WriteString(strconv.Quote(path))
	for i := range ops {
		key.WriteByte(0)
		key.WriteString(ops[i].key())
	}
	return &condition{path: path, ops: slices.Clip(ops), key: key.String()}
}

// absentOnly reports whether the condition is only {"exists": false}.
func (c *condition) absentOnly() bool {
	return len(c.ops) == 1 && c.ops[0].kind == opAbsent
}

func (c *condition) allowsAbsent() bool {
	for i := range c.ops {
		if c.ops[i].kind == opAbsent {
			return true
		}
	}
	return false
}

// eachAlt calls fn with each alternative of the pattern, until fn returns
// false. The alternative's conditions are in no particular order, and fn
// must not keep the slice.
func (p *Pattern) eachAlt(fn func(alternative) bool) {
	if p.single != nil {
		fn(p.single)
		return
	}
	e := expander{index: make(map[string]int), fn: fn}
	e.run(p.items)
}

// expander enumerates the alternatives of a pattern depth first, applying
// its items in document order along each choice of the "$or"s: a path set
// again replaces its earlier condition, as AWS documents for duplicate keys.
type expander struct {
	cur   alternative
	index map[string]int // path to its place in cur
	fn    func(alternative) bool
	// then holds the items still to apply after the current list, innermost
	// last: the rest of each enclosing list whose "$or" is being expanded.
	then [][]item
}

// run applies items, then the lists in then, calling fn at the end of each
// alternative. It reports false when fn asked to stop.
func (e *expander) run(items []item) bool {
	if len(items) == 0 {
		if len(e.then) == 0 {
			return e.fn(e.cur)
		}
		next := e.then[len(e.then)-1]
		e.then = e.then[:len(e.then)-1]
		ok := e.run(next)
		e.then = append(e.then, next)
		return ok
	}
	it, rest := items[0], items[1:]
	if it.cond == nil {
		e.then = append(e.then, rest)
		ok := true
		for _, elem := range it.or {
			if ok = e.run(elem); !ok {
				break
			}
		}
		e.then = e.then[:len(e.then)-1]
		return ok
	}
	path := it.cond.path
	if i, ok := e.index[path]; ok {
		old := e.cur[i]
		e.cur[i] = it.cond
		ok := e.run(rest)
		e.cur[i] = old
		return ok
	}
	e.index[path] = len(e.cur)
	e.cur = append(e.cur, it.cond)
	ok := e.run(rest)
	e.cur = e.cur[:len(e.cur)-1]
	delete(e.index, path)
	return ok
}

// Match reports whether an event, a JSON object, matches the pattern. A
// malformed event is an *EventError. To match many patterns, use a Matcher.
func (p *Pattern) Match(event []byte) (bool, error) {
	return p.MatchContext(context.Background(), event)
}

// MatchContext is Match, stopped with ctx's error when ctx ends.
func (p *Pattern) MatchContext(ctx context.Context, event []byte) (bool, error) {
	p.once.Do(func() { p.m = buildMachine([]string{""}, []*Pattern{p}) })
	var ms matchScratch
	if err := ms.run(ctx, p.m, event); err != nil {
		return false, err
	}
	return len(ms.hits) > 0, nil
}

// String returns the pattern's source text.
func (p *Pattern) String() string { return p.src }

// HasWildcard reports whether the pattern uses the wildcard operator, which
// EventBridge limits to 30 rules per event bus.
func (p *Pattern) HasWildcard() bool { return p.wildcards }

// Complexity is the largest number of wildcard matching states that one
// value can keep alive at once, over the pattern's fields; see
// DefaultMaxComplexity.
func (p *Pattern) Complexity() int { return p.complexity }

// Compile parses and validates an event pattern with the default limits.
func Compile(src string) (*Pattern, error) {
	return CompileWithLimits(src, Limits{})
}

// CompileWithLimits parses and validates an event pattern. An invalid
// pattern yields an *Error whose message is AWS's, or, for bridgeport's own
// limits (MaxConditions, MaxStates), in the same form.
func CompileWithLimits(src string, limits Limits) (*Pattern, error) {
	limits = limits.withDefaults()
	if n := utf8.RuneCountInString(src); n > limits.MaxLength {
		return nil, &Error{Reason: fmt.Sprintf("Event pattern is %d characters long; the maximum is %d", n, limits.MaxLength)}
	}
	root, err := parseJSON(src)
	if err != nil {
		return nil, err
	}
	c := &compiler{src: src, limits: limits}
	if root.kind != jObject {
		return nil, c.fail(root.pos, "Filter is not an object")
	}
	items, err := c.object(root, nil, false)
	if err != nil {
		return nil, err
	}
	p := &Pattern{src: src, items: items, nalts: c.n}
	if !slices.ContainsFunc(items, func(it item) bool { return it.cond == nil }) {
		p.eachAlt(func(alt alternative) bool {
			p.single = slices.Clone(alt)
			return false
		})
	}
	in := make(map[*condition]int)
	p.eachAlt(func(alt alternative) bool {
		p.size += len(alt)
		for _, cond := range alt {
			in[cond]++
			for _, op := range cond.ops {
				if op.kind == opWildcard {
					p.wildcards = true
				}
			}
		}
		return p.size <= limits.MaxConditions
	})
	if p.size > limits.MaxConditions {
		return nil, &Error{Reason: fmt.Sprintf("Event pattern is too complex: its $or combinations hold more than %d conditions in all", limits.MaxConditions)}
	}
	for cond, n := range in {
		cond.common = n == p.nalts
	}
	if n := p.states(); n > limits.MaxStates {
		return nil, &Error{Reason: fmt.Sprintf("Event pattern is too complex: matching it takes %d states; the maximum is %d", n, limits.MaxStates)}
	}
	p.complexity = patternComplexity(p, limits.MaxComplexity+1)
	if p.complexity > limits.MaxComplexity {
		return nil, &Error{Reason: "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character"}
	}
	return p, nil
}

// group places a condition in the order the machine tests them: 0 when it
// needs a value, 1 when it also accepts a missing field, 2 when it only
// accepts a missing field. The machine checks absences in this order, so a
// missing field is judged against every value picked before it.
func (c *condition) group() int {
	switch {
	case c.absentOnly():
		return 2
	case c.allowsAbsent():
		return 1
	default:
		return 0
	}
}

// compiler turns a parsed pattern into alternatives, reporting problems with
// the reasons EventBridge gives.
type compiler struct {
	src    string
	limits Limits
	n      int   // alternatives so far: "$or" multiplies them
	seq    int32 // conditions so far
}

func (c *compiler) fail(offset int, format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...) + location(c.src, offset)}
}

// reservedInOr are the names that may not be fields inside "$or": the
// operators, and names EventBridge keeps for future operators.
var reservedInOr = map[string]bool{
	"exactly": true, "equals-ignore-case": true, "prefix": true, "suffix": true, "anything-but": true,
	"exists": true, "wildcard": true, "numeric": true, "cidr": true,
	"=": true, "<": true, "<=": true, ">": true, ">=": true,
	"regex": true, "not-wildcard": true, "not-equals-ignore-case": true,
	"date-after": true, "date-on-or-after": true, "date-before": true, "date-on-or-before": true, "in-date-range": true,
	"ip-address-in-range": true, "ip-address-not-in-range": true,
}

// object compiles the members of a pattern object below the path prefix
// (nil at the top: the empty string is a field name like any other).
func (c *compiler) object(v *jvalue, prefix *string, inOr bool) ([]item, error) {
	if len(v.obj) == 0 {
		return nil, c.fail(v.end, "Empty objects are not allowed")
	}
	var items []item
	for _, m := range v.obj {
		if m.key == "$or" {
			or, err := c.or(m.val, prefix)
			if err != nil {
				return nil, err
			}
			items = append(items, item{or: or})
			continue
		}
		if inOr && reservedInOr[m.key] {
			return nil, c.fail(m.keyEnd, "%s is Ruler reserved fieldName which cannot be used inside $or.", m.key)
		}
		path := m.key
		if prefix != nil {
			path = *prefix + "." + m.key
		}
		switch m.val.kind {
		case jObject:
			sub, err := c.object(m.val, &path, inOr)
			if err != nil {
				return nil, err
			}
			items = append(items, sub...)
		case jArray:
			ops, err := c.values(m.val)
			if err != nil {
				return nil, err
			}
			c.n = max(c.n, 1)
			cond := newCondition(path, ops)
			cond.seq = c.seq
			c.seq++
			items = append(items, item{cond: cond})
		default:
			return nil, c.fail(m.val.pos, "\"%s\" must be an object or an array", m.key)
		}
	}
	return items, nil
}

// or compiles a "$or" array: every alternative so far is combined with each
// object of the array.
func (c *compiler) or(v *jvalue, prefix *string) ([][]item, error) {
	if v.kind != jArray {
		return nil, c.fail(v.pos, "It must be an Array followed with $or.")
	}
	current, next := c.n, 0
	var elems [][]item
	for _, elem := range v.arr {
		if elem.kind != jObject {
			return nil, c.fail(elem.pos, "Only JSON object is allowed in array of $or relationship.")
		}
		c.n = max(current, 1)
		items, err := c.object(elem, prefix, true)
		if err != nil {
			return nil, err
		}
		elems = append(elems, items)
		next += c.n
		if next > c.limits.MaxCombinations {
			return nil, c.fail(elem.end, "The $or relationship makes more than %d combinations", c.limits.MaxCombinations)
		}
	}
	if len(v.arr) < 2 {
		return nil, c.fail(v.end, "There must have at least 2 Objects in $or relationship.")
	}
	c.n = next
	return elems, nil
}

// values compiles the list of matchers of a field.
func (c *compiler) values(v *jvalue) ([]operator, error) {
	var ops []operator
	for _, elem := range v.arr {
		switch elem.kind {
		case jObject:
			op, err := c.expression(elem)
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
		case jString:
			if ip, ok := parseIPLiteral(elem.text); ok {
				// EventBridge matches a string that is an IP address as
				// that address, whatever its spelling in the event.
				ops = append(ops, operator{kind: opCIDR, text: elem.text, cidr: &ipRange{lo: ip, hi: ip}})
			} else {
				ops = append(ops, operator{kind: opString, text: elem.text})
			}
		case jNumber:
			// An exact number matches the same text or the same value:
			// AWS matches [300] to an event's 300.0 (and 3.0e2), as
			// event-ruler does, whatever its guide says about string
			// representation (LocalStack's AWS-validated fixture
			// number_comparison_float, 2025-10-15).
			ops = append(ops, operator{kind: opNumber, text: elem.text})
			if f, err := strconv.ParseFloat(elem.text, 64); err == nil {
				ops = append(ops, operator{kind: opNumeric, rng: &numRange{lo: f, hi: f, loIncl: true, hiIncl: true}})
			}
		case jTrue:
			ops = append(ops, operator{kind: opTrue})
		case jFalse:
			ops = append(ops, operator{kind: opFalse})
		case jNull:
			ops = append(ops, operator{kind: opNull})
		default:
			return nil, c.fail(elem.pos, "Match value must be String, number, true, false, or null")
		}
	}
	if len(ops) == 0 {
		return nil, c.fail(v.end, "Empty arrays are not allowed")
	}
	return ops, nil
}

// tokenText is what Jackson's getText returns for a value's first token.
func tokenText(v *jvalue) string {
	switch v.kind {
	case jObject:
		return "{"
	case jArray:
		return "["
	case jTrue:
		return "true"
	case jFalse:
		return "false"
	case jNull:
		return "null"
	default:
		return v.text
	}
}

// expression compiles a match expression such as {"prefix": "a"}.
func (c *compiler) expression(v *jvalue) (operator, error) {
	if len(v.obj) == 0 {
		return operator{}, c.fail(v.end, "Match expression name not found")
	}
	m := v.obj[0]
	arg := m.val
	// onlyOne reports a second key, where EventBridge expects the object to end.
	onlyOne := func(msg string) error {
		if len(v.obj) > 1 {
			return c.fail(v.obj[1].keyEnd, "%s", msg)
		}
		return nil
	}
	const oneKey = "Only one key allowed in match expression"
	const tooMany = "Too many elements in numeric expression"
	switch m.key {
	case "exactly":
		if arg.kind != jString {
			return operator{}, c.fail(arg.pos, "exact match pattern must be a string")
		}
		return operator{kind: opString, text: arg.text}, onlyOne(oneKey)
	case "prefix", "suffix":
		kind, icKind := opPrefix, opPrefixIgnoreCase
		if m.key == "suffix" {
			kind, icKind = opSuffix, opSuffixIgnoreCase
		}
		switch arg.kind {
		case jString:
			return operator{kind: kind, text: arg.text}, onlyOne(oneKey)
		case jObject:
			text, err := c.ignoreCaseArg(arg, m.key)
			if err != nil {
				return operator{}, err
			}
			return operator{kind: icKind, text: fold(text)}, onlyOne(oneKey)
		default:
			return operator{}, c.fail(arg.pos, "%s match pattern must be a string", m.key)
		}
	case "equals-ignore-case":
		if arg.kind != jString {
			return operator{}, c.fail(arg.pos, "equals-ignore-case match pattern must be a string")
		}
		return operator{kind: opEqualsIgnoreCase, text: fold(arg.text)}, onlyOne(oneKey)
	case "wildcard":
		if arg.kind != jString {
			return operator{}, c.fail(arg.pos, "wildcard match pattern must be a string")
		}
		if err := c.checkWildcard(arg); err != nil {
			return operator{}, err
		}
		g := compileGlob(arg.text)
		return operator{kind: opWildcard, text: arg.text, glob: &g}, onlyOne(oneKey)
	case "numeric":
		if arg.kind != jArray {
			return operator{}, c.fail(arg.pos, "Value of numeric must be an array.")
		}
		rng, err := c.numeric(arg)
		if err != nil {
			return operator{}, err
		}
		return operator{kind: opNumeric, rng: &rng}, onlyOne(tooMany)
	case "anything-but":
		but, err := c.anythingBut(arg)
		if err != nil {
			return operator{}, err
		}
		return operator{kind: opAnythingBut, but: but}, onlyOne(tooMany)
	case "exists":
		var op operator
		switch arg.kind {
		case jTrue:
			op = operator{kind: opExists}
		case jFalse:
			op = operator{kind: opAbsent}
		default:
			return operator{}, c.fail(arg.pos, "exists match pattern must be either true or false.")
		}
		return op, onlyOne(oneKey)
	case "cidr":
		if arg.kind != jString {
			// EventBridge's message for this case names the prefix operator.
			return operator{}, c.fail(arg.pos, "prefix match pattern must be a string")
		}
		r, err := parseCIDR(arg.text)
		if err != nil {
			return operator{}, c.fail(arg.pos, "%s", err.Error())
		}
		return operator{kind: opCIDR, text: arg.text, cidr: &r}, onlyOne(oneKey)
	default:
		return operator{}, c.fail(m.keyEnd, "Unrecognized match type %s", m.key)
	}
}

// ignoreCaseArg compiles {"equals-ignore-case": "..."} inside prefix or suffix.
func (c *compiler) ignoreCaseArg(v *jvalue, op string) (string, error) {
	name := strings.ToUpper(op[:1]) + op[1:]
	if len(v.obj) == 0 {
		return "", c.fail(v.end, "%s expression name not found", name)
	}
	m := v.obj[0]
	if m.key != "equals-ignore-case" {
		return "", c.fail(m.keyEnd, "Unsupported %s pattern: %s", op, m.key)
	}
	if m.val.kind != jString {
		return "", c.fail(m.val.pos, "equals-ignore-case match pattern must be a string")
	}
	if len(v.obj) > 1 {
		return "", c.fail(v.obj[1].keyEnd, "Only one key allowed in match expression")
	}
	return m.val.text, nil
}

// checkWildcard validates a wildcard pattern: no consecutive stars, and only
// \* and \\ as escapes. Positions count bytes of the quoted value, as
// EventBridge reports them.
func (c *compiler) checkWildcard(v *jvalue) error {
	if reason := wildcardProblem(v.text); reason != "" {
		return c.fail(v.pos, "%s", reason)
	}
	return nil
}

func wildcardProblem(s string) string {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*':
			if i+1 < len(s) && s[i+1] == '*' {
				return fmt.Sprintf("Consecutive wildcard characters at pos %d", i+1)
			}
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '\\') {
				i++
				continue
			}
			return fmt.Sprintf("Invalid escape character at pos %d", i+1)
		}
	}
	return ""
}

// numeric compiles the operand list of "numeric".
func (c *compiler) numeric(v *jvalue) (numRange, error) {
	items := v.arr
	at := func(i int) (*jvalue, int) {
		if i < len(items) {
			return items[i], items[i].pos
		}
		return nil, v.end
	}
	first, pos := at(0)
	if first == nil || first.kind != jString {
		text := "]"
		if first != nil {
			text = tokenText(first)
		}
		return numRange{}, c.fail(pos, "Invalid member in numeric match: %s", text)
	}
	op := first.text
	value := func(i int, name string) (float64, error) {
		item, pos := at(i)
		if item == nil || item.kind != jNumber {
			return 0, c.fail(pos, "Value of %s must be numeric", name)
		}
		f, err := strconv.ParseFloat(item.text, 64)
		if err != nil || math.IsInf(f, 0) {
			return 0, c.fail(pos, "Value of %s must be numeric", name)
		}
		return f, nil
	}
	end := func(i int, msg string) error {
		if item, pos := at(i); item != nil {
			return c.fail(pos, "%s", msg)
		}
		return nil
	}
	const tooMany = "Too many elements in numeric expression"
	r := fullRange
	switch op {
	case "=":
		f, err := value(1, "equals")
		if err != nil {
			return r, err
		}
		r = numRange{lo: f, hi: f, loIncl: true, hiIncl: true}
		return r, end(2, tooMany)
	case "<", "<=":
		f, err := value(1, op)
		if err != nil {
			return r, err
		}
		r.hi, r.hiIncl = f, op == "<="
		return r, end(2, tooMany)
	case ">", ">=":
		f, err := value(1, op)
		if err != nil {
			return r, err
		}
		r.lo, r.loIncl = f, op == ">="
		second, pos := at(2)
		if second == nil {
			return r, nil
		}
		if second.kind != jString {
			return r, c.fail(pos, "Bad value in numeric range: %s", tokenText(second))
		}
		if second.text != "<" && second.text != "<=" {
			return r, c.fail(pos, "Bad numeric range operator: %s", second.text)
		}
		top, err := value(3, second.text)
		if err != nil {
			return r, err
		}
		r.hi, r.hiIncl = top, second.text == "<="
		if r.lo >= r.hi {
			_, pos := at(3)
			return r, c.fail(pos, "Bottom must be less than top")
		}
		return r, end(4, "Too many terms in numeric range expression")
	default:
		return r, c.fail(pos, "Unrecognized numeric range operator: %s", op)
	}
}

// anythingBut compiles the operand of "anything-but".
func (c *compiler) anythingBut(v *jvalue) (*anythingBut, error) {
	switch v.kind {
	case jString:
		return &anythingBut{kind: butValues, strs: []string{v.text}}, nil
	case jNumber:
		n, err := c.butNumber(v)
		if err != nil {
			return nil, err
		}
		return &anythingBut{kind: butValues, nums: []float64{n}}, nil
	case jArray:
		a := &anythingBut{kind: butValues}
		for _, e := range v.arr {
			switch e.kind {
			case jString:
				a.strs = append(a.strs, e.text)
			case jNumber:
				n, err := c.butNumber(e)
				if err != nil {
					return nil, err
				}
				a.nums = append(a.nums, n)
			default:
				return nil, c.fail(e.pos, "Inside anything but list, start|null|boolean is not supported.")
			}
		}
		if (len(a.strs) > 0) == (len(a.nums) > 0) {
			return nil, c.fail(v.end, "Inside anything but list, either all values are number or string, mixed type is not supported")
		}
		a.strs = sortedUnique(a.strs)
		slices.Sort(a.nums)
		a.nums = slices.Compact(a.nums)
		return a, nil
	case jObject:
		return c.anythingButForm(v)
	default:
		return nil, c.fail(v.pos, "Value of anything-but must be an array or single string/number value.")
	}
}

func (c *compiler) butNumber(v *jvalue) (float64, error) {
	f, err := strconv.ParseFloat(v.text, 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, c.fail(v.pos, "Value of anything-but must be an array or single string/number value.")
	}
	return f, nil
}

// anythingButForm compiles {"anything-but": {"prefix"|"suffix"|
// "equals-ignore-case"|"wildcard": value or list}}.
func (c *compiler) anythingButForm(v *jvalue) (*anythingBut, error) {
	if len(v.obj) == 0 {
		return nil, c.fail(v.end, "Anything-But expression name not found")
	}
	m := v.obj[0]
	a := &anythingBut{}
	var notString string
	switch m.key {
	case "prefix":
		a.kind, notString = butPrefix, "prefix/suffix match pattern must be a string"
	case "suffix":
		a.kind, notString = butSuffix, "prefix/suffix match pattern must be a string"
	case "equals-ignore-case":
		a.kind, notString = butIgnoreCase, "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
	case "wildcard":
		a.kind, notString = butWildcard, "wildcard match pattern must be a string"
	default:
		return nil, c.fail(m.keyEnd, "Unsupported anything-but pattern: %s", m.key)
	}
	var items []*jvalue
	switch m.val.kind {
	case jArray:
		items = m.val.arr
	case jString, jNumber:
		items = []*jvalue{m.val}
	default:
		return nil, c.fail(m.val.pos, "Value of anything-but must be an array or single string/number value.")
	}
	for _, e := range items {
		if e.kind != jString {
			return nil, c.fail(e.pos, "%s", notString)
		}
		text := e.text
		switch a.kind {
		case butPrefix, butSuffix:
			if text == "" {
				return nil, c.fail(e.pos, "Null prefix/suffix not allowed")
			}
		case butIgnoreCase:
			text = fold(text)
		case butWildcard:
			if err := c.checkWildcard(e); err != nil {
				return nil, err
			}
		}
		a.strs = append(a.strs, text)
	}
	a.strs = sortedUnique(a.strs)
	for _, s := range a.strs {
		if a.kind == butWildcard {
			a.globs = append(a.globs, compileGlob(s))
		}
	}
	if len(v.obj) > 1 {
		return nil, c.fail(v.obj[1].keyEnd, "Too many elements in numeric expression")
	}
	return a, nil
}

// ipRange is an inclusive range of addresses of one family.
type ipRange struct {
	lo, hi netip.Addr
}

func (r ipRange) contains(a netip.Addr) bool {
	return a.BitLen() == r.lo.BitLen() && r.lo.Compare(a) <= 0 && a.Compare(r.hi) <= 0
}

// prefix returns the range as a network prefix, when it is exactly one.
func (r ipRange) prefix() (netip.Prefix, bool) {
	bits := r.lo.BitLen()
	for n := bits; n >= 0; n-- {
		p := netip.PrefixFrom(r.lo, n)
		if p.Masked().Addr() != r.lo {
			continue
		}
		if lastAddr(p) == r.hi {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func (r ipRange) String() string { return r.lo.String() + "-" + r.hi.String() }

// lastAddr returns the highest address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 7; j >= 0; j-- {
			if i*8+(7-j) >= bits {
				b[i] |= 1 << j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// looksLikeIP reports whether s has the shape EventBridge treats as an IP
// address: four dot-separated digit groups, or hex digits and colons with at
// least one colon.
func looksLikeIP(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	dots, colons, groupLen := 0, 0, 0
	hexOnly := true
	for _, ch := range s {
		switch {
		case ch >= '0' && ch <= '9':
			groupLen++
		case ch == '.':
			if groupLen == 0 {
				return false
			}
			dots++
			groupLen = 0
			hexOnly = false
		case ch == ':':
			colons++
		case ch >= 'a' && ch <= 'f' || ch >= 'A' && ch <= 'F':
		default:
			return false
		}
	}
	if dots > 0 {
		return dots == 3 && colons == 0 && groupLen > 0 && isDigitsAndDots(s)
	}
	return hexOnly && colons > 0
}

func isDigitsAndDots(s []byte) bool {
	for _, ch := range s {
		if ch != '.' && (ch < '0' || ch > '9') {
			return false
		}
	}
	return true
}

// parseIPLiteral parses s as an IP address if it has the shape of one. An
// IPv4-mapped IPv6 address counts as IPv4.
func parseIPLiteral(s string) (netip.Addr, bool) {
	if !looksLikeIP([]byte(s)) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseCIDR parses a cidr operand as EventBridge does: the range runs from
// the address given to the last address of its network, and masks of 32
// (IPv4) or 128 (IPv6) bits are refused.
func parseCIDR(s string) (ipRange, error) {
	parts := strings.Split(s, "/")
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1] // Java's split drops trailing empty strings
	}
	if len(parts) != 2 {
		return ipRange{}, fmt.Errorf("Malformed CIDR, one '/' required")
	}
	bits, err := strconv.Atoi(parts[1])
	if err != nil {
		return ipRange{}, fmt.Errorf("Malformed CIDR, mask bits must be an integer")
	}
	if bits < 0 {
		return ipRange{}, fmt.Errorf("Malformed CIDR, mask bits must not be negative")
	}
	if !looksLikeIP([]byte(parts[0])) {
		return ipRange{}, fmt.Errorf("Nonstandard IP address: %s", parts[0])
	}
	addr, err := netip.ParseAddr(parts[0])
	if err != nil || addr.Zone() != "" {
		return ipRange{}, fmt.Errorf("Invalid IP address: %s", parts[0])
	}
	addr = addr.Unmap()
	if addr.Is4() && bits > 31 {
		return ipRange{}, fmt.Errorf("IPv4 mask bits must be < 32")
	}
	if addr.Is6() && bits > 127 {
		return ipRange{}, fmt.Errorf("IPv6 mask bits must be < 128")
	}
	last := lastAddr(netip.PrefixFrom(addr, bits).Masked())
	return ipRange{lo: addr, hi: last}, nil
}
