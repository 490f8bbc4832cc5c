package pattern

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// hostileEvent returns an event whose detail has fields f0..f(k-1), each
// an array of n values v, and the pattern that asks for v in each.
func hostileEvent(k, n int, v string) (pattern, event string) {
	var p, e strings.Builder
	p.WriteString(`{"detail":{`)
	e.WriteString(`{"source":"s","detail":{`)
	for i := range k {
		if i > 0 {
			p.WriteByte(',')
			e.WriteByte(',')
		}
		fmt.Fprintf(&p, `"f%d":[%s]`, i, v)
		fmt.Fprintf(&e, `"f%d":[`, i)
		for j := range n {
			if j > 0 {
				e.WriteByte(',')
			}
			e.WriteString(v)
		}
		e.WriteByte(']')
	}
	p.WriteString("}}")
	e.WriteString("}}")
	return p.String(), e.String()
}

// TestHostileArrays matches events that make a walk over combinations of
// array elements take hours (100^k combinations): each must finish (the
// test would time out otherwise) with the right answer.
func TestHostileArrays(t *testing.T) {
	t.Parallel()
	for _, k := range []int{4, 6, 10} {
		src, event := hostileEvent(k, 100, "1")
		p, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := p.Match([]byte(event))
		if err != nil || !ok {
			t.Fatalf("k=%d: Match = %v, %v; want true", k, ok, err)
		}
		// The last field lacks the value: no combination matches, which a
		// walk over combinations can only learn by trying them all.
		miss := strings.Replace(src, fmt.Sprintf(`"f%d":[1]`, k-1), fmt.Sprintf(`"f%d":[2]`, k-1), 1)
		q, err := Compile(miss)
		if err != nil {
			t.Fatal(err)
		}
		m := NewMatcher()
		m.Replace(map[string]*Pattern{"hit": p, "miss": q})
		got, err := m.Match([]byte(event))
		if err != nil || len(got) != 1 || got[0] != "hit" {
			t.Fatalf("k=%d: Matcher.Match = %v, %v; want [hit]", k, got, err)
		}
	}
}

// TestHostileObjectArrays covers arrays of objects, where array elements
// do constrain each other: fields of several arrays of objects, some
// required in the same element, some absent there.
func TestHostileObjectArrays(t *testing.T) {
	t.Parallel()
	var e strings.Builder
	e.WriteString(`{"detail":{`)
	const k, n = 8, 60
	for i := range k {
		if i > 0 {
			e.WriteByte(',')
		}
		fmt.Fprintf(&e, `"a%d":[`, i)
		for j := range n {
			if j > 0 {
				e.WriteByte(',')
			}
			// Only the last element has x=1 with no y.
			if j == n-1 {
				e.WriteString(`{"x":1,"z":[1,1,1]}`)
			} else {
				e.WriteString(`{"x":1,"y":2,"z":[1,1,1]}`)
			}
		}
		e.WriteByte(']')
	}
	e.WriteString("}}")
	var p strings.Builder
	p.WriteString(`{"detail":{`)
	for i := range k {
		if i > 0 {
			p.WriteByte(',')
		}
		fmt.Fprintf(&p, `"a%d":{"x":[1],"z":[1],"y":[{"exists":false}]}`, i)
	}
	p.WriteString("}}")
	pat, err := Compile(p.String())
	if err != nil {
		t.Fatal(err)
	}
	ok, err := pat.Match([]byte(e.String()))
	if err != nil || !ok {
		t.Fatalf("Match = %v, %v; want true", ok, err)
	}
	// A repeated key: the last counts, so a0 asks for y=3, which no element
	// has.
	bad := strings.Replace(p.String(), `"a0":{"x":[1],"z":[1],"y":[{"exists":false}]}`, `"a0":{"x":[1],"z":[1],"y":[{"exists":false}],"y":[3]}`, 1)
	q, err := Compile(bad)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := q.Match([]byte(e.String())); err != nil || ok {
		t.Fatalf("Match = %v, %v; want false", ok, err)
	}
}

// TestBoundedAgreesSmall compares the engine with the reference on small
// hostile shapes, where the reference's walk over combinations is cheap,
// with the walk's budget spent at once so that every match takes the
// bounded way.
func TestBoundedAgreesSmall(t *testing.T) {
	defer func(b int) { fastBudget = b }(fastBudget)
	fastBudget = 0
	r := rand.New(rand.NewPCG(7, 7))
	for range 300 {
		k, n := 1+r.IntN(3), 1+r.IntN(4)
		src, event := hostileEvent(k, n, pick(randChooser{r}, []string{"1", "2", `"a"`}))
		if r.IntN(2) == 0 {
			event = strings.Replace(event, "1", "2", 1+r.IntN(3))
		}
		want, err := refMatch([]byte(src), []byte(event))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.Match([]byte(event)); err != nil || got != want {
			t.Fatalf("pattern %s, event %s: %v, %v; reference %v", src, event, got, err, want)
		}
	}
}

