package deliver

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"bridgeport/internal/store"
)

// scriptedCPU is a machine whose CPU times the test sets (a machine's
// total is never 0: it has been up for a while).
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
	cpu := &scriptedCPU{ok: true, total: 1000}
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
	// The rate shown: the pace while jobs come, 0 once none has for a
	// while.
	if got := p.perSecond(now.Add(time.Second)); got != paceStart {
		t.Errorf("rate shown while jobs come: %v, want %v", got, paceStart)
	}
	if got := p.perSecond(now.Add(paceIdle + time.Second)); got != 0 {
		t.Errorf("rate shown with no job for %v: %v, want 0", paceIdle+time.Second, got)
	}
}

func TestPacerFollowsSpareCPU(t *testing.T) {
	t.Parallel()
	cpu := &scriptedCPU{ok: true, total: 1000}
	p := newPacer(cpu.read, 0.6)
	now := time.Unix(1000, 0)
	p.reserve(now) // the first look at the CPU times
	// step runs jobs in a paceCheck (besides the one that starts the
	// next), with the machine busy share of the time, and returns the rate
	// set at its end and the rate the lane used.
	step := func(share float64, jobs int) (rate, used float64) {
		t.Helper()
		for range jobs {
			p.reserve(now)
		}
		now = now.Add(paceCheck)
		cpu.spend(200, share)
		p.reserve(now)
		return p.rate, float64(jobs+1) / paceCheck.Seconds()
	}
	full := func() int { return int(p.rate * paceCheck.Seconds()) }
	// A busy machine, the lane taking all it may: the rate falls by a
	// quarter each check, to paceMin.
	rate := paceStart
	for range 20 {
		rate = max(rate*0.75, paceMin)
		if got, _ := step(0.95, full()); got != rate {
			t.Fatalf("busy: rate %v, want %v", got, rate)
		}
	}
	if rate != paceMin {
		t.Fatalf("busy for long: rate %v, want %v", rate, paceMin)
	}
	// Between the two marks: unchanged.
	if got, _ := step(0.6-paceBand/2, full()); got != rate {
		t.Fatalf("steady: rate %v, want %v", got, rate)
	}
	// Spare CPU, used: up by a tenth each check, past paceStart.
	for range 25 {
		rate *= 1.1
		if got, _ := step(0.3, full()); got != rate {
			t.Fatalf("spare: rate %v, want %v", got, rate)
		}
	}
	if rate <= paceStart {
		t.Fatalf("rate %v after 25 raises from paceMin, want over %v", rate, paceStart)
	}
	// Spare CPU the lane does not use (its backlog is dry): the rate does
	// not climb past twice what it used, or paceStart.
	for range 50 {
		got, used := step(0.3, 3)
		if got > max(2*used, paceStart) {
			t.Fatalf("unused: rate %v, used %v", got, used)
		}
	}
	// Busy again while the lane used little: cut from what it used.
	if got, used := step(0.95, 30); got != max(used*0.75, paceMin) {
		t.Fatalf("busy, the lane at %v: rate %v, want %v", used, got, max(used*0.75, paceMin))
	}
	// Looks closer together than paceCheck change nothing.
	rate = p.rate
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
	busy := &scriptedCPU{ok: true, total: 1000}
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
	w.pace = newPacer((&scriptedCPU{ok: true, total: 1000}).read, 0.5)
	w.pace.next = time.Now().Add(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.handleReplayed(ctx, store.Job{EventID: "e"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("handleReplayed = %v, want the context's end", err)
	}
}
