package pattern

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// liveHeap returns the bytes of live heap after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// bigPattern returns a pattern of at most size characters of one kind:
// many fields, many values of one field, many numeric ranges, many cidrs,
// or nine "$or"s of two objects with ten more fields (512 alternatives of
// 19 conditions, near the limit of 10,000 conditions in all).
func bigPattern(kind string, rule, size int) string {
	var parts []string
	n := 2
	for j := 0; ; j++ {
		var f string
		switch kind {
		case "fields":
			f = fmt.Sprintf(`"f%03d":["v%d-%d"]`, j, rule, j)
		case "values":
			f = fmt.Sprintf(`"x%d-%d"`, rule, j)
		case "ranges":
			f = fmt.Sprintf(`"f%03d":[{"numeric":[">",%d,"<",%d]}]`, j, j, j+1000)
		case "cidrs":
			f = fmt.Sprintf(`"f%03d":[{"cidr":"10.%d.%d.0/24"}]`, j, rule%250, j%250)
		case "or":
			if j < 9 {
				f = fmt.Sprintf(`"g%d":{"$or":[{"a%d":["v%d"]},{"b%d":[{"prefix":"p%d"}]}]}`, j, j, rule, j, j)
			} else {
				f = fmt.Sprintf(`"f%03d":["v%d-%d"]`, j, rule, j)
			}
		}
		if n+len(f)+10 > size || kind == "or" && j == 19 {
			break
		}
		n += len(f) + 1
		parts = append(parts, f)
	}
	if kind == "values" {
		return `{"k":[` + strings.Join(parts, ",") + "]}"
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// TestMemoryPerRule measures what a rule costs, its pattern and its share
// of its bus's machine, for the kinds of pattern that cost the most, as
// long as the default quota allows (2,048 characters), 300 rules (the
// default quota of a bus) at a time. docs/BENCHMARKS.md states the
// figures; the bound here is their budget: 100 buses of 300 such rules in
// under 2 GB.
func TestMemoryPerRule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 1,500 large patterns")
	}
	const rules, budget = 300, 2 << 30 / (100 * 300)
	for _, kind := range []string{"fields", "values", "ranges", "cidrs", "or"} {
		before := liveHeap()
		set := make(map[string]*Pattern, rules)
		for r := range rules {
			src := bigPattern(kind, r, DefaultMaxLength)
			p, err := Compile(src)
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			set[fmt.Sprint(r)] = p
		}
		m := NewMatcher()
		m.Replace(set)
		perRule := (liveHeap() - before) / rules
		runtime.KeepAlive(m)
		t.Logf("%-6s %6d bytes a rule (pattern and its share of the machine)", kind, perRule)
		if perRule > budget {
			t.Errorf("%s: %d bytes a rule, over the budget of %d", kind, perRule, budget)
		}
	}
}

// TestOrExpansionIsShared: nine "$or"s of two objects make 512 alternatives;
// they cost about what one does (it took 1.2 MB a rule when each
// alternative was kept).
func TestOrExpansionIsShared(t *testing.T) {
	var parts []string
	for j := range 9 {
		parts = append(parts, fmt.Sprintf(`"g%d":{"$or":[{"a%d":["v0"]},{"b%d":[{"prefix":"p%d"}]}]}`, j, j, j, j))
	}
	p, err := Compile("{" + strings.Join(parts, ",") + "}")
	if err != nil {
		t.Fatal(err)
	}
	if p.nalts != 512 {
		t.Fatalf("%d alternatives, want 512", p.nalts)
	}
	m := buildMachine([]string{"r"}, []*Pattern{p})
	if m.nstates > 40 {
		t.Errorf("%d states for 512 alternatives of 9 conditions", m.nstates)
	}
	// The alternatives still all match, and only them.
	for _, tc := range []struct {
		event string
		want  bool
	}{
		{`{"g0":{"a0":"v0"},"g1":{"b1":"p1x"},"g2":{"a2":"v0"},"g3":{"a3":"v0"},"g4":{"a4":"v0"},"g5":{"a5":"v0"},"g6":{"a6":"v0"},"g7":{"a7":"v0"},"g8":{"b8":"p8"}}`, true},
		{`{"g0":{"a0":"v0"},"g1":{"b1":"p1x"},"g2":{"a2":"v0"},"g3":{"a3":"v0"},"g4":{"a4":"v0"},"g5":{"a5":"v0"},"g6":{"a6":"v0"},"g7":{"a7":"v0"},"g8":{"b8":"x"}}`, false},
	} {
		if got, err := p.Match([]byte(tc.event)); err != nil || got != tc.want {
			t.Errorf("Match(%s) = %v, %v; want %v", tc.event, got, err, tc.want)
		}
	}
}

