package deliver

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"bridgeport/internal/store"
)

// scriptedCPU is a machine whose CPU times the test sets.
type scriptedCPU struct {
	busy, total uint64
	ok          bool
}

func (c *scriptedCPU) read() (uint64, uint64, bool) { return c.busy, c.total, c.ok }

// spend adds d ticks of which share were busy.
func (c *scriptedCPU) spend(d uint64, share float64) {
	c.busy += uint64(float64(d) * share)
	c.total += d
}

func TestPacerSpacesJobs(t *testing.T) {
	t.Parallel()
	cpu := &scriptedCPU{ok: true}
	p := newPacer(cpu.read, 0.6)
	now := time.Unix(1000, 0)
	// Eight jobs at once, at the starting rate: one a millisecond.
	for i := range 8 {
		if got, want := p.reserve(now), time.Duration(i)*time.Second/time.Duration(paceStart); got != want {
			t.Fatalf("job %d waits %v, want %v", i, got, want)
		}
	}
	// A job long after the last reservation starts at once: idle time is
	// not saved up for a burst.
	now = now.Add(time.Minute)
	cpu.spend(1000, 0.55) // in the band: the rate holds
	if got := p.reserve(now); got != 0 {
		t.Fatalf("after a pause, a job waits %v, want 0", got)
	}
	if got := p.reserve(now); got != time.Second/time.Duration(paceStart) {
		t.Fatalf("the next one waits %v, want %v", got, time.Second/time.Duration(paceStart))
	}
}

func TestPacerFollowsSpareCPU(t *testing.T) {
	t.Parallel()
	cpu := &scriptedCPU{ok: true}
	p := newPacer(cpu.read, 0.6)
	now := time.Unix(1000, 0)
	p.reserve(now) // the first look at the CPU times
	step := func(share float64) float64 {
		t.Helper()
		now = now.Add(paceCheck)
		cpu.spend(200, share)
		p.reserve(now)
		return p.rate
	}
	// A busy machine: the rate falls by a quarter each check, to paceMin.
	rate := paceStart
	for range 20 {
		rate = max(rate*0.75, paceMin)
		if got := step(0.95); got != rate {
			t.Fatalf("busy: rate %v, want %v", got, rate)
		}
	}
	if rate != paceMin {
		t.Fatalf("busy for long: rate %v, want %v", rate, paceMin)
	}
	// Between the two marks: unchanged.
	if got := step(0.6 - paceBand/2); got != rate {
		t.Fatalf("steady: rate %v, want %v", got, rate)
	}
	// Spare CPU: up by a tenth each check.
	for range 5 {
		rate *= 1.1
		if got := step(0.3); got != rate {
			t.Fatalf("spare: rate %v, want %v", got, rate)
		}
	}
	// Looks closer together than paceCheck change nothing.
	now = now.Add(paceCheck / 2)
	cpu.spend(100, 1)
	p.reserve(now)
	if p.rate != rate {
		t.Fatalf("rate changed between checks: %v, want %v", p.rate, rate)
	}
}

// TestPacerOff checks that jobs are not held when the machine's CPU times
// cannot be read, or when pacing is off.
func TestPacerOff(t *testing.T) {
	t.Parallel()
	busy := &scriptedCPU{ok: true}
	for name, p := range map[string]*pacer{
		"unreadable": newPacer((&scriptedCPU{ok: false}).read, 0.6),
		"high 1":     newPacer(busy.read, 1),
		"high 0":     newPacer(busy.read, 0),
	} {
		now := time.Unix(1000, 0)
		for range 100 {
			now = now.Add(paceCheck)
			busy.spend(200, 1)
			if got := p.reserve(now); got != 0 {
				t.Fatalf("%s: a job waits %v, want 0", name, got)
			}
			p.reserve(now)
			p.reserve(now)
		}
	}
}

func TestMachineCPU(t *testing.T) {
	t.Parallel()
	busy, total, ok := machineCPU()
	if runtime.GOOS != "linux" {
		if ok {
			t.Fatalf("machineCPU = %d, %d, true off Linux", busy, total)
		}
		return
	}
	if !ok || total == 0 || busy > total {
		t.Fatalf("machineCPU = %d, %d, %v", busy, total, ok)
	}
	// Spin for a while: the busy time moves.
	end := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(end) {
	}
	busy2, total2, ok := machineCPU()
	if !ok || busy2 <= busy || total2 <= total {
		t.Fatalf("after spinning 100 ms: busy %d -> %d, total %d -> %d", busy, busy2, total, total2)
	}
}

// TestReplayedJobWaitsItsTurn checks that the replay lane takes its turns
// from the pacer: with the next turn an hour away, a replayed job waits
// until its context ends and is not run (the worker here has no targets:
// running it would fail otherwise).
func TestReplayedJobWaitsItsTurn(t *testing.T) {
	t.Parallel()
	w := NewWorker(WorkerConfig{})
	w.pace = newPacer((&scriptedCPU{ok: true}).read, 0.5)
	w.pace.next = time.Now().Add(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.handleReplayed(ctx, store.Job{EventID: "e"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("handleReplayed = %v, want the context's end", err)
	}
}