// TestDifferentialBounded is the differential test with every match taken
// the bounded way. It changes a package variable, so it is not parallel.
func TestDifferentialBounded(t *testing.T) {
	defer func(b int) { fastBudget = b }(fastBudget)
	fastBudget = 0
	n := 3000
	if testing.Short() {
		n = 300
	}
	r := rand.New(rand.NewPCG(5, 8))
	for range n {
		checkDifferential(t, randChooser{r})
	}
}

func FuzzDifferentialBounded(f *testing.F) {
	f.Add([]byte("pattern and event"))
	f.Add([]byte{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8, 3, 2, 7, 9, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		defer func(b int) { fastBudget = b }(fastBudget)
		fastBudget = 0
		checkDifferential(t, &byteChooser{b: data})
	})
}

// TestMatchCancelled checks that a match stops when its context ends.
func TestMatchCancelled(t *testing.T) {
	t.Parallel()
	src, event := hostileEvent(10, 1000, "1")
	p, err := Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.MatchContext(ctx, []byte(event)); !errors.Is(err, context.Canceled) {
		t.Fatalf("MatchContext with an ended context = %v; want context.Canceled", err)
	}
	m := NewMatcher()
	m.Add("r", p)
	if _, err := m.AppendMatchesContext(ctx, nil, []byte(event)); !errors.Is(err, context.Canceled) {
		t.Fatalf("AppendMatchesContext with an ended context = %v; want context.Canceled", err)
	}
	if ok, err := p.Match([]byte(event)); err != nil || !ok {
		t.Fatalf("Match = %v, %v; want true", ok, err)
	}
}

// BenchmarkHostileArrays matches the event of TestHostileArrays: k fields
// of 100 values each, against a rule on all k. A walk over combinations
// took 3.2 s at k=4 and hours at k=6.
func BenchmarkHostileArrays(b *testing.B) {
	for _, k := range []int{4, 6, 10} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			src, event := hostileEvent(k, 100, "1")
			m := NewMatcher()
			p, err := Compile(src)
			if err != nil {
				b.Fatal(err)
			}
			m.Add("r", p)
			var dst []string
			for b.Loop() {
				if dst, err = m.AppendMatches(dst[:0], []byte(event)); err != nil || len(dst) != 1 {
					b.Fatal(dst, err)
				}
			}
		})
	}
}

// nestedArrays is n values v inside depth arrays.
func nestedArrays(depth, n int, v string) string {
	return strings.Repeat("[", depth) + strings.TrimSuffix(strings.Repeat(v+",", n), ",") + strings.Repeat("]", depth)
}

// TestDeepArrays: values deep in arrays cost the matcher their arrays once
// each (2.8 KB of them took 8 s when each step compared whole trails), and
// an event whose values, counted once for each array they sit in, pass
// MaxArrayWeight is refused before anything is kept for it.
func TestDeepArrays(t *testing.T) {
	t.Parallel()
	event := `{"a":` + nestedArrays(490, 200, "1") + `,"b":` + nestedArrays(490, 200, "1") + `}`
	p, err := Compile(`{"a":[1],"b":[2]}`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.Match([]byte(event)); err != nil || ok {
		t.Fatalf("Match = %v, %v; want false", ok, err)
	}
	q, err := Compile(`{"a":[1],"b":[1]}`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := q.Match([]byte(event)); err != nil || !ok {
		t.Fatalf("Match = %v, %v; want true", ok, err)
	}
	heavy := `{"a":` + nestedArrays(500, 2500, "1") + `}` // 1.25 million
	var evErr *EventError
	if err := CheckEvent([]byte(heavy)); !errors.As(err, &evErr) || !strings.Contains(err.Error(), "counted once for each array") {
		t.Errorf("CheckEvent of a heavy event: %v", err)
	}
	if _, err := q.Match([]byte(heavy)); !errors.As(err, &evErr) {
		t.Errorf("Match of a heavy event: %v", err)
	}
	if err := CheckEvent([]byte(`{"a":` + nestedArrays(400, 2500, "1") + `}`)); err != nil {
		t.Errorf("CheckEvent of a million: %v", err)
	}
}
