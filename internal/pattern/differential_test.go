package pattern

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkDifferential builds a few random patterns and events, and checks the
// engine against the reference: each pattern alone, all of them in one
// Matcher, and the Matcher again after deleting some.
func checkDifferential(t testing.TB, c chooser) {
	t.Helper()
	rules := map[string]*Pattern{}
	srcs := map[string]string{}
	for i := range 1 + c.intn(5) {
		src := genPattern(c)
		p, err := Compile(src)
		if err != nil {
			continue
		}
		name := fmt.Sprintf("r%d", i)
		rules[name] = p
		srcs[name] = src
	}
	m := NewMatcher()
	m.Replace(rules)
	for range 1 + c.intn(4) {
		event := genEvent(c)
		var want []string
		for name, src := range srcs {
			ok, err := refMatch([]byte(src), []byte(event))
			if err != nil {
				t.Fatalf("reference on %s: %v", event, err)
			}
			single, err := rules[name].Match([]byte(event))
			if err != nil {
				t.Fatalf("Match(%s): %v", event, err)
			}
			if single != ok {
				t.Fatalf("pattern %s, event %s: engine %v, reference %v", src, event, single, ok)
			}
			if ok {
				want = append(want, name)
			}
		}
		slices.Sort(want)
		got, err := m.Match([]byte(event))
		if err != nil {
			t.Fatalf("Matcher.Match(%s): %v", event, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("event %s with %v: matcher %v, reference %v", event, srcs, got, want)
		}

		// Deleting patterns leaves the matcher as if they had never been added.
		for name := range rules {
			if c.intn(2) == 0 {
				m2 := NewMatcher()
				m2.Replace(rules)
				m2.Delete(name)
				fresh := NewMatcher()
				rest := map[string]*Pattern{}
				for n, q := range rules {
					if n != name {
						rest[n] = q
					}
				}
				fresh.Replace(rest)
				a, _ := m2.Match([]byte(event))
				b, _ := fresh.Match([]byte(event))
				if !slices.Equal(a, b) {
					t.Fatalf("after deleting %s: %v, never added: %v", name, a, b)
				}
			}
		}
	}
}

func TestDifferential(t *testing.T) {
	t.Parallel()
	n := 5000
	if testing.Short() {
		n = 500
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range n {
		checkDifferential(t, randChooser{r})
	}
}

// TestDifferentialLayouts runs the differential test with every transition
// indexed, and with every transition scanned linearly, so that both ways of
// leading on from a value agree with the reference; then with no state
// merged (merge.go), and with merging allowed only a little, so that a
// machine has merged states and unmerged fan-outs side by side. It changes
// package variables, so it is not parallel: parallel tests start only after
// it.
func TestDifferentialLayouts(t *testing.T) {
	defer func(e, o, f int64) { maxLinearExact.Store(e); maxLinearOps.Store(o); mergeFactor.Store(f) }(maxLinearExact.Load(), maxLinearOps.Load(), mergeFactor.Load())
	n := 1500
	if testing.Short() {
		n = 200
	}
	for _, limit := range []int64{0, 1 << 30} {
		maxLinearExact.Store(limit)
		maxLinearOps.Store(limit)
		r := rand.New(rand.NewPCG(3, uint64(limit)))
		for range n {
			checkDifferential(t, randChooser{r})
		}
	}
	maxLinearExact.Store(16)
	maxLinearOps.Store(8)
	for _, factor := range []int64{0, -12} {
		mergeFactor.Store(factor)
		r := rand.New(rand.NewPCG(4, uint64(factor)))
		for range n {
			checkDifferential(t, randChooser{r})
		}
	}
}

func FuzzDifferential(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("pattern and event"))
	f.Add([]byte{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8, 3, 2, 7, 9, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDifferential(t, &byteChooser{b: data})
	})
}

// FuzzCompile feeds arbitrary text to the pattern compiler: it must never
// panic, and what it accepts must match as the reference does.
func FuzzCompile(f *testing.F) {
	for _, tc := range matchCases {
		f.Add(tc.pattern)
	}
	for _, tc := range invalidCases {
		f.Add(tc.pattern)
	}
	events := []string{ec2Event, `{"a":"x","b":[1,{"c":null}],"d":{"e":"10.0.0.1"}}`, `{"a":[{"b":1,"c":"x"},{"b":2}]}`}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile(src)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Compile(%q): error %T", src, err)
			}
			return
		}
		if !utf8.ValidString(src) {
			return // the reference decodes invalid UTF-8 differently
		}
		for _, ev := range events {
			got, err := p.Match([]byte(ev))
			if err != nil {
				t.Fatal(err)
			}
			want, err := refMatch([]byte(src), []byte(ev))
			if err != nil {
				t.Fatalf("reference rejects %q: %v", src, err)
			}
			if got != want {
				t.Fatalf("pattern %s event %s: engine %v, reference %v", src, ev, got, want)
			}
		}
	})
}

// FuzzFlatten feeds arbitrary bytes as events: the flattener must never
// panic, must reject exactly the inputs that are not JSON objects (within
// the depth limit), and must match valid ones as the reference does.
func FuzzFlatten(f *testing.F) {
	f.Add([]byte(ec2Event))
	f.Add([]byte(`{"a":[{"b":1,"c":"x"},{"b":2}],"a.b":1}`))
	f.Add([]byte(`{"a":"\ud83d\ude00\u00e9\n","b":-1.5e-3}`))
	f.Add([]byte(`{"a":[[[]]],"b":{}}`))
	patterns := []string{
		`{"a":{"b":[1,2]}}`,
		`{"a":[{"prefix":"x"},{"exists":true}],"b":[{"numeric":[">",0]}]}`,
		`{"a":{"c":[{"anything-but":"x"}]},"b":[{"exists":false}]}`,
		`{"$or":[{"a":[{"wildcard":"*x*"}]},{"b":[{"equals-ignore-case":"X"}]}]}`,
	}
	compiled := map[string]*Pattern{}
	for _, src := range patterns {
		compiled[src] = mustCompile(f, src)
	}
	f.Fuzz(func(t *testing.T, event []byte) {
		valid := json.Valid(event) && isObject(event) && jsonDepth(event) <= MaxEventDepth
		for src, p := range compiled {
			got, err := p.Match(event)
			if valid != (err == nil) {
				t.Fatalf("event %q: json valid %v, Match error %v", event, valid, err)
			}
			if err != nil || !utf8.Valid(event) {
				continue
			}
			want, err := refMatch([]byte(src), event)
			if err != nil {
				t.Fatalf("reference: %v", err)
			}
			if got != want {
				t.Fatalf("pattern %s event %s: engine %v, reference %v", src, event, got, want)
			}
		}
	})
}

func mustCompile(t testing.TB, src string) *Pattern {
	t.Helper()
	p, err := Compile(src)
	if err != nil {
		t.Fatalf("Compile(%s): %v", src, err)
	}
	return p
}

func isObject(b []byte) bool {
	s := strings.TrimLeft(string(b), " \t\r\n")
	return strings.HasPrefix(s, "{")
}

// jsonDepth returns the deepest nesting of a valid JSON text.
func jsonDepth(b []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}
