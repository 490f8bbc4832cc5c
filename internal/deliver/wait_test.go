package deliver

import (
	"context"
	"fmt"
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
	room := func(dest string) int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.waitRoom(dest)
	}
	steps := []struct {
		dest string
		took time.Duration
		res  Result
		want int
	}{
		{"fast", time.Millisecond, Result{Status: 200}, 256 - 64},    // 64 calls in flight: with them half the workers
		{"medium", 100 * time.Millisecond, Result{Status: 500}, 160}, // any answer counts; 16 calls serve 160 in a second
		{"slow", 2 * time.Second, Result{Status: 200}, 8},
		{"slower", 30 * time.Second, Result{Status: 200}, minSlotWaiters},
	}
	for _, s := range steps {
		w.record(s.dest, s.res, s.took)
		if got := room(s.dest); got != s.want {
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
	// The mean follows the calls, timeouts included: a fast destination
	// whose calls start to take 2 s, or time out after 5, has room for
	// what 16 calls serve in a second, 4 or 5, after enough of them.
	for range 30 {
		w.record("fast", Result{Status: 200}, 2*time.Second)
		w.record("fast", Result{Code: CodeTimeout}, 5*time.Second)
	}
	w.record("fast", Result{Status: 200}, 2*time.Second)
	w.mu.Lock()
	mean := w.callTime["fast"]
	w.mu.Unlock()
	if got := room("fast"); mean < 2*time.Second || mean > 5*time.Second || got != max(int(16*time.Second/mean), minSlotWaiters) {
		t.Errorf("fast, slowed down: mean call %s, room %d", mean, got)
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
	// Room is counted per destination.
	for i := range 8 {
		if !w.mayWait("slower") != (i >= minSlotWaiters) {
			t.Fatalf("waiter %d for slower: room %d", i+1, minSlotWaiters)
		}
	}
	n := 0
	for w.mayWait("medium") {
		n++
	}
	if n != 160 {
		t.Errorf("%d waiters for medium, want 160", n)
	}
	// Waiters for all destinations together are at most seven eighths of
	// the workers.
	for i := 0; ; i++ {
		dest := fmt.Sprintf("quick-%d", i)
		w.record(dest, Result{Status: 200}, time.Millisecond)
		m := 0
		for w.mayWait(dest) {
			m++
		}
		n += m
		if m < room(dest) {
			break
		}
	}
	if total := n + minSlotWaiters; total != 512-512/8 {
		t.Errorf("%d waiters in all, want %d", total, 512-512/8)
	}
}

// TestStalled checks that a fast destination whose calls stop ending is
// soon treated as one that does not answer, and as a fast one again once
// a call ends.
func TestStalled(t *testing.T) {
	w := NewWorker(WorkerConfig{})
	w.record("d", Result{Status: 200}, 3*time.Millisecond)
	w.begin("d")
	if !w.proven("d") || !w.mayWait("d") {
		t.Fatal("a fast destination with a call just begun is not proven")
	}
	w.mu.Lock()
	w.lastEnd["d"] = time.Now().Add(-time.Second) // no call has ended for a second
	_, size := w.slotsOf("d")
	w.mu.Unlock()
	if w.mayWait("d") || size != 16 {
		t.Errorf("stalled: may wait %v, %d calls in flight", w.mayWait("d"), size)
	}
	w.end("d")
	w.mu.Lock()
	_, size = w.slotsOf("d")
	w.mu.Unlock()
	if !w.proven("d") || size != 64 || len(w.lastEnd) != 0 || len(w.inFlight) != 0 {
		t.Errorf("after the call ended: proven %v, %d calls in flight, %d %d left", w.proven("d"), size, len(w.lastEnd), len(w.inFlight))
	}
	// Once fast, a destination keeps its calls in flight while its calls
	// slow down for a moment (up to slowCall), not beyond.
	size = func() int {
		w.mu.Lock()
		defer w.mu.Unlock()
		_, n := w.slotsOf("d")
		return n
	}()
	for range 40 {
		w.record("d", Result{Status: 200}, 150*time.Millisecond)
	}
	w.mu.Lock()
	_, slowed := w.slotsOf("d")
	w.mu.Unlock()
	for range 40 {
		w.record("d", Result{Status: 200}, time.Second)
	}
	w.mu.Lock()
	_, slow := w.slotsOf("d")
	w.mu.Unlock()
	if size != 64 || slowed != 64 || slow != 16 {
		t.Errorf("calls in flight: %d fast, %d at 150 ms a call, %d at 1 s; want 64, 64, 16", size, slowed, slow)
	}
	// A slow destination's long call is not a stall.
	w.record("s", Result{Status: 200}, 2*time.Second)
	w.begin("s")
	w.mu.Lock()
	w.lastEnd["s"] = time.Now().Add(-time.Second)
	w.mu.Unlock()
	if w.mu.Lock(); w.stalled("s", time.Now()) {
		t.Error("a destination answering in 2 s is stalled after 1 s")
	}
	w.mu.Unlock()
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
	if lag, floor := time.Duration(w.liveLag.Load()), time.Duration(w.liveFloor.Load()); lag <= floor+yieldLag || lag > 50*time.Millisecond {
		t.Fatalf("live lag %s (floor %s) after 100 events 50 ms late", lag, floor)
	}
	w.lastLive.Store(int64(time.Since(w.epoch) + 2*maxYield)) // only the deadline ends this wait
	start := time.Now()
	if n := w.yieldToLive(ctx); n == 0 || time.Since(start) < maxYield {
		t.Errorf("live events 50 ms late: waited %d steps, %s; want %s", n, time.Since(start), maxYield)
	}
	// A lag every live event has becomes the usual one: after thousands
	// of events 50 ms late, the replay no longer yields to them.
	for range 200 {
		live(50 * time.Millisecond)
	}
	if n := w.yieldToLive(ctx); n != 0 {
		t.Errorf("every live event 50 ms late for 20,000 events: waited %d steps (lag %s, floor %s)",
			n, time.Duration(w.liveLag.Load()), time.Duration(w.liveFloor.Load()))
	}
	// The live traffic stops: the replay goes on at once.
	w.lastLive.Store(int64(time.Since(w.epoch) - 2*time.Second))
	if n := w.yieldToLive(ctx); n != 0 {
		t.Errorf("live traffic stopped: waited %d steps", n)
	}
	// A replay stopped while it waits goes on at once.
	w.lastLive.Store(int64(time.Since(w.epoch)))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if n := w.yieldToLive(cctx); n != 0 {
		t.Errorf("cancelled: waited %d steps", n)
	}
}
