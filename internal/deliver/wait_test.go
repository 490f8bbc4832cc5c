package deliver

import (
	"context"
	"testing"
	"time"

	"bridgeport/internal/store"
)

// TestWaitRoom checks how many workers may wait for a destination's call
// slot: what its calls in flight serve within slotWait at the pace of its
// answered calls, within bounds, and none while it is not answering.
func TestWaitRoom(t *testing.T) {
	w := NewWorker(WorkerConfig{})
	if w.mayWait("new") {
		t.Fatal("a worker may wait for a destination that has not answered yet")
	}
	steps := []struct {
		dest string
		took time.Duration
		res  Result
		want int
	}{
		{"fast", time.Millisecond, Result{Status: 200}, 256},         // 16,000 a second: capped at half the workers
		{"medium", 100 * time.Millisecond, Result{Status: 500}, 160}, // any answer counts
		{"slow", 2 * time.Second, Result{Status: 200}, 8},
		{"slower", 30 * time.Second, Result{Status: 200}, minSlotWaiters},
	}
	for _, s := range steps {
		w.record(s.dest, s.res, s.took)
		w.mu.Lock()
		got := w.waitRoom(s.dest)
		w.mu.Unlock()
		if got != s.want {
			t.Errorf("%s: room %d, want %d", s.dest, got, s.want)
		}
	}
	// Calls in flight: 4 times as many for a destination that answers in
	// less than fastCall.
	for dest, want := range map[string]int{"fast": 64, "medium": 16, "slow": 16, "new": 16} {
		w.mu.Lock()
		_, got := w.slotsOf(dest)
		w.mu.Unlock()
		if got != want {
			t.Errorf("%s: %d calls in flight, want %d", dest, got, want)
		}
	}
	// The mean follows the calls: a fast destination that slows down to
	// 2 s a call has room for 8 after enough of them.
	for range 60 {
		w.record("fast", Result{Status: 200}, 2*time.Second)
	}
	w.mu.Lock()
	got := w.waitRoom("fast")
	w.mu.Unlock()
	if got != 8 {
		t.Errorf("fast, slowed down: room %d, want 8", got)
	}
	// A call that times out ends the waiting altogether, and leaves 2
	// calls in flight.
	w.record("slow", Result{Code: CodeTimeout}, 5*time.Second)
	if w.mayWait("slow") {
		t.Error("a worker may wait for a destination whose last call timed out")
	}
	if got := cap(w.slot("slow")); got != 2 {
		t.Errorf("slow, timing out: %d calls in flight, want 2", got)
	}
	// Room is counted per destination, and the waiting together are bounded.
	for i := range 8 {
		if !w.mayWait("slower") != (i >= minSlotWaiters) {
			t.Fatalf("waiter %d for slower: room %d", i+1, minSlotWaiters)
		}
	}
	n := 0
	for w.mayWait("fast") {
		n++
	}
	for w.mayWait("medium") {
		n++
	}
	if want := 8 + 160; n != want {
		t.Errorf("%d waiters for fast and medium, want %d", n, want)
	}
	// Half the workers at most for one destination, seven eighths for all.
	for range 40 {
		w.record("fast", Result{Status: 200}, time.Millisecond)
	}
	for w.mayWait("fast") {
		n++
	}
	if n != 256+160 {
		t.Errorf("%d waiters for fast and medium, want %d", n, 256+160)
	}
	w.record("fast2", Result{Status: 200}, time.Millisecond)
	for w.mayWait("fast2") {
		n++
	}
	if total := n + minSlotWaiters; total != 512-512/8 {
		t.Errorf("%d waiting in all, want %d", total, 512-512/8)
	}
}

// TestYieldToLive checks the replay lane's yielding: none without live
// traffic or while live events are taken promptly; while they wait longer
// than yieldLag, a replayed job waits maxYield; none once live traffic
// stops, or when the replay is stopped.
func TestYieldToLive(t *testing.T) {
	w := NewWorker(WorkerConfig{})
	ctx := context.Background()
	if n := w.yieldToLive(ctx); n != 0 {
		t.Errorf("no live traffic: waited %d steps", n)
	}
	live := func(lag time.Duration) {
		for range 100 {
			now := time.Now()
			w.noteLive(store.Job{Ingested: now.Add(-lag)}, now)
		}
	}
	live(time.Millisecond)
	if n := w.yieldToLive(ctx); n != 0 {
		t.Errorf("live events taken in 1 ms: waited %d steps", n)
	}
	// Retries and redriven jobs do not count: their events are old.
	for range 100 {
		w.noteLive(store.Job{Ingested: time.Now().Add(-time.Hour), Attempt: 1}, time.Now())
		w.noteLive(store.Job{Ingested: time.Now().Add(-time.Hour), Redrive: "m"}, time.Now())
	}
	live(50 * time.Millisecond)
	if lag := time.Duration(w.liveLag.Load()); lag <= yieldLag || lag > 50*time.Millisecond {
		t.Fatalf("live lag %s after 100 events 50 ms late", lag)
	}
	start := time.Now()
	if n := w.yieldToLive(ctx); n == 0 || time.Since(start) < maxYield {
		t.Errorf("live events 50 ms late: waited %d steps, %s; want %s", n, time.Since(start), maxYield)
	}
	// The live traffic stops: the replay goes on at once.
	w.lastLive.Store(time.Now().Add(-2 * time.Second).UnixNano())
	if n := w.yieldToLive(ctx); n != 0 {
		t.Errorf("live traffic stopped: waited %d steps", n)
	}
	// A replay stopped while it waits goes on at once.
	w.lastLive.Store(time.Now().UnixNano())
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if n := w.yieldToLive(cctx); n != 0 {
		t.Errorf("cancelled: waited %d steps", n)
	}
}
