package pattern

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// machineOf builds one machine of the patterns, named r0, r1, ...
func machineOf(t testing.TB, srcs []string) *machine {
	t.Helper()
	names := make([]string, len(srcs))
	pats := make([]*Pattern, len(srcs))
	for i, src := range srcs {
		p, err := CompileWithLimits(src, Limits{MaxLength: APIMaxLength})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		names[i], pats[i] = fmt.Sprint("r", i), p
	}
	return buildMachine(names, pats)
}

// hitsOf matches the event against m and returns the names of the rules
// that match, sorted.
func hitsOf(t testing.TB, m *machine, event string) []string {
	t.Helper()
	var ms matchScratch
	if err := ms.run(nil, m, []byte(event)); err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	var got []string
	for _, r := range ms.hits {
		got = append(got, m.names[r])
	}
	return got
}

// refHits is hitsOf by the reference matcher.
func refHits(t testing.TB, srcs []string, event string) []string {
	t.Helper()
	var want []string
	for i, src := range srcs {
		ok, err := refMatch([]byte(src), []byte(event))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			want = append(want, fmt.Sprint("r", i))
		}
	}
	slices.Sort(want)
	return want
}

// TestMergedStates: rules whose first condition shares an exact string or
// an equal operator, so that the states after it are merged, with later
// conditions on the same fields, on other fields, on absences and in
// arrays. Each set is checked against the reference matcher, merged and
// with merging off.
func TestMergedStates(t *testing.T) {
	defer func(f int64) { mergeFactor.Store(f) }(mergeFactor.Load())
	sets := []struct {
		name   string
		rules  []string
		events []string
	}{
		{"same later field, different values", []string{
			`{"a":["x"],"b":["y"]}`,
			`{"a":["x","z"],"b":["w"]}`,
			`{"a":["x","k"],"b":[{"prefix":"w"}],"c":[1]}`,
		}, []string{`{"a":"x","b":"y"}`, `{"a":"x","b":"w"}`, `{"a":"x","b":"wq","c":1}`, `{"a":"z","b":"y"}`, `{"a":"z","b":"w"}`}},
		{"absences after the shared string", []string{
			`{"a":["x"],"b":[{"exists":false}]}`,
			`{"a":["x","z"],"b":["y",{"exists":false}],"c":["k"]}`,
			`{"a":["x","k"],"c":[{"exists":false}]}`,
		}, []string{`{"a":"x"}`, `{"a":"x","b":"y","c":"k"}`, `{"a":"x","c":"k"}`, `{"a":"x","b":"q"}`}},
		{"arrays", []string{
			`{"a":["x"],"items":{"k":["p"],"v":[1]}}`,
			`{"a":["x","z"],"items":{"k":["q"],"v":[{"numeric":[">",1]}]}}`,
			`{"a":["x","k"],"items":{"k":["p"],"w":[{"exists":false}]}}`,
		}, []string{
			`{"a":"x","items":[{"k":"p","v":2},{"k":"q","v":1}]}`,
			`{"a":"x","items":[{"k":"p","v":1,"w":0},{"k":"q","v":5}]}`,
			`{"a":"x","items":[{"k":"p","v":2,"w":1},{"k":"p"}]}`,
		}},
		{"an equal operator first", []string{
			`{"a":[{"prefix":"x"}],"b":["y"]}`,
			`{"a":[{"prefix":"x"}],"b":["z"],"c":[{"anything-but":"q"}]}`,
			`{"a":[{"prefix":"x"},"k"],"c":["q"]}`,
		}, []string{`{"a":"xa","b":"y"}`, `{"a":"xa","b":"z","c":"r"}`, `{"a":"xa","c":"q"}`, `{"a":"k","c":"q"}`, `{"a":"ya","b":"y"}`}},
		{"$or after the shared string", []string{
			`{"a":["x"],"$or":[{"b":["y"]},{"c":["z"]}]}`,
			`{"a":["x","z"],"$or":[{"b":["w"]},{"c":[{"exists":false}]}]}`,
		}, []string{`{"a":"x","b":"y"}`, `{"a":"x","c":"z"}`, `{"a":"x","b":"q"}`, `{"a":"x","b":"w","c":"z"}`}},
	}
	for _, set := range sets {
		for _, factor := range []int64{3, 0} {
			mergeFactor.Store(factor)
			m := machineOf(t, set.rules)
			if factor > 0 && m.merged == 0 {
				t.Errorf("%s: nothing merged", set.name)
			}
			for _, ev := range set.events {
				if got, want := hitsOf(t, m, ev), refHits(t, set.rules, ev); !slices.Equal(got, want) {
					t.Errorf("%s, merge factor %d, event %s: matched %v, the reference %v", set.name, factor, ev, got, want)
				}
			}
		}
	}
}

