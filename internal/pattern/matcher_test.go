package pattern

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// expectMatches returns the names of rules whose pattern matches event, one
// pattern at a time: what a Matcher over rules must answer.
func expectMatches(t *testing.T, rules map[string]*Pattern, event []byte) []string {
	t.Helper()
	var out []string
	for name, p := range rules {
		ok, err := p.Match(event)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// waitSettled waits until m is one level over the paths in use, as it is
// once changes stop.
func waitSettled(t *testing.T, m *Matcher) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m.mu.Lock()
		done := m.settled == m.seq
		m.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the matcher still has %d levels a minute after the last change", m.levels())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := m.levels(); n > 1 {
		t.Fatalf("settled with %d levels", n)
	}
}

// TestMatcherChanges makes random changes (adds, replacements, deletes)
// while background compactions merge levels, and checks after each that the
// matcher answers exactly what its patterns one by one answer.
func TestMatcherChanges(t *testing.T) {
	t.Parallel()
	for _, settle := range []time.Duration{time.Millisecond, time.Hour} {
		t.Run(fmt.Sprintf("settle=%v", settle), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(3, uint64(settle)))
			corpus := slices.Collect(maps.Values(benchRules(t, denseVocabulary, 400)))
			events, _ := benchEvents(denseVocabulary, 40)
			m := NewMatcher()
			m.settle = settle
			rules := make(map[string]*Pattern)
			for i := range 150 {
				rules[fmt.Sprintf("r%03d", i)] = corpus[i]
			}
			m.Replace(rules)
			for op := range 1500 {
				name := fmt.Sprintf("r%03d", r.IntN(300))
				if r.IntN(3) == 0 {
					delete(rules, name)
					m.Delete(name)
				} else {
					p := corpus[r.IntN(len(corpus))]
					rules[name] = p
					m.Add(name, p)
				}
				if m.Len() != len(rules) {
					t.Fatalf("after %d changes: Len %d, want %d", op+1, m.Len(), len(rules))
				}
				if op%10 != 0 {
					continue
				}
				if n := m.levels(); n > 12 {
					t.Fatalf("after %d changes: %d levels", op+1, n)
				}
				for _, ev := range events[:8] {
					got, err := m.Match(ev)
					if err != nil {
						t.Fatal(err)
					}
					if want := expectMatches(t, rules, ev); !slices.Equal(got, want) {
						t.Fatalf("after %d changes: matched %v, want %v", op+1, got, want)
					}
				}
			}
			if settle == time.Millisecond {
				waitSettled(t, m)
			}
			for _, ev := range events {
				got, err := m.Match(ev)
				if err != nil {
					t.Fatal(err)
				}
				if want := expectMatches(t, rules, ev); !slices.Equal(got, want) {
					t.Fatalf("at the end: matched %v, want %v", got, want)
				}
			}
		})
	}
}

// TestMatcherMatchesWhileChanging matches from several goroutines while
// rules change and levels merge: the rules that never change are always
// reported, and matching never waits for a change.
func TestMatcherMatchesWhileChanging(t *testing.T) {
	t.Parallel()
	corpus := slices.Collect(maps.Values(benchRules(t, denseVocabulary, 300)))
	events, _ := benchEvents(denseVocabulary, 64)
	stable := make(map[string]*Pattern)
	for i := range 100 {
		stable[fmt.Sprintf("stable-%03d", i)] = corpus[i]
	}
	want := make([][]string, len(events))
	for i, ev := range events {
		want[i] = expectMatches(t, stable, ev)
	}
	m := NewMatcher()
	m.settle = time.Millisecond
	m.Replace(stable)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var matches atomic.Int64
	errs := make(chan error, 4)
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst []string
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := i % len(events)
				var err error
				dst, err = m.AppendMatches(dst[:0], events[k])
				if err != nil {
					errs <- err
					return
				}
				var got []string
				for _, n := range dst {
					if stable[n] != nil {
						got = append(got, n)
					}
				}
				if !slices.Equal(got, want[k]) {
					errs <- fmt.Errorf("stable rules matched %v, want %v", got, want[k])
					return
				}
				matches.Add(1)
			}
		}()
	}
	r := rand.New(rand.NewPCG(5, 5))
	for i := range 2000 {
		name := fmt.Sprintf("churn-%03d", r.IntN(200))
		if i%4 == 3 {
			m.Delete(name)
		} else {
			m.Add(name, corpus[100+r.IntN(200)])
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if matches.Load() == 0 {
		t.Fatal("no match ran while the rules changed")
	}
}

// TestMatcherForgetsPaths checks that the paths of deleted patterns leave
// the trie once the matcher settles, so that a bus whose rules come and go
// with ever new field names does not grow without bound.
func TestMatcherForgetsPaths(t *testing.T) {
	t.Parallel()
	m := NewMatcher()
	m.settle = time.Millisecond
	keep := mustCompile(t, `{"source":["a"]}`)
	m.Add("keep", keep)
	for i := range 200 {
		name := fmt.Sprintf("gone-%d", i)
		m.Add(name, mustCompile(t, fmt.Sprintf(`{"detail":{"field%d":["x"]}}`, i)))
		m.Delete(name)
	}
	waitSettled(t, m)
	if n := len(m.cur.Load().trie.ids); n != 1 {
		t.Errorf("after the deletes settled, the trie has %d paths, want 1 (source)", n)
	}
	got, err := m.Match([]byte(`{"source":"a","detail":{"field7":"x"}}`))
	if err != nil || !slices.Equal(got, []string{"keep"}) {
		t.Errorf("Match = %v, %v", got, err)
	}
}

// TestMatcherChangeCost checks that a change to a large set rebuilds only
// the small level: the machine built per change holds at most smallMax
// rules, whatever the size of the set.
func TestMatcherChangeCost(t *testing.T) {
	t.Parallel()
	m := NewMatcher()
	m.settle = time.Hour // no settling: every level stays as the changes leave it
	m.Replace(benchRules(t, tenantVocabulary, 2000))
	extra := slices.Collect(maps.Values(benchRules(t, denseVocabulary, 100)))
	for i, p := range extra {
		m.Add(fmt.Sprintf("extra-%d", i), p)
		if s := m.cur.Load().small; s != nil && len(s.m.names) > smallMax {
			t.Fatalf("the small level has %d rules", len(s.m.names))
		}
	}
	if m.Len() != 2100 {
		t.Fatalf("Len = %d", m.Len())
	}
}