// TestExpansionLimits: bridgeport bounds what one pattern may cost, with
// an InvalidEventPatternException that says why.
func TestExpansionLimits(t *testing.T) {
	t.Parallel()
	// 512 alternatives of 9 "$or" conditions and 30 fields each: 20,000
	// conditions to expand.
	var b strings.Builder
	b.WriteString("{")
	for j := range 9 {
		fmt.Fprintf(&b, `"g%d":{"$or":[{"a":[1]},{"b":[1]}]},`, j)
	}
	for j := range 30 {
		fmt.Fprintf(&b, `"c%d":[1],`, j)
	}
	src := strings.TrimSuffix(b.String(), ",") + "}"
	_, err := CompileWithLimits(src, Limits{MaxLength: APIMaxLength})
	if err == nil || !strings.Contains(err.Error(), "Event pattern is too complex: its $or combinations hold more than 10000 conditions in all") {
		t.Errorf("Compile = %v", err)
	}
	if _, err := CompileWithLimits(src, Limits{MaxLength: APIMaxLength, MaxConditions: 30000}); err != nil {
		t.Errorf("with a higher limit: %v", err)
	}
	// A pattern of 40 fields takes 41 states.
	b.Reset()
	for j := range 40 {
		fmt.Fprintf(&b, `,"f%d":[1]`, j)
	}
	src = "{" + b.String()[1:] + "}"
	_, err = CompileWithLimits(src, Limits{MaxStates: 40})
	if err == nil || !strings.Contains(err.Error(), "Event pattern is too complex: matching it takes 41 states; the maximum is 40") {
		t.Errorf("Compile = %v", err)
	}
}

// TestBusStatesBound: a rule's share of its bus's machine is at most its
// own machine (Pattern.states, which MaxStates bounds), whatever the other
// rules: rules whose "$or"s range over the same fields and each remember a
// different one (a field that depends on the choice of a, of b, of c) must
// not multiply into their product.
func TestBusStatesBound(t *testing.T) {
	t.Parallel()
	const n = 10
	// or is a "$or" of n objects, the i-th with field=i and inner(i).
	or := func(field string, inner func(i int) string) string {
		var objs []string
		for i := range n {
			objs = append(objs, fmt.Sprintf(`{"%s":["%d"]%s}`, field, i, inner(i)))
		}
		return "[" + strings.Join(objs, ",") + "]"
	}
	none := func(int) string { return "" }
	rules := []string{
		`{"$or":` + or("a", func(i int) string {
			return fmt.Sprintf(`,"$or":%s,"$or":%s,"z":["%d"]`, or("b", none), or("c", none), i)
		}) + `}`,
		`{"$or":` + or("a", none) + `,"$or":` + or("b", func(j int) string { return fmt.Sprintf(`,"$or":%s,"y":["%d"]`, or("c", none), j) }) + `}`,
		`{"$or":` + or("a", none) + `,"$or":` + or("b", none) + `,"$or":` + or("c", func(k int) string { return fmt.Sprintf(`,"x":["%d"]`, k) }) + `}`,
	}
	var pats []*Pattern
	var names []string
	sum := 0
	for i, src := range rules {
		p, err := CompileWithLimits(src, Limits{MaxLength: APIMaxLength})
		if err != nil {
			t.Fatal(err)
		}
		sum += p.states()
		pats = append(pats, p)
		names = append(names, fmt.Sprint("r", i))
	}
	m := buildMachine(names, pats)
	if n := m.nstates - m.merged; n > sum {
		t.Errorf("the bus machine takes %d states besides its merged ones; its rules alone take %d together", n, sum)
	}
	// The merged states (merge.go) stay within their budget, a multiple of
	// the size of the other states.
	if budget := mergeBudget(m.ownSize, len(m.names)); m.mergedSize > budget {
		t.Errorf("the merged states take %d; the budget is %d", m.mergedSize, budget)
	}
	if m.merged == 0 {
		t.Error("no state merged: these rules' exact strings lead to several states")
	}
}