// TestMergedOperatorsStayApart: operators that look alike but accept
// different values must not be taken for equal ones when states merge.
func TestMergedOperatorsStayApart(t *testing.T) {
	cases := []struct{ op1, op2 string }{
		{`{"anything-but":[1]}`, `{"anything-but":[2]}`},
		{`{"anything-but":{"prefix":"1"}}`, `{"anything-but":"1"}`},
		{`{"anything-but":{"suffix":"1"}}`, `{"anything-but":{"prefix":"1"}}`},
		{`{"cidr":"10.0.0.0/24"}`, `{"cidr":"10.0.0.0/8"}`},
		{`{"numeric":[">",1]}`, `{"numeric":[">=",1]}`},
		{`{"prefix":"a"}`, `{"prefix":{"equals-ignore-case":"a"}}`},
		{`5`, `5.0`},
		{`{"wildcard":"a*"}`, `{"prefix":"a"}`},
	}
	values := []string{`1`, `2`, `3`, `"1"`, `"12"`, `"21"`, `"10.0.0.1"`, `"10.1.0.0"`, `5`, `5.0`, `"A"`, `"ab"`, `"Ab"`}
	for _, c := range cases {
		rules := []string{
			fmt.Sprintf(`{"a":["x"],"b":[%s]}`, c.op1),
			fmt.Sprintf(`{"a":["x","y"],"b":[%s]}`, c.op2),
		}
		m := machineOf(t, rules)
		if m.merged == 0 {
			t.Errorf("%v: nothing merged", rules)
		}
		for _, v := range values {
			ev := fmt.Sprintf(`{"a":"x","b":%s}`, v)
			if got, want := hitsOf(t, m, ev), refHits(t, rules, ev); !slices.Equal(got, want) {
				t.Errorf("%v, event %s: matched %v, the reference %v", rules, ev, got, want)
			}
		}
	}
}

// TestMergedStatesBounded: rule sets within a bus's default quota (300
// rules of 2,048 characters) built to make merged states costly stay within
// the budget: the machine without merged states, and at most three times
// that again as estimated, measured in live heap (the code and the indexes
// of large transitions). Not parallel: it measures the heap.
func TestMergedStatesBounded(t *testing.T) {
	defer func(f int64) { mergeFactor.Store(f) }(mergeFactor.Load())
	// ors returns n rules of "$or"s of as many {d: unique string, x: id}
	// objects as fit, each string leading to its own state.
	ors := func(n int) []string {
		var rules []string
		id := 0
		for range n {
			var alts []string
			for {
				alt := fmt.Sprintf(`{"d":["v%d"],"x":["%d"]}`, id, id)
				if len(`{"$or":[]}`)+len(strings.Join(append(alts, alt), ",")) > DefaultMaxLength {
					break
				}
				alts = append(alts, alt)
				id++
			}
			rules = append(rules, `{"$or":[`+strings.Join(alts, ",")+`]}`)
		}
		return rules
	}
	var nums, strs []string
	for i := 0; len(strings.Join(nums, ","))+60 < DefaultMaxLength; i++ {
		nums = append(nums, fmt.Sprint(i))
	}
	for i := 0; len(strings.Join(strs, ","))+60 < DefaultMaxLength; i++ {
		strs = append(strs, fmt.Sprintf(`"w%d"`, i))
	}
	sets := map[string][]string{
		// Every string of d also leads to an anything-but of many numbers.
		"anything-but numbers": append(ors(299),
			fmt.Sprintf(`{"d":[{"prefix":"v"}],"e":[{"anything-but":[%s]}]}`, strings.Join(nums, ","))),
		// Every string of d also leads to a state of many strings.
		"a large state": append(ors(150), slices.Repeat([]string{
			`{"d":[{"prefix":"v"}],"e":[` + strings.Join(strs, ",") + `]}`}, 150)...),
	}
	// The strings of one state times the anything-buts of another, after
	// the string both are reached by.
	var product []string
	for k := range 150 {
		product = append(product, fmt.Sprintf(`{"d":["s"],"e":["w%d"]}`, k))
		product = append(product, fmt.Sprintf(`{"d":["s","t"],"e":[{"anything-but":"q%d"}]}`, k))
	}
	sets["strings times operators"] = product
	for name, rules := range sets {
		pats := make([]*Pattern, len(rules))
		for i, src := range rules {
			pats[i] = mustCompile(t, src)
		}
		names := make([]string, len(rules))
		heapOf := func(factor int64) (*machine, uint64) {
			mergeFactor.Store(factor)
			before := liveHeap()
			m := buildMachine(names, pats)
			after := liveHeap()
			runtime.KeepAlive(m)
			return m, after - min(after, before)
		}
		_, plain := heapOf(0)
		m, merged := heapOf(3)
		t.Logf("%s: %d KB without merged states, %d KB with; %d merged states; estimated: own %d KB, merged %d KB", name, plain>>10, merged>>10, m.merged, m.ownSize>>10, m.mergedSize>>10)
		if m.mergedSize > mergeBudget(m.ownSize, len(m.names)) {
			t.Errorf("%s: merged states take %d bytes, over the budget of %d", name, m.mergedSize, mergeBudget(m.ownSize, len(m.names)))
		}
		// The budget is at most mergeBytesPerRule a rule, and the
		// estimates are within about 15% of the heap.
		if limit := plain + uint64(len(rules))*mergeBytesPerRule*3/2 + 256<<10; merged > limit {
			t.Errorf("%s: the machine takes %d KB with merged states, %d KB without: over %d KB", name, merged>>10, plain>>10, limit>>10)
		}
	}
}
