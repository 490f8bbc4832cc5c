package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor polls cond until it holds. Its bound, a minute, only ends a
// test whose condition never comes; no test relies on it being sooner.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after a minute", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// routeAll routes the events stored so far, n of them, with a router that
// does nothing else, stops it, and waits until its acknowledgements are
// stored.
func routeAll(t *testing.T, s *Store, n int) {
	t.Helper()
	rctx, stopRouter := context.WithCancel(context.Background())
	var routed atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.RouteEvents(rctx, func(_ context.Context, evs []Event) ([]error, func() error) {
			routed.Add(int32(len(evs)))
			return make([]error, len(evs)), nil
		}, nil)
	}()
	waitFor(t, "events routed", func() bool { return int(routed.Load()) >= n })
	stopRouter()
	<-done
	info, err := s.events.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router's acknowledgements", func() bool {
		from, err := s.unroutedFrom(context.Background())
		return err == nil && from == info.State.LastSeq+1
	})
}

func TestConfigRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	checkRecords(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened on the same directory, the watcher sees the surviving record.
	s = open(t, dir)
	defer s.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	seen := map[string]string{}
	ready := make(chan struct{})
	go s.Watch(wctx, func(e Entry) {
		mu.Lock()
		defer mu.Unlock()
		if e.Deleted {
			delete(seen, e.Key)
		} else {
			seen[e.Key] = string(e.Value)
		}
	}, func() { close(ready) })
	<-ready
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen["bus.a"] != "3" {
		t.Errorf("after restart the watcher saw %v, want bus.a=3 only", seen)
	}
}

// checkRecords creates, updates and deletes records, with conflicts, and
// leaves bus.a=3 as the only record.
func checkRecords(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	rev, err := s.Create(ctx, "bus.a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "bus.a", []byte("2")); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	rev2, err := s.Update(ctx, "bus.a", []byte("3"), rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, "bus.a", []byte("4"), rev); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if _, err := s.Delete(ctx, "bus.a", rev); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale delete: %v, want ErrConflict", err)
	}
	if _, err := s.Create(ctx, "bus.b", []byte("b")); err != nil {
		t.Fatal(err)
	}
	drev, err := s.Delete(ctx, "bus.b", 0+mustRev(t, s, "bus.b"))
	if err != nil {
		t.Fatal(err)
	}
	if drev <= rev2 {
		t.Errorf("deletion revision %d not after %d", drev, rev2)
	}
	if _, err := s.Get(ctx, "bus.b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
}

func mustRev(t *testing.T, s *Store, key string) uint64 {
	t.Helper()
	e, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return e.Revision
}

func TestRouteEventsAndJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	now := time.Now()
	// A forwarded event sent twice (after a crash) is stored once; events
	// from PutEvents have new ids at each call and need no such check.
	evs := []Event{{ID: "e1", Bus: "default", Ingested: now, Data: []byte(`{"a":1}`), Forwarded: true, DedupeID: "job1"},
		{ID: "e2", Bus: "my.bus/x", Ingested: now, Data: []byte(`{"a":2}`)},
		{ID: "e1", Bus: "default", Ingested: now, Data: []byte(`{"a":1}`), Forwarded: true, DedupeID: "job1"}} // a retried send
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if info, err := s.events.Info(ctx); err != nil || info.State.Msgs != 2 {
		t.Fatalf("events stored: %v, %v; want 2 (the repeated send dropped)", info, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	got := make(chan Event, 10)
	done := make(chan error)
	go func() {
		done <- s.RouteEvents(rctx, func(ctx context.Context, evs []Event) ([]error, func() error) {
			errs := make([]error, len(evs))
			for i, ev := range evs {
				got <- ev
				errs[i] = s.AppendJobs(ctx, []Job{{EventID: ev.ID, Bus: ev.Bus, RuleArn: "arn:r", TargetID: "t", Ingested: ev.Ingested, Event: ev.Data},
					{EventID: ev.ID, Bus: ev.Bus, RuleArn: "arn:r", TargetID: "t", Ingested: ev.Ingested, Event: ev.Data}})
			}
			return errs, nil
		}, nil)
	}()
	// Routed, in any order (several at a time). At least once: on a
	// machine slow enough for a job write to outlast the router's
	// acknowledgement wait (5 s), JetStream offers the event again, and
	// the jobs' message ids keep the second routing from queueing twice.
	routed := map[string]bool{}
	for !routed["e1"] || !routed["e2"] {
		select {
		case ev := <-got:
			if ev.Ingested.UnixNano() != now.UnixNano() || ev.ID != "e1" && ev.ID != "e2" {
				t.Errorf("routed %+v", ev)
			}
			routed[ev.ID] = true
		case <-time.After(time.Minute):
			t.Fatalf("routed %v, want e1 and e2", routed)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	jobs, err := s.QueuedJobs(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(jobs, func(a, b Job) int { return strings.Compare(a.EventID, b.EventID) })
	if len(jobs) != 2 || jobs[0].EventID != "e1" || jobs[1].Bus != "my.bus/x" || string(jobs[1].Event) != `{"a":2}` {
		t.Errorf("queued jobs after restart: %+v", jobs)
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, name := range []string{"default", "my.bus", "my=2Ebus", "a/b", "a_b", "", "=", "ü"} {
		tok := Token(name)
		if prev, ok := seen[tok]; ok {
			t.Errorf("%q and %q both encode to %q", prev, name, tok)
		}
		seen[tok] = name
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '=') {
				t.Errorf("Token(%q) = %q has %q", name, tok, c)
			}
		}
	}
}

// TestClaimTokens takes tokens from a destination's bucket: it starts full
// (the burst), never gives more than it holds, fills at the rate, and a
// claim with an earlier clock adds nothing and leaves the bucket alone.
func TestClaimTokens(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir())
	defer s.Close()
	checkClaims(t, s)
}

func checkClaims(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	base := time.Unix(1_000_000, 0)
	claim := func(want int, at time.Duration) (int, time.Duration) {
		t.Helper()
		n, wait, err := s.ClaimTokens(ctx, "arn:dest", 10, 10, want, base.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		return n, wait
	}
	if n, _ := claim(6, 0); n != 6 {
		t.Fatalf("first claim: %d, want 6 of the burst of 10", n)
	}
	if n, _ := claim(6, 0); n != 4 {
		t.Fatalf("second claim: %d, want the 4 left", n)
	}
	if n, wait := claim(1, 0); n != 0 || wait != 100*time.Millisecond {
		t.Fatalf("claim of an empty bucket: %d, wait %v; want 0, 100ms (one token at 10/s)", n, wait)
	}
	if n, _ := claim(7, 500*time.Millisecond); n != 5 {
		t.Fatalf("claim half a second later: %d, want the 5 added", n)
	}
	if n, wait := claim(1, 400*time.Millisecond); n != 0 || wait != 100*time.Millisecond {
		t.Fatalf("claim with an earlier clock: %d, wait %v; want 0 and the bucket unchanged", n, wait)
	}
	if n, _ := claim(1, 600*time.Millisecond); n != 1 {
		t.Fatalf("claim at 600ms: %d, want the 1 added since 500ms", n)
	}
	if n, _ := claim(20, time.Hour); n != 10 {
		t.Fatalf("claim after an hour: %d, want the burst of 10, no more", n)
	}
}

// TestDataDirLock: a second process (here, a second store) cannot open a
// data directory in use; once the first closes, it can.
func TestDataDirLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := Open(context.Background(), Config{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "in use by another bridgeport process") {
		t.Fatalf("second open of a data directory in use: %v", err)
	}
	s.Close()
	open(t, dir).Close()
}

// TestRouteEventsWaitsForDeliveries: a message whose routing started
// deliveries (fn returned a wait) is acknowledged only once they end, and
// offered again when the wait fails; meanwhile the router routes the next
// messages, even with more messages waiting than it has routing workers.
func TestRouteEventsWaitsForDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, t.TempDir())
	defer s.Close()
	now := time.Now()
	const held = routeWorkers + 4
	for i := range held {
		if err := s.AppendEvents(ctx, []Event{{ID: fmt.Sprintf("slow-%d", i), Bus: "default", Ingested: now, Data: []byte(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	var mu sync.Mutex
	tries := map[string]int{}
	routed := make(chan string, 2*held)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		done <- s.RouteEvents(rctx, func(_ context.Context, evs []Event) ([]error, func() error) {
			id := evs[0].ID
			mu.Lock()
			tries[id]++
			n := tries[id]
			mu.Unlock()
			routed <- id
			if !strings.HasPrefix(id, "slow-") || n > 1 {
				return make([]error, len(evs)), nil
			}
			return make([]error, len(evs)), func() error {
				<-release
				if id == "slow-0" {
					return errors.New("the deliveries could not be queued again")
				}
				return nil
			}
		}, nil)
	}()
	next := func(want string) {
		t.Helper()
		select {
		case id := <-routed:
			if !strings.HasPrefix(id, want) {
				t.Fatalf("routed %s, want %s", id, want)
			}
		case <-time.After(time.Minute):
			t.Fatalf("nothing routed in a minute, want %s", want)
		}
	}
	for range held {
		next("slow-")
	}
	// Every slow message is held, and the next is routed and acknowledged
	// all the same.
	if err := s.AppendEvents(ctx, []Event{{ID: "next", Bus: "default", Ingested: now, Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	next("next")
	waitFor(t, "next acknowledged while the others are held", func() bool {
		c, err := s.events.Consumer(ctx, routerConsumer)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumAckPending == held && info.NumPending == 0 && info.AckFloor.Stream == 0
	})
	// The waits end: slow-0's failed, so it is offered again, and routed
	// again; the others are acknowledged.
	close(release)
	next("slow-0")
	waitFor(t, "all acknowledged", func() bool {
		from, err := s.unroutedFrom(ctx)
		return err == nil && from == held+2
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range tries {
		if want := map[bool]int{true: 2, false: 1}[id == "slow-0"]; n != want {
			t.Errorf("%s routed %d times, want %d", id, n, want)
		}
	}
}
